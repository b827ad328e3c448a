"""Sweeps: every job recorded as it ends, a failing job does not stop the others, no leaks."""

import csv
import json
import multiprocessing

import pytest
import yaml

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from mgnet_cli.cli import NAME_BYTES, job_folder
from mgnet_cli.cli.sweep import COLUMNS, read_rows, record_row
from tests.cli.test_solve_learned_cli import crafted_kernels, learned_file  # noqa: F401 (a fixture)
from tests.helpers import TINY, cli, one_line_error


def test_sweep_with_a_failing_job_keeps_every_row(tmp_path):
    """A job that fails while training (lr 1e12: the loss becomes NaN) is recorded; the rest run."""
    sweep = tmp_path / "sweep"
    result = cli("train", "-m", *TINY, "trainer.limit_train_batches=null", "optimizer.lr=0.1,1e12", "seed=0,1",
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

    report = cli("report", str(sweep), cwd=tmp_path).stdout
    assert "| optimizer.lr=0.1 | 2 | 0 1 |" in report  # seeds pooled into one row
    assert report.count("failed: ") == 2 and (sweep / "report.md").is_file()
    assert (sweep / "accuracy_vs_parameters.png").is_file()


LONG_OVERRIDES = ["optimizer.momentum=0.9", "optimizer.weight_decay=0.0005", "optimizer.nesterov=false",
                  "trainer.batch_size=32", "trainer.log_every_n_steps=1", "eval.tta=none", "trainer.threads=1"]
"""With TINY, a 295-byte job folder name (313 with trainer.threads, which named jobs before): an OSError
traceback before job_folder."""


def test_a_sweep_whose_folder_names_would_be_too_long_runs_every_job(tmp_path):
    """The two jobs differ only past the 255th byte: their folders are cut there, end with a digest
    of all the overrides each, and differ; summary.csv holds the overrides whole."""
    sweep = tmp_path / "sweep"
    cli("train", "-m", *TINY, *LONG_OVERRIDES, "trainer.eval_batch_size=64,32", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path)
    folders = sorted(path.name for path in sweep.iterdir() if path.is_dir())
    assert len(folders) == 2 and all(len(name.encode()) == NAME_BYTES for name in folders)
    assert [name[:2] for name in folders] == ["0_", "1_"] and all(name.endswith("_seed=0") for name in folders)
    assert folders[0][2:-20] == folders[1][2:-20] and folders[0][-20:] != folders[1][-20:]
    assert "trainer.threads" not in folders[0] and "optimizer.momentum=0.9" in folders[0]
    rows = read_rows(sweep / "summary.csv")
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert "trainer.eval_batch_size=64" in rows[0]["overrides"] and rows[0]["folder"].endswith(folders[0])


def test_job_folder_names_fit_in_255_bytes_and_keep_short_ones():
    assert job_folder(3, "optimizer.lr=0.1", 7) == "3_optimizer.lr=0.1_seed=7"
    overrides = ",".join(f"dataset.caption_{index}=é{'x' * 20}" for index in range(20))  # 2-byte characters
    name = job_folder(12, overrides, 2**63 - 1)
    assert len(overrides.encode()) > 500 and len(name.encode()) <= NAME_BYTES
    assert name.startswith("12_dataset.caption_0=éxx") and name.endswith(f"_seed={2**63 - 1}")
    assert name != job_folder(12, overrides + "y", 2**63 - 1)  # the digest tells them apart
    assert name == job_folder(12, overrides, 2**63 - 1)  # and names the same job alike


def test_a_sweep_with_an_invalid_job_starts_no_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("train", "-m", *TINY, "smoother=resnet,densenet", "smoother.b_per_step=false",
                 f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False)
    line = one_line_error(result, "train")
    assert "smoother.b_per_step=false: densenet needs true" in line and "in the job smoother=densenet" in line
    assert not sweep.exists()


def test_jobs_in_one_process_do_not_leak_state(tmp_path):
    """Two jobs with the same seed in one process must train identically."""
    sweep = tmp_path / "sweep"
    cli("train", "-m", *TINY, "smoother=chebyshev", "trainer.epochs=1,1", "trainer.deterministic=true",
        "trainer.threads=1",  # deterministic takes every core by default; one is 3x cheaper here
        f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    runs = sorted(path.parent for path in sweep.rglob("results.json"))
    first, second = (json.loads((run / "results.json").read_text())["history"] for run in runs)
    assert first[0]["train_loss"] == second[0]["train_loss"]
    assert first[0]["test_acc"] == second[0]["test_acc"]


def test_hparams_are_in_the_runs_own_event_folder(tmp_path):
    run = tmp_path / "run"
    cli("train", *TINY, "smoother=chebyshev", f"hydra.run.dir={run}", cwd=tmp_path)
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
    cli("train", "-m", "search=optuna", *TINY, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}",
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
    cli("train", "-m", "search=optuna", *TINY, "dataset.val_size=16", "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    runs = [json.loads(path.read_text()) for path in sweep.glob("*/results.json")]
    assert len(runs) == 2
    assert best["best_value"] == max(run["best_val_acc"] for run in runs)


def record_jobs(path, sweep: str, first: int, count: int, start) -> None:
    start.wait()
    for job in range(first, first + count):
        record_row(path, dict.fromkeys(COLUMNS, "") | {"job": job, "status": "completed",
                                                       "folder": str(path.parent / f"{job}_{sweep}")})


def record_at_once(path, jobs: list[tuple[str, int, int]]) -> None:
    """Each (sweep, first job, count) in a process of its own, all released at once."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(len(jobs))
    workers = [context.Process(target=record_jobs, args=(path, *job, start)) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0


def test_jobs_ending_together_in_other_processes_keep_every_row(tmp_path):
    """SLURM array jobs (or one sweep per GPU into one folder) end at the same moment and each adds
    its row: 6 processes x 8 rows, all started at once, leave all 48 rows."""
    path = tmp_path / "summary.csv"
    record_at_once(path, [("a", 8 * i, 8) for i in range(6)])
    assert [int(row["job"]) for row in read_rows(path)] == list(range(48))


def test_two_sweeps_into_one_folder_keep_each_others_rows(tmp_path):
    """Two sweeps given the same hydra.sweep.dir both number their jobs 0 to 7: the rows are the
    job folders', so all 16 stay (keyed by job number, the second sweep's replaced the first's)."""
    path = tmp_path / "summary.csv"
    record_at_once(path, [("lr=0.1", 0, 8), ("lr=0.2", 0, 8)])
    rows = read_rows(path)
    assert sorted(row["folder"] for row in rows) == sorted(str(tmp_path / f"{job}_{sweep}")
                                                           for job in range(8) for sweep in ("lr=0.1", "lr=0.2"))
    record_jobs(path, "lr=0.1", 3, 1, multiprocessing.Barrier(1))  # a job folder written again: one row still
    assert len(read_rows(path)) == 16


def test_a_diverged_solve_job_is_listed_as_diverged_with_its_message(learned_file, tmp_path):
    """Not as "no results.json": the row's status and error are the job's own."""
    sweep, crafted = tmp_path / "sweep", crafted_kernels(learned_file, tmp_path, 6.0)
    result = cli("solve", "-m", "solver/smoother=learned", f"solver.smoother.learning.checkpoint={learned_file},{crafted}",
                 "problem.n=63", "solver.device=cpu", f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    converged, diverged = read_rows(sweep / "summary.csv")
    assert converged["status"] == "completed" and converged["error"] == ""
    assert float(converged["convergence_factor"]) < 1
    assert diverged["status"] == "diverged" and diverged["folder"] == str(sweep / "1")
    assert diverged["error"].startswith("the solve diverged: relative residual ")
    assert float(diverged["convergence_factor"]) > 1


def test_an_optuna_trial_that_fails_is_told_as_failed_and_the_search_goes_on(tmp_path):
    """The sampler's first trial (seed 0) draws lr 1e12: its loss becomes NaN. Optuna is told the
    trial failed, the two others run, the summary lists all three, and the sweep exits 1."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")
    sweep = tmp_path / "search"
    result = cli("train", "-m", "search=optuna", *TINY, "trainer.limit_train_batches=null",
                 "optimizer.lr=choice(0.1,1e12)", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}",
                 cwd=tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    rows = read_rows(sweep / "summary.csv")
    failed = [row for row in rows if row["status"] == "failed"]
    completed = [row for row in rows if row["status"] == "completed"]
    assert len(rows) == 3 and failed and completed
    assert all("optimizer.lr=1000000000000.0" in row["overrides"] and "NaN or infinite" in row["error"]
               for row in failed)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["optimizer.lr"] == 0.1
    assert best["best_value"] == max(float(row["best_test_acc"]) for row in completed)


def test_the_objective_can_insist_on_a_validation_split(tmp_path):
    line = one_line_error(cli("train", *TINY, "objective=val", cwd=tmp_path, check=False), "train")
    assert "objective=val: needs a validation split" in line
