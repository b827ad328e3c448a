"""A newcomer's ``mgnet solve problem.n=N`` against PyAMG's default solver, in one run (issue 24).

mgnet runs as a user runs it, with nothing but the size given (its default smoother, cycle and
threads: every core that is idle now), as a separate process; its setup and solve times come from
the run's results.json. PyAMG's ``ruge_stuben_solver`` with its defaults (the second pass, V(1,1)
symmetric Gauss-Seidel; SciPy's sparse kernels are single-threaded) solves the same 5-point
Poisson matrix, built here with SciPy independently of mgnet, for a standard-normal right-hand
side, to the same relative residual 1e-8, setup included. Rounds alternate the two; each side's
best round is kept (other processes only ever slow a round down).

    .venv/bin/python scripts/bench_default_solve.py                 # n = 1023, 3 rounds
    .venv/bin/python scripts/bench_default_solve.py --n 2047 --rounds 2 --wait-idle 5
Needs the ``[bench]`` extra (pyamg).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

try:
    import pyamg
except ImportError:
    sys.exit("pyamg is not installed: pip install -e '.[bench]'")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import settle  # noqa: E402  (scripts/bench.py)

TOLERANCE = 1e-8


def poisson_matrix(n: int) -> sp.csr_matrix:
    """The 5-point Laplacian on n x n interior points (h^2-scaled: 4 on the diagonal)."""
    line = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    return sp.csr_matrix(sp.kronsum(line, line))


def pyamg_seconds(matrix: sp.csr_matrix, rhs: np.ndarray) -> tuple[float, int]:
    """Setup + solve to TOLERANCE, and the cycles it took."""
    start = time.perf_counter()
    hierarchy = pyamg.ruge_stuben_solver(matrix)
    residuals: list[float] = []
    solution = hierarchy.solve(rhs, tol=TOLERANCE, maxiter=100, residuals=residuals)
    seconds = time.perf_counter() - start
    relative = np.linalg.norm(rhs - matrix @ solution) / np.linalg.norm(rhs)
    if relative > 10 * TOLERANCE:
        sys.exit(f"PyAMG stopped at relative residual {relative:.2e}")
    return seconds, len(residuals) - 1


def mgnet_seconds(n: int, folder: Path) -> tuple[float, int, str]:
    """``mgnet solve problem.n=n`` as a process: setup + solve seconds, cycles, the start line."""
    command = [sys.executable, "-m", "mgnet_cli", "solve", f"problem.n={n}", f"hydra.run.dir={folder}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        sys.exit(f"mgnet solve failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    results = json.loads((folder / "results.json").read_text())
    if results["status"] != "converged":
        sys.exit(f"mgnet solve did not converge: {results['status']}")
    start = next((line.split(" - ", 1)[-1] for line in (done.stdout + done.stderr).splitlines()
                  if "thread" in line), "")
    return results["setup_time_s"] + results["solve_time_s"], results["cycles"], start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1023, help="interior points per side, 2^L - 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="start each round only after the machine was idle this long")
    args = parser.parse_args()
    matrix = poisson_matrix(args.n)
    rhs = np.random.default_rng(0).standard_normal(matrix.shape[0])
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.rounds):
            if args.wait_idle:
                settle(args.wait_idle)
            ours.append(mgnet_seconds(args.n, Path(scratch) / f"run{index}"))
            theirs.append(pyamg_seconds(matrix, rhs))
    best_ours, best_theirs = min(ours), min(theirs)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"{cpu}, {os.cpu_count()} cores; Poisson n = {args.n} ({args.n**2:,} unknowns) to {TOLERANCE:g}, "
          f"setup included; best of {args.rounds} alternating rounds\n")
    print("| solver | seconds | cycles |\n| --- | ---: | ---: |")
    print(f"| `mgnet solve problem.n={args.n}` (defaults) | {best_ours[0]:.3f} | {best_ours[1]} |")
    print(f"| PyAMG {pyamg.__version__} ruge_stuben_solver (defaults), 1 thread | {best_theirs[0]:.3f} | {best_theirs[1]} |")
    print(f"\nmgnet's start line: {best_ours[2]}")
    print(f"mgnet is **{best_theirs[0] / best_ours[0]:.1f}x** faster (target >= 8)")


if __name__ == "__main__":
    main()
