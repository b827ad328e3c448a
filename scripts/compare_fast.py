"""Trains the same run twice through ``mgnet train``, the plain path and a fast one, and prints
their learning curves side by side: the fast switches must change the speed, not the learning.

    MGNET_DATA_DIR=../shared/data/cifar10-mini .venv/bin/python scripts/compare_fast.py \\
        --fast trainer.precision=bf16 trainer.channels_last=true -- \\
        model.channels=[16,32,64] model.smoothing_steps=[1,1,1] trainer.epochs=4 trainer.device=cpu

Both runs get the overrides after ``--`` and the same seed (so the same initial weights and the same
batches); the plain run adds ``trainer.precision=fp32 trainer.channels_last=false
trainer.compile=false``, the fast run the ``--fast`` overrides. Each writes its usual run folder
under ``--output`` (``plain/`` and ``fast/``); the table comes from their ``results.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PLAIN = ["trainer.precision=fp32", "trainer.channels_last=false", "trainer.compile=false"]


def train(name: str, overrides: list[str], output: Path) -> dict:
    """One ``mgnet train`` run in ``output/name``; its results.json."""
    run_dir = output / name
    command = [sys.executable, "-m", "mgnet_cli", "train", *overrides, f"hydra.run.dir={run_dir}"]
    print(f"{name}: mgnet train {' '.join(overrides)}", flush=True)
    result = subprocess.run(command, env=os.environ | {"PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:  # mgnet's own one-line error (or the end of a traceback)
        print(f"compare_fast.py: the {name} run failed: {result.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        sys.exit(2)
    return json.loads((run_dir / "results.json").read_text())


def table(plain: dict, fast: dict) -> str:
    lines = ["| epoch | train loss plain / fast | test loss plain / fast | test acc plain / fast | "
             "train img/s plain / fast |", "| --- | --- | --- | --- | --- |"]
    for p, f in zip(plain["history"], fast["history"], strict=True):
        lines.append(
            f"| {int(p['epoch'])} | {p['train_loss']:.4f} / {f['train_loss']:.4f} | "
            f"{p['test_loss']:.4f} / {f['test_loss']:.4f} | {p['test_acc']:.2%} / {f['test_acc']:.2%} | "
            f"{p['train_throughput']:.0f} / {f['train_throughput']:.0f} |")
    lines.append(f"\nwall time: plain {plain['wall_time_s']:.1f} s, fast {fast['wall_time_s']:.1f} s; "
                 f"final test accuracy {plain['final_test_acc']:.2%} / {fast['final_test_acc']:.2%} "
                 f"(difference {100 * (fast['final_test_acc'] - plain['final_test_acc']):+.2f} points)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", nargs="+", required=True, metavar="OVERRIDE",
                        help="the fast run's switches, e.g. trainer.precision=bf16 trainer.channels_last=true")
    parser.add_argument("--output", type=Path, help="where the two run folders go (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="mgnet train overrides for both runs (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mgnet-compare-") as scratch:
        output = (args.output or Path(scratch)).resolve()
        plain = train("plain", [*args.overrides, *PLAIN], output)
        fast = train("fast", [*args.overrides, *args.fast], output)
        print(f"fast: {' '.join(args.fast)}")
        print(table(plain, fast))


if __name__ == "__main__":
    main()
