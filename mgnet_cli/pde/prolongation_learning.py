"""Training the learned prolongation through unrolled Galerkin V cycles on random coefficient fields.

Every step draws ``batch`` random fields per training grid, lognormal (``sigma`` uniform in
[0.5, 2]) and jumps (1 or ``10^U(1, 3)`` per box) in turn, builds each one's hierarchy with the
network (``A_c = R A P`` is differentiable), runs ``cycles`` cycles from a random error (``f = 0``)
and minimises the mean ``log(||r_k|| / ||r_0||) / k``. Every ``measure_every`` steps the factor is
measured on fixed held-out fields of the next finer grid, never trained on. The fields of the
benchmarks (seeds 0 and up, problems.py) are other draws: training uses its own generator.
"""

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.hierarchy import build_galerkin_cycle, solve_stencil
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.smoother_learning import one_cpu_thread
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import coefficient_field, diffusion_stencil
from mgnet_cli.pde.solve import MultigridOptions, smoother_name
from mgnet_cli.train.checkpoint import load_checkpoint, save_checkpoint
from mgnet_cli.train.tracking import Tracker, progress

log = logging.getLogger(__name__)

MakeOptimizer = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class ProlongationSettings:
    """What to learn and how long (``solver.learned_prolongation`` in configs/solve.yaml)."""

    train_sizes: tuple[int, ...] = (31,)
    steps: int = 100
    batch: int = 4  # random fields per training grid and step
    cycles: int = 4  # unrolled cycles per field
    seed: int = 0
    measure_every: int = 25
    hidden: int = 32
    base: str = "black_box"
    fields: tuple[str, ...] = ("lognormal", "jumps")  # the kinds of training field, taken in turn


@dataclass
class ProlongationResult:
    model: LearnedProlongation
    settings: ProlongationSettings
    losses: list[float] = field(default_factory=list)
    factors: list[tuple[int, float]] = field(default_factory=list)
    time_s: float = 0.0


def random_stencil(n: int, generator: torch.Generator, jumps: bool) -> torch.Tensor:
    """A training field's 5-point stencil: lognormal or jumps, drawn from ``generator``."""
    uniform = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
    if jumps:
        contrast = 10 ** (1 + 2 * uniform[0])
        high = torch.rand(n, n, generator=generator, dtype=torch.float64) < 0.5
        return diffusion_stencil(torch.where(high, contrast, 1.0).to(torch.float64))
    sigma = 0.5 + 1.5 * uniform[0]
    return diffusion_stencil(torch.exp(sigma * torch.randn(n, n, generator=generator, dtype=torch.float64)))


def unrolled_loss(stencil: torch.Tensor, rule: LearnedProlongation, options: MultigridOptions,
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


def held_out_factor(rule: LearnedProlongation, options: MultigridOptions, n: int, seed: int) -> float:
    """Mean factor on a lognormal and a jumps field of size ``n`` (seeds training never draws)."""
    factors = []
    for kind in ("lognormal", "jumps"):
        stencil = diffusion_stencil(coefficient_field(kind, n, seed=10_000 + seed))
        f = right_hand_side("random", n, seed=seed)
        factors.append(solve_stencil(stencil, f, options, rule, tol=1e-10, max_cycles=40).convergence_factor)
    return sum(factors) / len(factors)


def learn_prolongation(settings: ProlongationSettings, options: MultigridOptions,
                       make_optimizer: MakeOptimizer, schedule: Callable[[int], float],
                       run_dir: Path | None = None) -> ProlongationResult:
    """Trains a ``LearnedProlongation`` for ``options``' cycle (on the CPU: the grids are tiny)."""
    torch.manual_seed(settings.seed)
    model = LearnedProlongation(settings.hidden, settings.base)
    optimizer = make_optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(settings.seed)
    result = ProlongationResult(model, settings)
    measure_n = 2 * max(settings.train_sizes) + 1
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tracker = None if run_dir is None else stack.enter_context(Tracker(run_dir))
        stack.enter_context(one_cpu_thread(torch.device("cpu")))
        for step in progress(range(1, settings.steps + 1), settings.steps, "learning the prolongation"):
            kinds = settings.fields
            losses = [unrolled_loss(random_stencil(n, generator, kinds[index % len(kinds)] == "jumps"),
                                    model, options, settings.cycles, generator)
                      for n in settings.train_sizes for index in range(settings.batch)]
            loss = torch.stack(losses).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            result.losses.append(loss.item())
            if tracker is not None:
                tracker.scalars(step, {"learned_prolongation/loss": result.losses[-1],
                                       "learned_prolongation/batch_factor": math.exp(result.losses[-1])})
            if step % settings.measure_every == 0 or step == settings.steps:
                factor = held_out_factor(model, options, measure_n, settings.seed + 1)
                result.factors.append((step, factor))
                if tracker is not None:
                    tracker.scalars(step, {"learned_prolongation/factor": factor})
                log.info("learning the prolongation: step %d/%d, loss %.4f (batch factor %.3f); "
                         "held-out factor at n=%d: %.4f", step, settings.steps, result.losses[-1],
                         math.exp(result.losses[-1]), measure_n, factor)
    result.time_s = time.perf_counter() - start
    return result


def save_prolongation(path: Path, result: ProlongationResult, options: MultigridOptions) -> None:
    """The network's weights and the record of its training, weights-only."""
    save_checkpoint(path, {
        **result.model.state(),
        "settings": {**asdict(result.settings), "train_sizes": list(result.settings.train_sizes)},
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
    return model, state
