"""Learning a part of the Galerkin cycle through unrolled V cycles on random problems: the learned
prolongation (learned_prolongation.py) or the stencil-aware smoother (stencil_smoother.py).

Every step draws ``batch`` random problems per training grid, of the kinds in ``fields`` taken in
turn: lognormal (``sigma`` uniform in [0.5, 2]), jumps (1 or ``10^U(1, 3)`` per box), anisotropic
(``epsilon = 10^U(-3, -1)``, ``theta`` uniform in [0, pi)); builds each one's hierarchy (``A_c = R A
P`` is differentiable), runs ``cycles`` cycles from a random error (``f = 0``) and minimises the
mean ``log(||r_k|| / ||r_0||) / k``. Every ``measure_every`` steps the factor is measured on fixed
held-out problems of the next finer grid, never trained on. The fields of the benchmarks (seeds 0
and up, problems.py) are other draws: training uses its own generator. The loop, the result and the
file are learning.py's.
"""

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgnet_cli.pde.hierarchy import ProlongationRule, build_galerkin_cycle, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.learning import (LearningResult, MakeOptimizer, Part, Schedule, cycle_record, learn, load_part,
                                    measure_size, save_part)
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.pde.solve import Multigrid, smoother_name
from mgnet_cli.schema.solve import FieldLearningConfig, LearnedProlongationConfig, TrainingField


def random_stencil(n: int, generator: torch.Generator, kind: str) -> torch.Tensor:
    """A training problem's stencil (3, 3, n, n) of ``kind`` (a ``TrainingField``), drawn from ``generator``."""
    uniform = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
    if kind == "jumps":
        contrast = 10 ** (1 + 2 * uniform[0])
        high = torch.rand(n, n, generator=generator, dtype=torch.float64) < 0.5
        return diffusion_stencil(torch.where(high, contrast, 1.0).to(torch.float64))
    if kind == "anisotropic":
        return anisotropic_stencil(n, 10 ** (-3 + 2 * uniform[0]), math.pi * uniform[1])
    if kind != "lognormal":
        raise ValueError(f"fields: {kind!r} is not one of {', '.join(field.value for field in TrainingField)}")
    sigma = 0.5 + 1.5 * uniform[0]
    return diffusion_stencil(torch.exp(sigma * torch.randn(n, n, generator=generator, dtype=torch.float64)))


def held_out_stencil(kind: str, n: int, seed: int) -> torch.Tensor:
    """A problem training never draws: a field of seed ``10_000 + seed``; the anisotropic one at
    ``epsilon = 1e-3``, ``theta = 1`` (the benchmarks' is pi/4)."""
    if kind == "anisotropic":
        return anisotropic_stencil(n, 1e-3, 1.0)
    return diffusion_stencil(coefficient_field(kind, n, seed=10_000 + seed))


def unrolled_loss(stencil: torch.Tensor, rule: ProlongationRule, multigrid: Multigrid,
                  cycles: int, generator: torch.Generator, warm_cycles: int = 4) -> torch.Tensor:
    """``log(||r_k|| / ||r_0||) / k`` over ``k = cycles`` cycles on ``A e = 0``, from a random error
    first put through ``warm_cycles`` cycles without gradient: what is left then is the slowest
    error of the cycle, so the loss measures the asymptotic factor, not the first cycles' gain."""
    cycle, _ = build_galerkin_cycle(stencil, multigrid, rule)
    A = cycle.levels[0].A
    n = stencil.shape[-1]
    f = torch.zeros(1, 1, n, n, dtype=stencil.dtype)
    u = torch.randn(1, 1, n, n, generator=generator, dtype=stencil.dtype)
    with torch.no_grad():
        for _ in range(warm_cycles):
            u = cycle(u, f, None)
            u = u / torch.linalg.vector_norm(u)
    residual = A.residual(u, f)
    start = torch.linalg.vector_norm(residual)
    for _ in range(cycles):
        u = cycle(u, f, residual)
        residual = A.residual(u, f)
    return (torch.linalg.vector_norm(residual).log() - start.log()) / cycles


def held_out_factors(rule: ProlongationRule, multigrid: Multigrid, n: int, seed: int,
                     kinds: Iterable[str]) -> dict[str, float]:
    """The factor on one held-out problem of size ``n`` per kind (``held_out_stencil``, a ``TrainingField``)."""
    factors, measuring = {}, multigrid.but(tol=1e-10, max_cycles=40)
    for kind in kinds:
        f = right_hand_side("random", n, seed=seed)
        factors[kind] = solve_stencil(held_out_stencil(kind, n, seed), f, measuring, rule).convergence_factor
    return factors


class FieldTask:
    """A part of the Galerkin cycle as learning.py's ``Task``: ``model``, inside ``multigrid``'s smoother
    or the prolongation ``rule`` itself, trained on random fields on the CPU (the grids are tiny)."""

    measures_start = False
    device = torch.device("cpu")
    batch_factor = staticmethod(math.exp)  # of the loss, a mean log reduction per cycle

    def __init__(self, model: nn.Module, settings: FieldLearningConfig, multigrid: Multigrid,
                 rule: ProlongationRule, name: str) -> None:
        self.model, self.settings, self.multigrid, self.rule, self.name = model, settings, multigrid, rule, name
        self.tag = f"learned_{name.replace(' ', '_').replace('-', '_')}"
        self.kinds = [str(kind) for kind in settings.fields]  # plain words: they key the saved record
        self.generator = torch.Generator().manual_seed(settings.seed)

    def loss(self) -> torch.Tensor:
        settings, kinds = self.settings, self.kinds
        return torch.stack([unrolled_loss(random_stencil(n, self.generator, kinds[index % len(kinds)]),
                                          self.rule, self.multigrid, settings.cycles, self.generator)
                            for n in settings.train_sizes for index in range(settings.batch)]).mean()

    def measure(self) -> tuple[float, dict[str, float]]:
        held_out = held_out_factors(self.rule, self.multigrid, measure_size(self.settings), self.settings.seed + 1,
                                    self.kinds)
        return sum(held_out.values()) / len(held_out), held_out


def learn_prolongation(settings: LearnedProlongationConfig, multigrid: Multigrid,
                       make_optimizer: MakeOptimizer, schedule: Schedule, run_dir: Path | None = None,
                       device: torch.device | str = "cpu") -> LearningResult:
    """Trains a ``LearnedProlongation`` for ``multigrid``'s cycle, on the CPU (the grids are tiny;
    ``device``: where the solve runs)."""
    torch.manual_seed(settings.seed)
    model = LearnedProlongation(settings.hidden, str(settings.base))
    return learn(FieldTask(model, settings, multigrid, model, "prolongation"), settings, make_optimizer, schedule,
                 run_dir)


def save_prolongation(path: Path, result: LearningResult, multigrid: Multigrid) -> None:
    """The network's weights and the record of its training, weights-only."""
    save_part(path, result, cycle_record(multigrid, smoother=smoother_name(multigrid.smoother)))


def load_prolongation(path: Path, multigrid: Multigrid | None = None) -> tuple[LearnedProlongation, dict[str, Any]]:
    """The network of a ``save_prolongation`` checkpoint (checked) and its other entries.
    (``multigrid``: a part's load takes it; the network is checked by its file alone.)"""
    return load_part(path, LearnedProlongation.from_state, LearnedProlongationConfig, "learned prolongation")


PART = Part(LearnedProlongation.__name__, "solver.learned_prolongation", "learned_prolongation",
            load=load_prolongation, learn=learn_prolongation, save=save_prolongation)
