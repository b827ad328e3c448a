"""``mgnet <command> --help`` and shell completion: what they advertise is what the command does."""

import subprocess
import sys

import pytest

from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.help import group_choices, help_text
from tests.helpers import PATIENCE_S


@pytest.mark.parametrize(("command", "sweeps"), [("train", True), ("solve", True), ("info", False), ("eval", False)])
def test_only_the_commands_that_sweep_advertise_m(command, sweeps):
    usage = help_text(command).splitlines()[0]
    assert usage.startswith(f"usage: mgnet {command} ") and usage.endswith("[-m]") == sweeps
    assert ("-m" in usage) == sweeps


def hydra_answer(command: str, word: str) -> list[str]:
    """What Hydra's own bash completion answers for ``word`` (the slow path: it composes configs)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.bash_completion import BashCompletion
    from hydra._internal.utils import create_config_search_path

    register_configs()
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(config_dir())))
    return BashCompletion(loader)._query(config_name=command, line=word)


@pytest.mark.parametrize(("command", "word"), [
    ("train", "dataset=c"), ("train", "dataset="), ("train", "experiment=mgnet_cifar1"), ("train", "search="),
    ("info", "model=pre"), ("solve", "solver/smoother=l"), ("solve", "problem="), ("train", "trainer=x"),
])
def test_group_completion_from_the_configs_folder_is_hydras_answer(command, word):
    assert group_choices(command, word) == hydra_answer(command, word)


@pytest.mark.parametrize("word", ["dataset.ro", "problem=", "hydra/launcher=", "seed"])
def test_other_words_are_left_to_hydra(word):
    assert group_choices("train", word) is None  # problem is solve's group, not train's


@pytest.mark.process
def test_completing_a_group_does_not_import_torch():
    """`mgnet train dataset=c<TAB>` used to import torch and compose every config (4-9 s)."""
    code = ("import os, sys; os.environ['COMP_LINE'] = 'mgnet train dataset=c'; "
            "from mgnet_cli.cli import command; command(['-sc', 'query=bash']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["dataset=cifar10", "dataset=cifar100"]
