"""The ``mgnet`` command end to end, in a subprocess, in a temporary folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import BIN, TINY, cli, mgnet


@pytest.mark.process
def test_help_lists_the_commands(tmp_path):
    out = mgnet("--help", cwd=tmp_path).stdout
    assert "train" in out and "info" in out and "solve" in out
    train_help = mgnet("train", "--help", cwd=tmp_path).stdout
    for group in ("dataset", "model", "smoother", "optimizer", "scheduler", "trainer", "experiment"):
        assert f"\n  {group} " in train_help
    assert "resnet*" in train_help and "chebyshev" in train_help and "schema" not in train_help
    assert "eval.tta=none             test-time augmentation" in train_help  # the key's help, from its schema


@pytest.mark.process
@pytest.mark.parametrize("command, own, foreign", [
    ("eval", "checkpoint=???            required: a checkpoint file", "smoother"),
    ("solve", "solver/smoother  chebyshev", "smoother  chebyshev, densenet"),
    ("info", "info.format=table", "schema"),
])
def test_each_commands_help_shows_its_own_keys_only(tmp_path, command, own, foreign):
    out = mgnet(command, "--help", cwd=tmp_path).stdout
    assert out.startswith(f"usage: mgnet {command}") and own in out and foreign not in out


@pytest.mark.process
def test_version_names_mgnet_torch_and_the_device(tmp_path):
    import mgnet_cli

    out = mgnet("--version", cwd=tmp_path).stdout.strip()
    assert out.startswith(f"mgnet {mgnet_cli.__version__} (") and f"torch {torch.__version__}" in out
    device = f"CUDA {torch.version.cuda}: " if torch.cuda.is_available() else "no CUDA device (trains on the CPU)"
    assert device in out and len(out.splitlines()) == 1


@pytest.mark.process
def test_unknown_command_is_one_line(tmp_path):
    result = mgnet("fly", cwd=tmp_path, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "unknown command 'fly'" in result.stderr


def test_info_prints_the_papers_parameter_count(tmp_path):
    out = cli("info", "dataset=cifar10", "model.channels=256", "model.smoothing_steps=[2,2,2,2]",
              "smoother=resnet", cwd=tmp_path).stdout
    assert "8,278,794" in out and "32x32" in out and "4x4" in out
    facts = json.loads(cli("info", "dataset=cifar100", "smoother.b_per_step=true", "info.format=json",
                           cwd=tmp_path).stdout)
    assert facts["parameters"] == 10_661_220 and len(facts["levels"]) == 4
    assert list(tmp_path.iterdir()) == []  # info writes nothing


def test_train_end_to_end_with_tensorboard_events(tmp_path):
    run_dir = tmp_path / "run"
    cli("train", *TINY, "smoother=chebyshev", "trainer.epochs=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs"] == 2
    assert {"best_test_acc", "final_test_acc", "parameters", "wall_time_s"} <= set(results)
    assert (run_dir / "config.yaml").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["config"]["smoother"]["_target_"].endswith("ChebyshevSmoother")
    assert (run_dir / "best.pt").is_file()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {"train/loss", "train/acc", "test/loss", "test/acc", "test/top5", "lr", "throughput"}
    assert expected <= tags
    assert [event.step for event in events.Scalars("test/acc")] == [1, 2]


def test_chebyshev_k_is_logged(tmp_path):
    run_dir = tmp_path / "run"
    cli("train", *TINY, "model.smoothing_steps=[2,2]", "smoother=chebyshev", f"hydra.run.dir={run_dir}",
        cwd=tmp_path)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    k_tags = [tag for tag in events.Tags()["scalars"] if tag.endswith("/k_2")]
    assert len(k_tags) == 2  # one k_2 per level


@pytest.mark.process
def test_runs_started_together_get_their_own_folders(tmp_path):
    script = Path(sys.executable).parent / "mgnet"
    processes = [subprocess.Popen([str(script), "train", *TINY], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    runs = sorted(path.parent for path in (tmp_path / "outputs").rglob("results.json"))
    assert len(runs) == 2 and runs[0] != runs[1]


def test_bad_value_is_one_line_exit_2(tmp_path):
    result = cli("train", *TINY, "smoother=densenet", "smoother.b_per_step=false", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("mgnet train: error: smoother.b_per_step=false")


def test_a_run_says_where_it_goes_first_and_logs_the_running_loss(tmp_path):
    run = tmp_path / "run"
    result = cli("train", *TINY, "trainer.limit_train_batches=4", "trainer.log_every_n_steps=2",
                 "trainer.threads=1", f"hydra.run.dir={run}", cwd=tmp_path)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("[")]
    assert f"run folder {run}" in lines[0]
    assert any("epoch 1/1: 2/4 batches, loss " in line for line in lines)
    assert any("1 thread: 1 requested" in line for line in lines)
    log_text = (run / "train.log").read_text()
    assert "\x1b[" not in log_text and f"run folder {run}" in log_text.splitlines()[0]
    events = EventAccumulator(str(run))
    events.Reload()
    assert [event.step for event in events.Scalars("train/running_loss")] == [2, 4]


def test_threads_beyond_the_free_cores_are_named():
    from mgnet_cli.device import choose_threads

    chosen, why = choose_threads(None)
    assert chosen >= 1 and "cores free now" in why
    many, why = choose_threads(4096)  # capped at the usable cores (tests/train/test_threads.py)
    assert many < 4096 and why.startswith("4096 threads asked")


def test_smoke_is_a_tiny_model_and_best_pt_is_last_pt(tmp_path):
    run = tmp_path / "run"
    cli("train", "dataset=synthetic", "trainer=smoke", "trainer.device=cpu", f"hydra.run.dir={run}", cwd=tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["parameters"] < 100_000  # the paper's model has 8,278,794
    assert (run / "best.pt").stat().st_ino == (run / "last.pt").stat().st_ino  # one file, two names
    assert cli("info", "model=resnet18", "trainer=smoke", cwd=tmp_path).stdout.count("parameters: 701,466")


@pytest.mark.process
@pytest.mark.parametrize("line, word, expected", [
    ("mgnet ev", 1, "eval"),
    ("mgnet train dataset=c", 2, "dataset=cifar10 dataset=cifar100"),
    ("mgnet eval spl", 2, "split="),
])
def test_bash_completion_works_for_every_subcommand(tmp_path, line, word, expected):
    script = BIN / "mgnet"
    body = (f'eval "$({script} train --shell-completion install=bash)"; COMP_LINE="{line}"; '
            f'COMP_WORDS=({line}); COMP_CWORD={word}; COMP_POINT=${{#COMP_LINE}}; '
            'hydra_bash_completion; echo "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert result.stdout.strip() == expected, result.stderr
