"""Sweeps: every job recorded as it ends, a failing job does not stop the others, no leaks."""

import csv
import json
import multiprocessing

import pytest
import yaml

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mgnet_cli.cli.sweep import COLUMNS, read_rows, record_row
from tests.helpers import TINY, mgnet, one_line_error


def test_sweep_with_a_failing_job_keeps_every_row(tmp_path):
    """A job that fails while training (lr 1e12: the loss becomes NaN) is recorded; the rest run."""
    sweep = tmp_path / "sweep"
    result = mgnet("train", "-m", *TINY, "trainer.limit_train_batches=null", "optimizer.lr=0.1,1e12", "seed=0,1",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False)
    assert result.returncode == 1  # a job failed: the sweep says so, after running the rest
    with (sweep / "summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["status"] for row in rows] == ["completed", "completed", "failed", "failed"]
    assert all("NaN or infinite" in row["error"] for row in rows[2:])
    assert all(0 <= float(row["best_test_acc"]) <= 1 for row in rows[:2])
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert any("optimizer.lr=1000000000000.0" in name and "seed=1" in name for name in folders)
    failed = json.loads((sweep / folders[-1] / "results.json").read_text())
    assert failed["status"] == "failed" and "NaN or infinite" in failed["error"]

    report = mgnet("report", str(sweep), cwd=tmp_path).stdout
    assert "| optimizer.lr=0.1 | 2 | 0 1 |" in report  # seeds pooled into one row
    assert report.count("failed: ") == 2 and (sweep / "report.md").is_file()
    assert (sweep / "accuracy_vs_parameters.png").is_file()


def test_a_sweep_with_an_invalid_job_starts_no_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = mgnet("train", "-m", *TINY, "smoother=resnet,densenet", "smoother.b_per_step=false",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False)
    line = one_line_error(result, "train")
    assert "smoother.b_per_step=false: densenet needs true" in line and "in the job smoother=densenet" in line
    assert not sweep.exists()


def test_jobs_in_one_process_do_not_leak_state(tmp_path):
    """Two jobs with the same seed in one process must train identically."""
    sweep = tmp_path / "sweep"
    mgnet("train", "-m", *TINY, "smoother=chebyshev", "trainer.epochs=1,1", "trainer.deterministic=true",
          f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    runs = sorted(path.parent for path in sweep.rglob("results.json"))
    first, second = (json.loads((run / "results.json").read_text())["history"] for run in runs)
    assert first[0]["train_loss"] == second[0]["train_loss"]
    assert first[0]["test_acc"] == second[0]["test_acc"]


def test_hparams_are_in_the_runs_own_event_folder(tmp_path):
    run = tmp_path / "run"
    mgnet("train", *TINY, "smoother=chebyshev", f"hydra.run.dir={run}", cwd=tmp_path)
    assert not [path for path in run.iterdir() if path.is_dir() and path.name != ".hydra"]
    events = EventAccumulator(str(run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["smoother"].string_value == "chebyshev"
    assert hparams["model.channels"].number_value == 8
    assert "hparams/best_test_acc" in events.Tags()["scalars"]


def test_optuna_search_maximises_the_returned_accuracy(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")
    sweep = tmp_path / "search"
    mgnet("train", "-m", "search=optuna", *TINY, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}",
          cwd=tmp_path)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    with (sweep / "summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and all(row["status"] == "completed" for row in rows)
    assert best["best_value"] == max(float(row["best_test_acc"]) for row in rows)
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay", "smoother"}


def test_optuna_selects_on_the_validation_split_when_there_is_one(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")
    sweep = tmp_path / "search"
    mgnet("train", "-m", "search=optuna", *TINY, "dataset.val_size=16", "hydra.sweeper.n_trials=2",
          f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    runs = [json.loads(path.read_text()) for path in sweep.glob("*/results.json")]
    assert len(runs) == 2
    assert best["best_value"] == max(run["best_val_acc"] for run in runs)


def record_jobs(path, first: int, count: int, start) -> None:
    start.wait()
    for job in range(first, first + count):
        record_row(path, dict.fromkeys(COLUMNS, "") | {"job": job, "status": "completed"})


def test_jobs_ending_together_in_other_processes_keep_every_row(tmp_path):
    """SLURM array jobs (or one sweep per GPU into one folder) end at the same moment and each adds
    its row: 6 processes x 8 rows, all started at once, leave all 48 rows."""
    path, context = tmp_path / "summary.csv", multiprocessing.get_context("fork")
    start = context.Barrier(6)
    workers = [context.Process(target=record_jobs, args=(path, 8 * i, 8, start)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert [int(row["job"]) for row in read_rows(path)] == list(range(48))


def test_the_objective_can_insist_on_a_validation_split(tmp_path):
    line = one_line_error(mgnet("train", *TINY, "objective=val", cwd=tmp_path, check=False), "train")
    assert "objective=val: needs a validation split" in line
