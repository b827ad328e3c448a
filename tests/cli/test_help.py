"""``mgnet <command> --help`` and shell completion: what they advertise is what the command does."""

import re
import subprocess
import sys

import pytest

from mgnet_cli import schema
from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.help import group_choices, groups, help_text, keys
from tests.helpers import PATIENCE_S


@pytest.mark.parametrize(("command", "sweeps"), [("train", True), ("solve", True), ("info", False), ("eval", False)])
def test_only_the_commands_that_sweep_advertise_m(command, sweeps):
    usage = help_text(command).splitlines()[0]
    assert usage.startswith(f"usage: mgnet {command} ") and usage.endswith("[-m]") == sweeps
    assert ("-m" in usage) == sweeps


@pytest.mark.parametrize("command", ["train", "eval", "info", "solve"])
def test_help_lists_each_key_of_the_commands_schema_with_its_default_and_help(command):
    """The keys come from the schema (its defaults, its help, its choices), never from a group's."""
    text = help_text(command)
    own = text.split("keys (")[1]
    listed = [line.split("=")[0].strip() for line in own.splitlines() if line.startswith("  ") and "=" in line
              and not line.startswith("   ")]
    assert listed == [key for key, *_ in keys(schema.COMMANDS[command])]
    for key, _, help, _ in keys(schema.COMMANDS[command]):
        assert help[:40] in " ".join(own.split()), key
    assert "dataset.root=" not in text and "trainer.epochs=" not in text  # a group's keys: --cfg job


@pytest.mark.parametrize("command", ["train", "eval", "info", "solve"])
def test_help_lists_every_group_of_the_commands_schema_with_its_default_option(command):
    listed = groups((config_dir() / f"{command}.yaml").read_text())
    assert set(schema.groups_of(command)) <= {group for group, _ in listed}
    text = help_text(command)
    for group, default in listed:  # an optional group (experiment: null) has no default option
        starred = rf".*\b{default}\*" if default != "null" else r"[^*]*$"
        assert re.search(rf"^  {re.escape(group)} +{starred}", text, re.M), group


def test_help_shows_the_schema_default_the_help_and_the_choices():
    words = " ".join(help_text("train").split())  # lines wrap at 100 columns
    assert "eval.tta=none test-time augmentation of evaluation: flip averages the logits of x and its " \
           "mirror; flip_translate also those of x shifted by a pixel (airbench94's) [one of none, flip, " \
           "flip_translate]" in words
    assert "seed=0 " in words and "resume=null " in words and "objective=auto " in words
    assert "checkpoint=??? required: a checkpoint file" in " ".join(help_text("eval").split())
    assert "info.format=table a table of the levels, or the same as JSON [one of table, json]" in " ".join(
        help_text("info").split())


def test_help_with_a_command_line_lists_the_keys_of_the_options_it_chooses():
    """``mgnet solve problem=matrix --help`` shows problem.file and problem.amg.* (the matrix option's
    schema, at what that command line composes); without a command line nothing is composed."""
    words = " ".join(help_text("solve", ["problem=matrix"]).split())
    assert "keys of the chosen options (" in words and "problem=matrix" in words
    assert "problem.file=null required: a .mtx (Matrix Market) or .npz" in words
    assert "problem.amg.smoother=gauss_seidel " in words and "problem.amg.learning.steps=" in words
    assert "problem.n=" not in words  # the matrix option has no grid
    words = " ".join(help_text("train", ["optimizer=adamw"]).split())
    assert "optimizer.betas=[0.9,0.999] " in words and "optimizer.momentum=" not in words
    assert "dataset.augmentation.flip=true random horizontal flip (schema default: false)" in words
    assert "._target_" not in words and "keys of the chosen options" not in help_text("train")


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


def without_torch(code: str) -> str:
    """Runs ``code`` in a fresh interpreter, asserts it never imported torch; returns its stdout."""
    code += "; import sys; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE_S)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.process
def test_completing_a_group_does_not_import_torch():
    """`mgnet train dataset=c<TAB>` used to import torch and compose every config (4-9 s)."""
    printed = without_torch("import os; os.environ['COMP_LINE'] = 'mgnet train dataset=c'; "
                            "from mgnet_cli.cli import command; command(['-sc', 'query=bash'])")
    assert printed.split() == ["dataset=cifar10", "dataset=cifar100"]


@pytest.mark.process
def test_help_does_not_import_torch():
    without_torch("from mgnet_cli.cli.help import help_text; "
                  "[help_text(command) for command in ('train', 'eval', 'info', 'solve')]")
