"""A run records the absolute data folder it read: ``mgnet eval`` and ``resume=`` (also
``resume=latest``) read it there after ``MGNET_DATA_DIR`` and the working folder change, and when
the data has moved their error names the key each command accepts."""

import json
from pathlib import Path

import pytest
import torch

from mgnet_cli.cli import eval as eval_command
from mgnet_cli.errors import DataError
from tests.cli.test_resume_refusals import FILES
from tests.data.test_cifar import write_cifar10
from tests.helpers import mgnet


@pytest.fixture
def trained(tmp_path, monkeypatch) -> Path:
    """A run trained from ``<tmp>/work`` with ``MGNET_DATA_DIR=../data`` (relative), which
    ``MGNET_DATA_DIR`` no longer names afterwards: it names an empty folder."""
    write_cifar10(tmp_path / "data", per_batch=13, num_test=8)
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("MGNET_DATA_DIR", "../data")
    mgnet("train", *FILES, "hydra.run.dir=outputs/run", cwd=tmp_path / "work")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("MGNET_DATA_DIR", str(tmp_path / "empty"))
    return tmp_path / "work" / "outputs" / "run"


def test_the_run_records_the_absolute_folder_it_read(trained, tmp_path):
    data = str(tmp_path / "data")
    assert f"root: {data}\n" in (trained / "config.yaml").read_text()
    checkpoint = torch.load(trained / "last.pt", weights_only=True)
    assert checkpoint["config"]["dataset"]["root"] == checkpoint["config_source"]["dataset"]["root"] == data


def test_eval_reads_the_recorded_folder_from_anywhere(trained, tmp_path, monkeypatch, compose_config):
    monkeypatch.chdir(tmp_path / "empty")
    top1 = eval_command.run(compose_config(f"checkpoint={trained / 'last.pt'}", "device=cpu",
                                           config_name="eval", tiny=False))
    results = json.loads((trained / "results.json").read_text())
    assert top1 == results["final_test_acc"]  # the same model on the same 8 test images


def test_resume_and_resume_latest_read_the_recorded_folder(trained, tmp_path):
    mgnet("train", f"resume={trained}", "trainer.epochs=3", cwd=tmp_path / "empty")
    mgnet("train", "resume=latest", "trainer.epochs=4", cwd=tmp_path / "work")
    results = json.loads((trained / "results.json").read_text())
    assert results["status"] == "completed" and [h["epoch"] for h in results["history"]] == [1, 2, 3, 4]
    assert f"CIFAR-10 from {tmp_path / 'data'}" in (trained / "train.log").read_text()


def test_moved_data_names_the_key_each_command_accepts(trained, tmp_path, monkeypatch, compose_config):
    (tmp_path / "data").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as refused:
        eval_command.run(compose_config(f"checkpoint={trained}", "device=cpu", config_name="eval", tiny=False))
    assert "point dataset_root at" in str(refused.value)
    assert "dataset.root" not in str(refused.value) and "MGNET_DATA_DIR" not in str(refused.value)
    found = compose_config(f"checkpoint={trained}", "device=cpu", "dataset_root=moved", config_name="eval", tiny=False)
    assert eval_command.run(found) == json.loads((trained / "results.json").read_text())["best_test_acc"]

    result = mgnet("train", f"resume={trained}", "trainer.epochs=3", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"not found in {tmp_path / 'data'}" in result.stderr and "point dataset.root at" in result.stderr
    assert "MGNET_DATA_DIR" not in result.stderr
    mgnet("train", f"resume={trained}", "trainer.epochs=3", "dataset.root=moved", cwd=tmp_path)
    assert json.loads((trained / "results.json").read_text())["epochs"] == 3
