"""Learning the smoother's kernels by gradient descent through unrolled multigrid cycles.

Every step draws a batch of random problems on each training grid: ``f`` and ``u_0`` standard
normal, ``u_0`` scaled by ``D^-1 = h^2 / 4`` so that ``f`` and ``A u_0`` are of one size and the
initial residual holds every frequency. It runs ``cycles`` cycles of the solver's own
``MultigridCycle`` (built by ``build_cycle`` with the learned smoother) and minimises the mean log
residual reduction per cycle, ``log(||r_k|| / ||r_0||) / k``. Every ``measure_every`` steps the
convergence factor is measured as for every other smoother (``solve_poisson`` from ``u = 0``), on
a random problem of a grid size not trained on. The loop, the result and the file are learning.py's.
"""

from dataclasses import replace
from functools import partial
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import logging
import math

import torch

from mgnet_cli.cycle import MultigridCycle
from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.learned_smoother import START_OMEGA, LearnedKernels, LearnedSmoother
from mgnet_cli.pde.learning import (LearningResult, MakeOptimizer, Part, Schedule, cycle_record, learn, load_part,
                                    measure_size, save_part)
from mgnet_cli.pde.poisson import coarse_size
from mgnet_cli.pde.solve import Multigrid, build_cycle, solve_poisson
from mgnet_cli.schema.solve import LearnedSmootherConfig


log = logging.getLogger(__name__)


def with_kernels(multigrid: Multigrid, kernels: LearnedKernels) -> Multigrid:
    """``multigrid`` with the learned smoother and these kernels."""
    return replace(multigrid, smoother=partial(LearnedSmoother, kernels=kernels))


def smoothed_sizes(train_sizes: Iterable[int], coarsest_n: int) -> list[int]:
    """Every grid size a cycle on the training grids smooths (all but the coarsest)."""
    sizes = set()
    for n in train_sizes:
        while n > coarsest_n:
            sizes.add(n)
            n = coarse_size(n)
    return sorted(sizes)


def measured_factor(n: int, multigrid: Multigrid, seed: int = 1,
                    device: torch.device | str = "cpu") -> float:
    """The asymptotic factor as bench_solve.py measures every smoother: a random problem to 1e-10."""
    measuring = multigrid.but(tol=1e-10, max_cycles=80, dtype="float64")
    return solve_poisson(n, "random", measuring, device, seed).convergence_factor


def log_reduction(cycle: MultigridCycle, f: torch.Tensor, u: torch.Tensor, cycles: int) -> torch.Tensor:
    """Mean over the batch of ``log(||r_k|| / ||r_0||) / k`` after ``k = cycles`` cycles from ``u``."""
    A = cycle.levels[0].A
    residual = A.residual(u, f)
    start = torch.linalg.vector_norm(residual, dim=(-2, -1))
    for _ in range(cycles):
        u = cycle(u, f, residual)
        residual = A.residual(u, f)
    end = torch.linalg.vector_norm(residual, dim=(-2, -1))
    return (end.log() - start.log()).mean() / cycles


def random_problems(cycle: MultigridCycle, n: int, batch: int, generator: torch.Generator,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f, u_0)``, each (batch, 1, n, n): standard normal, ``u_0`` scaled by ``D^-1``."""
    shape, dtype = (batch, 1, n, n), torch.float64
    f = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    u = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    return f, u / cycle.levels[0].A.diagonal


class SmootherTask:
    """The learned smoother's ``Task`` (learning.py): its kernels inside ``multigrid``'s Poisson cycles
    on the training grids, its factor measured on the next finer grid from the start (damped Jacobi)."""

    name, tag, measures_start = "smoother", "learned", True
    batch_factor = staticmethod(math.exp)  # of the loss, a mean log reduction per cycle

    def __init__(self, settings: LearnedSmootherConfig, multigrid: Multigrid, device: torch.device) -> None:
        sizes = [] if settings.shared else smoothed_sizes(settings.train_sizes, multigrid.config.coarsest_n)
        self.settings, self.device = settings, device
        self.model = LearnedKernels(sizes, omega=START_OMEGA).to(device)
        self.multigrid = with_kernels(multigrid, self.model)
        self.cycles = {n: build_cycle(n, self.multigrid, torch.float64, device)[0] for n in settings.train_sizes}
        self.generator = torch.Generator(device).manual_seed(settings.seed)

    def loss(self) -> torch.Tensor:
        settings = self.settings
        return torch.stack([log_reduction(cycle, *random_problems(cycle, n, settings.batch, self.generator,
                                                                  self.device), settings.cycles)
                            for n, cycle in self.cycles.items()]).mean()

    def measure(self) -> tuple[float, dict[str, float]]:
        factor = measured_factor(measure_size(self.settings), self.multigrid, seed=self.settings.seed + 1,
                                 device=self.device)
        return factor, {}


def learn_smoother(settings: LearnedSmootherConfig, multigrid: Multigrid, make_optimizer: MakeOptimizer,
                   schedule: Schedule, run_dir: Path | None = None,
                   device: torch.device | str = "cpu") -> LearningResult:
    """Trains kernels for ``multigrid``'s cycle on ``device``; MgnetError if the result does not converge."""
    result = learn(SmootherTask(settings, multigrid, torch.device(device)), settings, make_optimizer, schedule,
                   run_dir)
    final = result.factors[-1][1]
    if not all(bool(torch.isfinite(kernel).all()) for kernel in result.model.kernels) or not final < 1:
        raise MgnetError(f"learning the smoother blew up (factor {final:.3g} on the unseen grid, or "
                         "kernels not finite): nothing saved or used; lower solver.smoother.learning.optimizer.lr")
    return result


def save_learned(path: Path, result: LearningResult, multigrid: Multigrid) -> None:
    """The kernels, the settings they were learned with and the training record, weights-only."""
    save_part(path, result, cycle_record(multigrid, omega=START_OMEGA))


def load_learned(path: Path, multigrid: Multigrid | None = None) -> tuple[LearnedKernels, dict[str, Any]]:
    """The kernels of a ``save_learned`` checkpoint and its other entries; MgnetError if it is none.
    (``multigrid``: a part's load takes it; kernels are checked by their file alone.)"""
    return load_part(path, LearnedKernels.from_state, LearnedSmootherConfig, "kernels")


def described(kernels: LearnedKernels) -> dict[str, Any]:
    """Logs the kernels beside damped Jacobi's; their entry in results.json."""
    log.info("3x3 kernels in units of D^-1 = h^2/4:\n%s", kernel_table(kernels, START_OMEGA))
    return {"kernels": {where: kernel.detach().cpu().tolist() for where, kernel in kernels.labelled()}}


def kernel_table(kernels: LearnedKernels, omega: float) -> str:
    """The learned kernels beside damped Jacobi's, in units of ``D^-1 = h^2 / 4``."""
    jacobi = torch.zeros(3, 3, dtype=torch.float64)
    jacobi[1, 1] = omega
    columns = [(f"damped Jacobi (omega {omega:g})", jacobi)]
    columns += [(f"learned, {label}", kernel.detach().cpu()) for label, kernel in kernels.labelled()]
    width = max(len(name) for name, _ in columns)
    lines = ["   ".join(f"{name:<{width}}" for name, _ in columns)]
    for row in range(3):
        lines.append("   ".join(f"{' '.join(f'{value:7.4f}' for value in kernel[row].tolist()):<{width}}"
                                for _, kernel in columns))
    return "\n".join(line.rstrip() for line in lines)


PART = Part(LearnedSmoother.__name__, "solver.smoother.learning", "learned_smoother", load=load_learned,
            learn=learn_smoother, save=save_learned, use=with_kernels, describe=described)
