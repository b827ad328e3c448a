"""Shared fixtures: the real configs composed with Hydra's compose API, shrunk to tiny sizes."""

import copy
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

# NumPy's and SciPy's OpenBLAS on one thread in each test process, as torch is below (README's run is
# one process per core, and the two test processes inherit this from the first; it takes effect where
# it is set before NumPy is imported, as here): tests/amg took 28.7 s of CPU with OpenBLAS's default
# of a thread per core on the loaded 2-core host, 2.9 s on one (one 961-row eigvals: 13.9 s, 0.5 s).
# A user's own setting is kept; the console script the `process` tests start inherits it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from mgnet_cli.cli import config_dir, register_configs
from tests.helpers import TINY

CONFIGS = config_dir()


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_test_process() -> Iterator[None]:
    """Torch on one CPU thread in each test process: README's run starts one process per core
    (``-n 2``), and two processes of two threads each on two cores spend their time waiting on each
    other (every training option of tests/test_every_option.py built and stepped: 39 s of CPU on two
    threads, 11 s on one, on the loaded 2-core host). A command a test runs still takes the threads
    its config chooses (``trainer.threads``, ``solver.threads``); ``tests.helpers.cli`` puts this back."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def hydra_copies_less() -> Iterator[None]:
    """Hydra as the in-process tests run it: each of their few thousand composes copies less, and
    what a compose returns is the same (the console script, tests marked ``process``, runs Hydra
    as shipped). Measured on a composed ``train``: 0.15 s of CPU a compose before, 0.11 s after.

    - Hydra 1.3 deep-copies its config repository for every compose, and with it the ConfigStore
      its structured source holds: every mgnet schema node, 13 % of a compose. Here a copy of the
      one store is the store (Hydra's later fix, facebookresearch/hydra#2928: the source reads
      ``ConfigStore.instance()`` instead of holding a copy).
    - Each compose parses its YAML files again (10 %): here a file is parsed once while it is
      unchanged (same path, modification time and size), and each compose gets a copy of the parse.
    """
    from hydra._internal.core_plugins.file_config_source import FileConfigSource
    from hydra.core.config_store import ConfigStore

    load = FileConfigSource.load_config
    parsed: dict[tuple, object] = {}

    @functools.wraps(load)
    def parsed_once(source: FileConfigSource, config_path: str):
        path = os.path.realpath(os.path.join(source.path, source._normalize_file_name(config_path)))
        try:
            stat = os.stat(path)
        except OSError:
            return load(source, config_path)  # Hydra's own "Config not found"
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in parsed:
            parsed[key] = load(source, config_path)
        return copy.deepcopy(parsed[key])

    ConfigStore.__deepcopy__ = lambda store, memo: store
    FileConfigSource.load_config = parsed_once
    try:
        yield
    finally:
        FileConfigSource.load_config = load
        del ConfigStore.__deepcopy__


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
            GlobalHydra.instance().clear()  # a test whose in-process command failed may leave it set
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
