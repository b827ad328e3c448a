"""Checkpoints: atomic, plain data, and nothing in them runs on load."""

import os
import pickle

import pytest
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.storage import write_json_atomic
from mgnet_cli.train.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "config": {"a": [1, 2]}}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["epoch"] == 3 and loaded["config"] == {"a": [1, 2]}
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_failed_write_keeps_the_previous_file(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"epoch": 1})
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "c.pt", {"bad": object()})
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


class Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        pickle.dump({"format_version": 1, "model": Payload()}, file, protocol=2)
    with pytest.raises(MgnetError, match="cannot be loaded safely"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(MgnetError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(MgnetError, match="not an mgnet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(MgnetError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")


def test_weights_of_another_architecture_are_explained():
    from torch import nn

    from mgnet_cli.train.checkpoint import load_weights

    small, wide = nn.Sequential(nn.Linear(2, 3)), nn.Sequential(nn.Linear(2, 4))
    with pytest.raises(MgnetError, match=r"another architecture.*2 of another shape \(e.g. 0.weight \(3, 2\) vs \(4, 2\)\)"):
        load_weights(wide, small.state_dict(), "c.pt")
    with pytest.raises(MgnetError, match="2 missing"):
        load_weights(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)), small.state_dict(), "c.pt")
    load_weights(small, nn.Sequential(nn.Linear(2, 3)).state_dict(), "c.pt")  # same shape: loads
