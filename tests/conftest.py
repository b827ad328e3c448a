"""Shared fixtures: the real configs composed with Hydra's compose API, shrunk to tiny sizes."""

import copy
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mgnet_cli.cli import config_dir, register_configs

CONFIGS = config_dir()
TINY = [  # a model and data set that train a step in well under a second on a CPU
    "dataset=synthetic", "dataset.num_train=64", "dataset.num_test=32", "trainer=smoke",
    "model.channels=8", "model.smoothing_steps=[1,1]", "trainer.device=cpu",
]


def options(group: str) -> list[str]:
    """Every YAML option of a config group: parametrising over them tests new ones for free."""
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


COMPOSED: dict[tuple[str, tuple[str, ...]], DictConfig] = {}
"""Configs composed so far in this test process: a compose takes about 0.3 s, a copy 5 ms."""


@pytest.fixture
def compose_config() -> Callable[..., DictConfig]:
    """``compose_config(*overrides, config_name="train", tiny=True)`` -> the composed config, a
    copy of its own (the configs folder does not change while the tests run, so the same overrides
    compose to the same config: composed once per test process)."""

    def _compose(*overrides: str, config_name: str = "train", tiny: bool = True) -> DictConfig:
        key = (config_name, (*(TINY if tiny else []), *overrides))
        if key not in COMPOSED:
            register_configs()
            with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
                COMPOSED[key] = compose(config_name, overrides=list(key[1]))
        return copy.deepcopy(COMPOSED[key])

    return _compose


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One finished tiny training run (``tests.helpers.train`` with no overrides), trained once per
    test process. Never hand it out: give each module its own ``tests.helpers.copy_run`` of it."""
    from tests.helpers import train

    return train(tmp_path_factory.mktemp("tiny_run") / "run")


@pytest.fixture
def shared_data() -> Path:
    """The real CIFAR-10 subset (``$MGNET_SHARED_DATA/cifar10-mini``), or a skip saying why."""
    folder = os.environ.get("MGNET_SHARED_DATA")
    if not folder:
        pytest.skip("MGNET_SHARED_DATA is not set (it names the shared data folder, see README)")
    path = Path(folder) / "cifar10-mini"
    if not (path / "cifar-10-batches-py").is_dir():
        pytest.skip(f"{path}/cifar-10-batches-py does not exist")
    return path
