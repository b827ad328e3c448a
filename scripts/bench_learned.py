"""Measures a learned smoother against the classical ones: factors, operations per cycle, times.

    .venv/bin/python scripts/bench_learned.py --checkpoint outputs/learned/learned_smoother.pt
    .venv/bin/python scripts/bench_learned.py --checkpoint ... --wait-idle 60 --png docs/learned_kernels.png

Factors are ``measured_factor`` (seed 0) as ``bench_solve.py --factors`` has them (a
random problem to 1e-10 from ``u = 0``, geometric mean over the second half of the cycles), on
grids the smoother was not trained on. Operations per cycle are counted over three cycles, every
stencil pass tallied (see ``count_operations``); times are the best of ``--repeats`` solves to
1e-8 after a warm-up, timed by bench_solve.py's ``timed_solves``.
"""

import argparse
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

import bench_solve  # scripts/ is on sys.path when this file is run
from mgnet_cli.pde.learned_smoother import KernelPass
from mgnet_cli.pde.poisson import Laplacian, right_hand_side
from mgnet_cli.pde.smoother_learning import kernel_table, load_learned, measured_factor, with_kernels
from mgnet_cli.pde.smoothers import ChebyshevPolynomial, DampedJacobi, RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid, build_cycle, iterate

log = logging.getLogger("bench_learned")

SMOOTHERS = [("damped Jacobi ω = 4/5", DampedJacobi), ("red-black Gauss–Seidel", RedBlackGaussSeidel),
             ("Chebyshev, degree = steps", ChebyshevPolynomial), ("learned 3×3 kernel", None)]


def with_steps(multigrid: Multigrid, steps: int) -> Multigrid:
    return multigrid.but(pre_smooth=steps, post_smooth=steps)


class CountedLaplacian(Laplacian):
    """The 5-point Laplacian of a level that tallies each of its passes, ``A u`` and ``f - A u``."""

    def __init__(self, h: float, tally: Callable[[int], None]) -> None:
        super().__init__(h)
        self.tally = tally

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.tally(u.shape[-1])
        return super().forward(u)

    def residual(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        self.tally(u.shape[-1])
        return super().residual(u, f)


def count_operations(n: int, multigrid: Multigrid, cycles: int = 3) -> tuple[float, Counter]:
    """Stencil passes per cycle (A or f - Au, K, R, P), each weighted by its grid's points over the
    finest grid's, and the unweighted count on the finest level. Pointwise updates and the
    coarsest grid's direct solve are not counted; the residual the solver forms after each cycle
    (its stopping test, reused by the next cycle's first smoothing step) is.

    Each level above the coarsest gets a ``CountedLaplacian``; R, P and the learned smoother's
    ``KernelPass`` are counted by forward hooks, R and P on the fine grid they read or write."""
    cycle, _ = build_cycle(n, multigrid, torch.float64, "cpu")
    weighted, finest = Counter(), Counter()

    def tally(kind: str, size: int) -> None:
        weighted[kind] += ((size + 1) / (n + 1)) ** 2
        if size == n:
            finest[kind] += 1

    def hook(kind: str, grid: Callable[[tuple, torch.Tensor], torch.Tensor]) -> Callable[..., None]:
        return lambda module, args, output: tally(kind, grid(args, output).shape[-1])

    for level in cycle.levels[:-1]:
        level.A = CountedLaplacian(level.A.h, partial(tally, "A"))
        level.R.register_forward_hook(hook("R", lambda args, output: args[0]))
        level.P.register_forward_hook(hook("P", lambda args, output: output))
    for module in cycle.modules():
        if isinstance(module, KernelPass):  # on the level whose residual it convolves
            module.register_forward_hook(hook("K", lambda args, output: args[0]))
    with torch.inference_mode():
        f = right_hand_side("random", n)
        iterate(cycle, cycle.levels[0].A, f, tol=0.0, max_cycles=cycles)
    total = sum(weighted.values()) / cycles
    return total, Counter({kind: count // cycles for kind, count in finest.items()})


def time_to_tolerance(n: int, multigrid: Multigrid, repeats: int,
                      wait_s: float) -> tuple[int, float, int]:
    """Cycles, best solve time (s) to 1e-8 and how many solves started on an idle machine, as
    bench_solve.py times the classical smoothers."""
    result, times, idle = bench_solve.timed_solves(n, multigrid, 1e-8, repeats, wait_s)
    return result.cycles, min(times), idle


def plot_kernels(kernels: list[tuple[str, torch.Tensor]], path: Path) -> None:
    """Each 3x3 kernel as a small heat map with its values written in (one colour scale)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2.5 * len(kernels) + 0.8, 2.6), layout="constrained")
    axes = figure.subplots(1, len(kernels), squeeze=False)[0]
    top = max(kernel.abs().max().item() for _, kernel in kernels)
    for ax, (title, kernel) in zip(axes, kernels):
        image = ax.imshow(kernel.numpy(), cmap="RdBu_r", vmin=-top, vmax=top)
        for i in range(3):
            for j in range(3):
                value = kernel[i, j].item()
                ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(value) > 0.6 * top else "black")
        ax.set_title(title, fontsize=9)
        ax.set(xticks=[], yticks=[])
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="units of D⁻¹ = h²/4")
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a learned_smoother.pt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[127, 1023], help="factor grids")
    parser.add_argument("--time-n", type=int, default=1023)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--png", type=Path, help="write the kernels as heat maps here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    kernels, state = load_learned(args.checkpoint)
    log.info("torch %s, %d threads, float64; load average %.2f; %s, learned for %s with %s",
             torch.__version__, torch.get_num_threads(), os.getloadavg()[0], args.checkpoint,
             state["cycle"], state["settings"])
    log.info("kernels in units of D^-1 = h^2/4:\n%s\n", kernel_table(kernels, 0.8))
    base = Multigrid()
    header = " | ".join(f"V({s},{s}) n = {n}" for s in (1, 2) for n in args.sizes)
    log.info("| smoother | %s | ops per cycle V(1,1) / V(2,2) | n = %d to 1e-8: V(1,1) | V(2,2) "
             "| idle starts |", header, args.time_n)
    log.info("|%s", " --- |" * (5 + 2 * len(args.sizes)))
    for label, name in SMOOTHERS:
        multigrid = with_kernels(base, kernels) if name is None else replace(base, smoother=name)
        factors = [measured_factor(n, with_steps(multigrid, s), seed=0) for s in (1, 2) for n in args.sizes]
        ops = [count_operations(args.time_n, with_steps(multigrid, s)) for s in (1, 2)]
        times = [time_to_tolerance(args.time_n, with_steps(multigrid, s), args.repeats, args.wait_idle)
                 for s in (1, 2)]
        log.info("| %s | %s | %s | %s | %s |", label, " | ".join(f"{f:.3f}" for f in factors),
                 " / ".join(f"{total:.2f} ({'+'.join(f'{c[k]}{k}' for k in 'AKRP' if c[k])})"
                            for total, c in ops),
                 " | ".join(f"{cycles} cycles, {seconds:.3f} s" for cycles, seconds, _ in times),
                 " + ".join(f"{idle}/{args.repeats}" for *_, idle in times))
    if args.png:
        jacobi = torch.zeros(3, 3, dtype=torch.float64)
        jacobi[1, 1] = 0.8
        plot_kernels([("damped Jacobi ω = 4/5", jacobi)]
                     + [(f"learned ({label})", kernel.detach()) for label, kernel in kernels.labelled()],
                     args.png)
        log.info("kernels drawn in %s", args.png)


if __name__ == "__main__":
    main()
