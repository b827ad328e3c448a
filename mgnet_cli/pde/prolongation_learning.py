"""Learning a part of the Galerkin cycle through unrolled V cycles on random problems: the learned
prolongation (learned_prolongation.py) or the stencil-aware smoother (stencil_smoother.py).

Every step draws ``batch`` random problems per training grid, of the kinds in ``fields`` taken in
turn: lognormal (``sigma`` uniform in [0.5, 2]), jumps (1 or ``10^U(1, 3)`` per box), anisotropic
(``epsilon = 10^U(-3, -1)``, ``theta`` uniform in [0, pi)); builds each one's hierarchy (``A_c = R A
P`` is differentiable), runs ``cycles`` cycles from a random error (``f = 0``) and minimises the
mean ``log(||r_k|| / ||r_0||) / k``. Every ``measure_every`` steps the factor is measured on fixed
held-out problems of the next finer grid, never trained on. The fields of the benchmarks (seeds 0
and up, problems.py) are other draws: training uses its own generator.
"""

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.device import one_cpu_thread
from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.hierarchy import ProlongationRule, build_galerkin_cycle, solve_stencil
from mgnet_cli.pde.learned_files import check_record, training_record
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.pde.solve import MultigridSettings, smoother_name
from mgnet_cli.schema.solve import LearnedProlongationConfig, StencilAwareConfig, TrainingField
from mgnet_cli.train.checkpoint import load_checkpoint, save_checkpoint
from mgnet_cli.train.tracking import Tracker, progress

log = logging.getLogger(__name__)

MakeOptimizer = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


FieldLearningConfig = LearnedProlongationConfig | StencilAwareConfig  # the parts learned on random fields


@dataclass
class ProlongationResult:
    """The trained network, the loss of every step, the mean held-out factors ``(step, factor)``
    and the last measurement's factor per kind of field (``held_out``)."""

    model: torch.nn.Module
    settings: FieldLearningConfig
    losses: list[float] = field(default_factory=list)
    factors: list[tuple[int, float]] = field(default_factory=list)
    held_out: dict[str, float] = field(default_factory=dict)
    time_s: float = 0.0


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


def unrolled_loss(stencil: torch.Tensor, rule: ProlongationRule, options: MultigridSettings,
                  cycles: int, generator: torch.Generator, warm_cycles: int = 4) -> torch.Tensor:
    """``log(||r_k|| / ||r_0||) / k`` over ``k = cycles`` cycles on ``A e = 0``, from a random error
    first put through ``warm_cycles`` cycles without gradient: what is left then is the slowest
    error of the cycle, so the loss measures the asymptotic factor, not the first cycles' gain."""
    cycle, _ = build_galerkin_cycle(stencil, options, rule)
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


def held_out_factors(rule: ProlongationRule, options: MultigridSettings, n: int, seed: int,
                     kinds: Iterable[str] = ("lognormal", "jumps")) -> dict[str, float]:
    """The factor on one held-out problem of size ``n`` per kind (``held_out_stencil``)."""
    factors = {}
    for kind in kinds:
        f = right_hand_side("random", n, seed=seed)
        factors[kind] = solve_stencil(held_out_stencil(kind, n, seed), f, options, rule, tol=1e-10,
                                      max_cycles=40).convergence_factor
    return factors


def learn_on_fields(model: torch.nn.Module, settings: FieldLearningConfig, options: MultigridSettings,
                    rule: ProlongationRule, make_optimizer: MakeOptimizer, schedule: Callable[[int], float],
                    run_dir: Path | None = None, name: str = "prolongation") -> ProlongationResult:
    """Trains ``model``, a part of ``options``' cycle (its smoother) or ``rule`` itself, on the CPU
    (the grids are tiny); TensorBoard scalars under ``learned_<name>/`` go to ``run_dir`` when given."""
    optimizer = make_optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(settings.seed)
    result = ProlongationResult(model, settings)
    measure_n = 2 * max(settings.train_sizes) + 1
    tag = f"learned_{name.replace(' ', '_').replace('-', '_')}"
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tracker = None if run_dir is None else stack.enter_context(Tracker(run_dir))
        stack.enter_context(one_cpu_thread(torch.device("cpu")))
        for step in progress(range(1, settings.steps + 1), settings.steps, f"learning the {name}"):
            kinds = [str(kind) for kind in settings.fields]  # plain words: they key the saved record
            losses = [unrolled_loss(random_stencil(n, generator, kinds[index % len(kinds)]),
                                    rule, options, settings.cycles, generator)
                      for n in settings.train_sizes for index in range(settings.batch)]
            loss = torch.stack(losses).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            result.losses.append(loss.item())
            if tracker is not None:
                tracker.scalars(step, {f"{tag}/loss": result.losses[-1],
                                       f"{tag}/batch_factor": math.exp(result.losses[-1])})
            if step % settings.measure_every == 0 or step == settings.steps:
                result.held_out = held_out_factors(rule, options, measure_n, settings.seed + 1, kinds)
                factor = sum(result.held_out.values()) / len(result.held_out)
                result.factors.append((step, factor))
                if tracker is not None:
                    tracker.scalars(step, {f"{tag}/factor": factor})
                log.info("learning the %s: step %d/%d, loss %.4f (batch factor %.3f); held-out factor "
                         "at n=%d: %s", name, step, settings.steps, result.losses[-1],
                         math.exp(result.losses[-1]), measure_n,
                         ", ".join(f"{kind} {value:.4f}" for kind, value in result.held_out.items()))
    result.time_s = time.perf_counter() - start
    return result


def learn_prolongation(settings: LearnedProlongationConfig, options: MultigridSettings,
                       make_optimizer: MakeOptimizer, schedule: Callable[[int], float],
                       run_dir: Path | None = None) -> ProlongationResult:
    """Trains a ``LearnedProlongation`` for ``options``' cycle."""
    torch.manual_seed(settings.seed)
    model = LearnedProlongation(settings.hidden, str(settings.base))
    return learn_on_fields(model, settings, options, model, make_optimizer, schedule, run_dir)


def save_prolongation(path: Path, result: ProlongationResult, options: MultigridSettings) -> None:
    """The network's weights and the record of its training, weights-only."""
    save_checkpoint(path, {
        **result.model.state(),
        "settings": training_record(result.settings),
        "cycle": {"shape": options.cycle, "smoother": smoother_name(options.smoother), "pre_smooth": options.pre_smooth,
                  "post_smooth": options.post_smooth, "coarsest_n": options.coarsest_n},
        "losses": result.losses, "factors": [list(pair) for pair in result.factors], "time_s": result.time_s,
    })


def load_prolongation(path: Path) -> tuple[LearnedProlongation, dict[str, Any]]:
    """The network of a ``save_prolongation`` checkpoint (checked) and its other entries."""
    state = load_checkpoint(path)
    try:
        model = LearnedProlongation.from_state(state)
    except ValueError as error:
        raise MgnetError(f"{path} holds no usable learned prolongation: {error}") from error
    check_record(state, path, LearnedProlongationConfig)
    return model, state
