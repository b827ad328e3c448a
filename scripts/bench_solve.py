"""Times ``mgnet solve``'s multigrid on a million unknowns and more, and measures convergence factors.

    .venv/bin/python scripts/bench_solve.py                  # n = 1023 and 2047 to 1e-8, float64
    .venv/bin/python scripts/bench_solve.py --factors        # the factor table of docs/benchmarks.md
    .venv/bin/python scripts/bench_solve.py --errors         # the sine problem's error against h
    .venv/bin/python scripts/bench_solve.py --operators      # stencils as slices vs convolutions

Each timing is the best of ``--repeats`` solves after a warm-up (other processes on a shared
machine only ever slow a run down); the median is printed beside it. On a shared machine,
``--wait-idle 60`` starts each solve only once the other processes leave the CPUs idle.
"""

import argparse
import logging
import os
import statistics
from functools import partial

import torch

from mgnet_cli.pde.poisson import BilinearInterpolation, FullWeighting, Laplacian
from mgnet_cli.pde.smoother_learning import measured_factor
from mgnet_cli.pde.smoothers import ChebyshevPolynomial, DampedJacobi, RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid, SolveResult, solve_poisson
from mgnet_cli.schema.solve import SolverConfig
from mgnet_cli.timing import timed, wait_until_idle

log = logging.getLogger("bench_solve")

# (smoother, cycle, pre, post, omega)
TIMED = [("jacobi", "v", 1, 1, 0.8), ("jacobi", "v", 2, 2, 0.8), ("gauss_seidel_rb", "v", 1, 1, 0.8),
         ("chebyshev", "v", 2, 2, 0.8), ("gauss_seidel_rb", "w", 1, 1, 0.8)]
FACTORS = [("jacobi", 0.8), ("jacobi", 2 / 3), ("gauss_seidel_rb", 0.8), ("chebyshev", 0.8)]
QUIET_S = 0.25  # a timed run starts after the CPUs have been idle this long (--wait-idle: how long to wait)


def multigrid(smoother: str, cycle: str, pre: int, post: int, omega: float) -> Multigrid:
    factory = {"jacobi": partial(DampedJacobi, omega=omega), "gauss_seidel_rb": RedBlackGaussSeidel,
               "chebyshev": ChebyshevPolynomial}[smoother]
    return Multigrid(SolverConfig(cycle=cycle, pre_smooth=pre, post_smooth=post), factory)


def timed_solves(n: int, choice: Multigrid, tol: float, repeats: int,
                 wait_s: float) -> tuple[SolveResult, list[float], int]:
    """The last result, the solve times of ``repeats`` runs after a warm-up, and how many of them
    started on an idle machine (each waits up to ``wait_s`` for one)."""
    choice = choice.but(tol=tol)
    solve_poisson(n, "random", choice)
    runs, idle = [], 0
    for _ in range(repeats):
        idle += wait_until_idle(QUIET_S, give_up_s=wait_s)
        runs.append(solve_poisson(n, "random", choice))
    return runs[-1], [run.solve_time_s for run in runs], idle


def time_solves(sizes: list[int], tol: float, repeats: int, wait_s: float) -> None:
    log.info("| n | cycle | smoother | cycles | factor | setup s | ms per cycle | solve s (best) "
             "| solve s (median) | idle starts |")
    log.info("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        for smoother, cycle, pre, post, omega in TIMED:
            choice = multigrid(smoother, cycle, pre, post, omega)
            result, times, idle = timed_solves(n, choice, tol, repeats, wait_s)
            best = min(times)
            log.info("| %d | %s(%d,%d) | %s | %d | %.3f | %.3f | %.1f | %.3f | %.3f | %d/%d |", n,
                     cycle.upper(), pre, post, smoother, result.cycles, result.convergence_factor,
                     result.setup_time_s, 1e3 * best / result.cycles, best,
                     statistics.median(times), idle, repeats)


def measure_factors(sizes: list[int]) -> None:
    log.info("| smoother | cycle | %s |", " | ".join(f"n = {n}" for n in sizes))
    log.info("| --- | --- |%s", " --- |" * len(sizes))
    for smoother, omega in FACTORS:
        name = f"{smoother} (omega {omega:.3g})" if smoother == "jacobi" else smoother
        for steps in (1, 2):
            choice = multigrid(smoother, "v", steps, steps, omega)
            factors = [measured_factor(n, choice, seed=0) for n in sizes]
            log.info("| %s | V(%d,%d) | %s |", name, steps, steps, " | ".join(f"{f:.3f}" for f in factors))


def measure_errors(sizes: list[int]) -> None:
    log.info("| n | h | max error | L2 error | ratio to the previous n |")
    log.info("| --- | --- | --- | --- | --- |")
    previous = None
    for n in sizes:
        result = solve_poisson(n, "sine", multigrid("jacobi", "v", 2, 2, 0.8).but(tol=1e-10))
        ratio = "" if previous is None else f"{previous / result.error_max:.4f}"
        log.info("| %d | 1/%d | %.4e | %.4e | %s |", n, n + 1, result.error_max, result.error_l2, ratio)
        previous = result.error_max


def time_operators(n: int, repeats: int, wait_s: float) -> None:
    """Each fixed operator as shifted slices (what the solver runs) against its own convolution."""
    u, coarse = torch.randn(1, 1, n, n, dtype=torch.float64), torch.randn(1, 1, n // 2, n // 2, dtype=torch.float64)
    cases = [("A (5-point Laplacian)", Laplacian(1.0 / (n + 1)), u),
             ("R (full weighting)", FullWeighting(), u), ("P (bilinear)", BilinearInterpolation(), coarse)]
    log.info("| operator, n = %d, float64 (best of %d) | slices ms | conv ms |", n, repeats)
    log.info("| --- | --- | --- |")
    with torch.inference_mode():
        for name, operator, x in cases:
            times = []
            for apply in (operator, operator.conv):
                apply(x)
                each = []
                for _ in range(repeats):
                    wait_until_idle(QUIET_S, give_up_s=wait_s)
                    each.append(timed(x.device, partial(apply, x)))
                times.append(1e3 * min(each))
            log.info("| %s | %.2f | %.2f |", name, *times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1023, 2047])
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each timed solve, wait up to this long for an idle machine")
    parser.add_argument("--factors", action="store_true", help="measure factors at n = 63 .. 511")
    parser.add_argument("--errors", action="store_true", help="sine errors at n = 31 .. 1023")
    parser.add_argument("--operators", action="store_true", help="slices against convolutions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    log.info("torch %s, %d threads, float64; load average %.2f (other processes slow every "
             "parallel op: compare best times, or use --wait-idle)", torch.__version__,
             torch.get_num_threads(), os.getloadavg()[0])
    if args.factors:
        measure_factors([63, 127, 255, 511])
    elif args.errors:
        measure_errors([31, 63, 127, 255, 511, 1023])
    elif args.operators:
        time_operators(args.sizes[0], 10 * args.repeats, args.wait_idle)
    else:
        time_solves(args.sizes, args.tol, args.repeats, args.wait_idle)


if __name__ == "__main__":
    main()
