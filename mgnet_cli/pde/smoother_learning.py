"""Learning the smoother's kernels by gradient descent through unrolled multigrid cycles.

Every step draws a batch of random problems on each training grid: ``f`` and ``u_0`` standard
normal, ``u_0`` scaled by ``D^-1 = h^2 / 4`` so that ``f`` and ``A u_0`` are of one size and the
initial residual holds every frequency. It runs ``cycles`` cycles of the solver's own
``MultigridCycle`` (built by ``build_cycle`` with the learned smoother) and minimises the mean log
residual reduction per cycle, ``log(||r_k|| / ||r_0||) / k``. Every ``measure_every`` steps the
convergence factor is measured as for every other smoother (``solve_poisson`` from ``u = 0``), on
a random problem of a grid size not trained on. The kernels are saved as a weights-only checkpoint.
"""

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.device import one_cpu_thread
from mgnet_cli.errors import MgnetError
from mgnet_cli.cycle import MultigridCycle
from mgnet_cli.pde.learned_files import check_record, training_record
from mgnet_cli.pde.learned_smoother import START_OMEGA, LearnedKernels, LearnedSmoother
from mgnet_cli.pde.poisson import coarse_size
from mgnet_cli.pde.solve import MultigridSettings, build_cycle, solve_poisson
from mgnet_cli.schema.solve import LearnedSmootherConfig
from mgnet_cli.train.checkpoint import load_checkpoint, save_checkpoint
from mgnet_cli.train.tracking import Tracker, progress

log = logging.getLogger(__name__)

MakeOptimizer = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
CHECKPOINT_KIND = "learned_smoother"


def measure_size(settings: LearnedSmootherConfig) -> int:
    """The grid the factor is measured on while training: the next finer one, never trained on."""
    return 2 * max(settings.train_sizes) + 1


@dataclass
class LearningResult:
    """The kernels, the loss of every step, and the measured factors ``(step, factor)``."""

    kernels: LearnedKernels
    settings: LearnedSmootherConfig
    losses: list[float] = field(default_factory=list)
    factors: list[tuple[int, float]] = field(default_factory=list)
    held_out: dict[str, float] = field(default_factory=dict)  # none: the factor is measured on one grid
    time_s: float = 0.0

    @property
    def model(self) -> LearnedKernels:
        """What was learned (as ``ProlongationResult.model``)."""
        return self.kernels


def with_kernels(options: MultigridSettings, kernels: LearnedKernels) -> MultigridSettings:
    """``options`` with the learned smoother and these kernels."""
    return replace(options, smoother=partial(LearnedSmoother, kernels=kernels))


def smoothed_sizes(train_sizes: Iterable[int], coarsest_n: int) -> list[int]:
    """Every grid size a cycle on the training grids smooths (all but the coarsest)."""
    sizes = set()
    for n in train_sizes:
        while n > coarsest_n:
            sizes.add(n)
            n = coarse_size(n)
    return sorted(sizes)


def measured_factor(n: int, options: MultigridSettings, seed: int = 1,
                    device: torch.device | str = "cpu") -> float:
    """The asymptotic factor as bench_solve.py measures every smoother: a random problem to 1e-10."""
    return solve_poisson(n, "random", options, tol=1e-10, max_cycles=80, device=device,
                         seed=seed).convergence_factor


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


def learn_smoother(settings: LearnedSmootherConfig, options: MultigridSettings, make_optimizer: MakeOptimizer,
                   schedule: Callable[[int], float], run_dir: Path | None = None,
                   device: torch.device | str = "cpu") -> LearningResult:
    """Trains kernels for ``options``' cycle; TensorBoard scalars go to ``run_dir`` when given."""
    device = torch.device(device)
    sizes = [] if settings.shared else smoothed_sizes(settings.train_sizes, options.coarsest_n)
    kernels = LearnedKernels(sizes, omega=START_OMEGA).to(device)
    options = with_kernels(options, kernels)
    cycles = {n: build_cycle(n, options, torch.float64, device)[0] for n in settings.train_sizes}
    optimizer = make_optimizer(kernels.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator(device).manual_seed(settings.seed)
    result = LearningResult(kernels, settings)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tracker = None if run_dir is None else stack.enter_context(Tracker(run_dir))
        stack.enter_context(one_cpu_thread(device))
        _measure(result, 0, options, tracker, device)
        for step in progress(range(1, settings.steps + 1), settings.steps, "learning the smoother"):
            losses = [log_reduction(cycle, *random_problems(cycle, n, settings.batch, generator, device),
                                    settings.cycles) for n, cycle in cycles.items()]
            loss = torch.stack(losses).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            result.losses.append(loss.item())
            if tracker is not None:
                tracker.scalars(step, {"learned/loss": result.losses[-1], "learned/lr": lr,
                                       "learned/batch_factor": math.exp(result.losses[-1])})
            if step % settings.measure_every == 0 or step == settings.steps:
                _measure(result, step, options, tracker, device)
    result.time_s = time.perf_counter() - start
    final = result.factors[-1][1]
    if not all(bool(torch.isfinite(kernel).all()) for kernel in kernels.kernels) or not final < 1:
        raise MgnetError(f"learning the smoother blew up (factor {final:.3g} on the unseen grid, or "
                         "kernels not finite): nothing saved or used; lower solver.smoother.learning.optimizer.lr")
    return result


def _measure(result: LearningResult, step: int, options: MultigridSettings, tracker: Tracker | None,
             device: torch.device) -> None:
    """Measures the factor on the unseen grid, records and logs it."""
    n = measure_size(result.settings)
    factor = measured_factor(n, options, seed=result.settings.seed + 1, device=device)
    result.factors.append((step, factor))
    if tracker is not None:
        tracker.scalars(step, {"learned/factor": factor})
    loss = f", loss {result.losses[-1]:.4f} (batch factor {math.exp(result.losses[-1]):.3f})" \
        if result.losses else " (damped Jacobi, where training starts)"
    log.info("learning the smoother: step %d/%d%s; factor at n=%d: %.4f", step,
             result.settings.steps, loss, n, factor)


def save_learned(path: Path, result: LearningResult, options: MultigridSettings) -> None:
    """The kernels, the settings they were learned with and the training record, weights-only."""
    save_checkpoint(path, {
        "kind": CHECKPOINT_KIND, **result.kernels.state(),
        "settings": training_record(result.settings),
        "cycle": {"shape": options.cycle, "pre_smooth": options.pre_smooth,
                  "post_smooth": options.post_smooth, "coarsest_n": options.coarsest_n,
                  "omega": START_OMEGA},
        "losses": result.losses, "factors": [list(pair) for pair in result.factors],
        "time_s": result.time_s,
    })


def load_learned(path: Path) -> tuple[LearnedKernels, dict[str, Any]]:
    """The kernels of a ``save_learned`` checkpoint and its other entries; MgnetError if it is none."""
    state = load_checkpoint(path)
    if state.get("kind") != CHECKPOINT_KIND:
        raise MgnetError(f"{path} is not a learned-smoother checkpoint (kind {state.get('kind')!r}); "
                         f"mgnet solve solver.smoother=learned writes one as learned_smoother.pt")
    try:
        kernels = LearnedKernels.from_state(state)
    except (KeyError, ValueError) as error:
        raise MgnetError(f"{path} holds no usable kernels: {error}") from error
    check_record(state, path, LearnedSmootherConfig)  # its settings and cycle go into results.json
    return kernels, state


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
