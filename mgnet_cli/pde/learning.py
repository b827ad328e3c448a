"""Learning a part of the solver (a smoother, a prolongation, the AMG interpolation) by gradient
descent through multigrid cycles: the one loop, the one result and the one file record of every
learned part.

A part is a ``Task``: the network, a batch loss (the geometric parts': the mean log residual
reduction per cycle of unrolled cycles on random problems; the AMG interpolation's: an estimate of
its two-grid factor; each drawn from the task's own generator) and a measurement of the factor on
a grid of the next finer size, never trained on. ``learn`` runs the steps, measures every
``measure_every`` steps (and at the last), writes TensorBoard scalars under ``<task.tag>/`` to the
run folder when given; ``save_part`` writes the weights beside the record of how they were learned
(weights-only), ``load_part`` reads them back, the record checked (learned_files.py).
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from mgnet_cli.device import one_cpu_thread
from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.learned_files import check_record, training_record
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.train.checkpoint import load_checkpoint, save_checkpoint
from mgnet_cli.train.tracking import Tracker, progress

log = logging.getLogger(__name__)

MakeOptimizer = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
Schedule = Callable[[int], float]


def measure_size(settings: Any) -> int:
    """The grid the factor is measured on while training: the next finer one, never trained on."""
    return 2 * max(settings.train_sizes) + 1


class Task(Protocol):
    """What ``learn`` trains: ``model``, a batch ``loss()``, and ``measure()``, the factor on the
    measuring grid with the factor per held-out problem (empty when there is one)."""

    name: str  # in the log: "learning the <name>"
    tag: str  # TensorBoard's prefix
    device: torch.device
    model: nn.Module
    measures_start: bool  # also measures before the first step (where training starts)

    def loss(self) -> torch.Tensor: ...

    def batch_factor(self, loss: float) -> float: ...  # the factor per cycle a batch's loss stands for

    def measure(self) -> tuple[float, dict[str, float]]: ...


@dataclass
class LearningResult:
    """The trained network, the loss of every step, the measured factors ``(step, factor)`` and the
    last measurement's factor per held-out problem (``held_out``)."""

    model: nn.Module
    settings: Any  # the part's training keys (mgnet_cli/schema/solve.py)
    losses: list[float] = field(default_factory=list)
    factors: list[tuple[int, float]] = field(default_factory=list)
    held_out: dict[str, float] = field(default_factory=dict)
    time_s: float = 0.0


@dataclass(frozen=True)
class Part:
    """A learned solver part as ``mgnet solve`` loads or learns it, each function taking the part's
    checked training keys and what the part serves (its context): the ``Multigrid`` whole for the
    geometric parts, the ``problem.amg`` settings for the AMG interpolation. Its module exports it as ``PART``."""

    name: str  # the class the part is: a smoother's (its ``_target_``'s last word), the prolongation's, the network's
    key: str  # of its training keys: solver.smoother.learning, solver.learned_prolongation, problem.amg.learning
    record: str  # its entry in results.json; saved in the run folder as <record>.pt
    load: Callable[[Path, Any], tuple[nn.Module, dict[str, Any]]]  # a checked file: the network, its entries
    learn: Callable[[Any, Any, MakeOptimizer, Schedule, Path | None, torch.device], LearningResult]
    save: Callable[[Path, LearningResult, Any], None]
    use: Callable[[Multigrid, nn.Module], Multigrid] | None = None  # a smoother's: the multigrid smoothing with it
    describe: Callable[[nn.Module], dict[str, Any]] | None = None  # logs it; more of its record
    file_key: str | None = None  # the key that loads a saved file; None: ``<key>.checkpoint``
    tools: Callable[[Any], tuple[MakeOptimizer, Schedule]] | None = None  # fixed by its keys; None: its
    # ``optimizer`` and ``scheduler`` nodes, built by the command
    on_grids: bool = True  # trained through the geometric cycle: its train_sizes must lie above solver.coarsest_n

    def checkpoint_key(self) -> str:
        return self.file_key or f"{self.key}.checkpoint"


def learn(task: Task, settings: Any, make_optimizer: MakeOptimizer, schedule: Schedule,
          run_dir: Path | None = None) -> LearningResult:
    """Trains ``task.model`` for ``settings.steps`` steps (one thread on the CPU: the grids are small)."""
    optimizer = make_optimizer(task.model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    result = LearningResult(task.model, settings)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tracker = None if run_dir is None else stack.enter_context(Tracker(run_dir))
        stack.enter_context(one_cpu_thread(task.device))
        if task.measures_start:
            record(task, result, 0, tracker)
        for step in progress(range(1, settings.steps + 1), settings.steps, f"learning the {task.name}"):
            loss = task.loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            result.losses.append(loss.item())
            if tracker is not None:
                tracker.scalars(step, {f"{task.tag}/loss": result.losses[-1], f"{task.tag}/lr": lr,
                                       f"{task.tag}/batch_factor": task.batch_factor(result.losses[-1])})
            if step % settings.measure_every == 0 or step == settings.steps:
                record(task, result, step, tracker)
    result.time_s = time.perf_counter() - start
    return result


def record(task: Task, result: LearningResult, step: int, tracker: Tracker | None) -> None:
    """Measures the factor on the unseen grid, records and logs it."""
    factor, result.held_out = task.measure()
    result.factors.append((step, factor))
    if tracker is not None:
        tracker.scalars(step, {f"{task.tag}/factor": factor})
    loss = f", loss {result.losses[-1]:.4f} (batch factor {task.batch_factor(result.losses[-1]):.3f})" \
        if result.losses else " (where training starts)"
    held_out = ", ".join(f"{kind} {value:.4f}" for kind, value in result.held_out.items())
    log.info("learning the %s: step %d/%d%s; factor at n=%d: %.4f%s", task.name, step, result.settings.steps,
             loss, measure_size(result.settings), factor, f" ({held_out})" if held_out else "")


def cycle_record(multigrid: Multigrid, **more: Any) -> dict[str, Any]:
    """The cycle a part was learned in, for its file: shape, smoothing steps, coarsest grid and ``more``."""
    config = multigrid.config
    return {"shape": str(config.cycle), "pre_smooth": config.pre_smooth, "post_smooth": config.post_smooth,
            "coarsest_n": config.coarsest_n, **more}


def save_part(path: Path, result: LearningResult, cycle: dict[str, Any]) -> None:
    """The network's ``state()`` (its kind and weights), its training keys, the ``cycle`` it was
    learned in and the training record, weights-only."""
    save_checkpoint(path, {
        **result.model.state(), "settings": training_record(result.settings), "cycle": cycle,
        "losses": result.losses, "factors": [list(pair) for pair in result.factors],
        "held_out": result.held_out, "time_s": result.time_s,
    })


def load_part(path: Path, from_state: Callable[[dict[str, Any]], nn.Module], settings_type: type,
              what: str) -> tuple[Any, dict[str, Any]]:
    """The network of a ``save_part`` file (``from_state``: ValueError if the data are not one) and
    the file's other entries, its record checked; MgnetError naming ``path`` and ``what`` it is not."""
    state = load_checkpoint(path)
    try:
        model = from_state(state)
    except (KeyError, ValueError) as error:
        raise MgnetError(f"{path} holds no usable {what}: {error}") from error
    check_record(state, path, settings_type)  # its settings and cycle go into results.json
    return model, state
