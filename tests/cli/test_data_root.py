"""A run records the absolute data folder it read: ``mgnet eval`` and ``resume=`` (also
``resume=latest``) read it there after ``MGNET_DATA_DIR`` and the working folder change, and when
the data has moved their error names the key each command accepts."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mgnet_cli.cli import eval as eval_command
from mgnet_cli.errors import DataError
from tests.cli.test_resume_refusals import FILES
from tests.data.test_cifar import write_cifar10
from tests.helpers import cli


def train_from_elsewhere(root: Path) -> Path:
    """A run trained from ``root/work`` with ``MGNET_DATA_DIR=../data`` (relative), which
    ``MGNET_DATA_DIR`` no longer names afterwards: it names the empty ``root/empty``."""
    write_cifar10(root / "data", per_batch=13, num_test=8)
    (root / "work").mkdir()
    (root / "empty").mkdir()
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("MGNET_DATA_DIR", "../data")
        cli("train", *FILES, "hydra.run.dir=outputs/run", cwd=root / "work")
    return root / "work" / "outputs" / "run"


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """One such run for the tests that only read it (or copy it)."""
    return train_from_elsewhere(tmp_path_factory.mktemp("elsewhere"))


@pytest.fixture(autouse=True)
def elsewhere(monkeypatch, shared) -> None:
    monkeypatch.setenv("MGNET_DATA_DIR", str(shared.parents[2] / "empty"))


def test_the_run_records_the_absolute_folder_it_read(shared):
    data = str(shared.parents[2] / "data")
    assert f"root: {data}\n" in (shared / "config.yaml").read_text()
    checkpoint = torch.load(shared / "last.pt", weights_only=True)
    assert checkpoint["config"]["dataset"]["root"] == checkpoint["config_source"]["dataset"]["root"] == data


def test_eval_reads_the_recorded_folder_from_anywhere(shared, tmp_path, monkeypatch, compose_config):
    monkeypatch.chdir(tmp_path)
    top1 = eval_command.run(compose_config(f"checkpoint={shared / 'last.pt'}", "device=cpu",
                                           f"output_dir={tmp_path / 'eval'}", config_name="eval", tiny=False))
    results = json.loads((shared / "results.json").read_text())
    assert top1 == results["final_test_acc"]  # the same model on the same 8 test images


def test_resume_and_resume_latest_read_the_recorded_folder(shared, tmp_path):
    run = tmp_path / "outputs" / "run"
    shutil.copytree(shared, run)
    cli("train", f"resume={run}", "trainer.epochs=3", cwd=shared.parents[2] / "empty")
    cli("train", "resume=latest", "trainer.epochs=4", cwd=tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed" and [h["epoch"] for h in results["history"]] == [1, 2, 3, 4]
    assert f"CIFAR-10 from {shared.parents[2] / 'data'}" in (run / "train.log").read_text()


def test_moved_data_names_the_key_each_command_accepts(tmp_path, monkeypatch, compose_config):
    trained = train_from_elsewhere(tmp_path)
    (tmp_path / "data").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as refused:
        eval_command.run(compose_config(f"checkpoint={trained}", "device=cpu", config_name="eval", tiny=False))
    assert "point dataset_root at" in str(refused.value)
    assert "dataset.root" not in str(refused.value) and "MGNET_DATA_DIR" not in str(refused.value)
    found = compose_config(f"checkpoint={trained}", "device=cpu", "dataset_root=moved", config_name="eval", tiny=False)
    assert eval_command.run(found) == json.loads((trained / "results.json").read_text())["best_test_acc"]

    result = cli("train", f"resume={trained}", "trainer.epochs=3", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"not found in {tmp_path / 'data'}" in result.stderr and "point dataset.root at" in result.stderr
    assert "MGNET_DATA_DIR" not in result.stderr
    cli("train", f"resume={trained}", "trainer.epochs=3", "dataset.root=moved", cwd=tmp_path)
    assert json.loads((trained / "results.json").read_text())["epochs"] == 3
