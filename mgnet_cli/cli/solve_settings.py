"""``mgnet solve``'s checked config (mgnet_cli/schema/solve.py: ``schema.check(cfg, "solve")``) as the
library takes it: ``Multigrid`` (the checked ``solver`` whole, its smoother built), the learned parts
by class (``PARTS``: each learning module's ``PART``) and their one path, ``load_or_learn``. Types,
ranges and the allowed ``_target_`` are the schema's; here only what it cannot state: the smoother
built once, a coefficient file read, training grids above the coarsest, an optimizer built. Each a
one-line ConfigError."""

import logging
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from mgnet_cli.errors import ConfigError
from mgnet_cli.amg import interpolation_learning
from mgnet_cli.pde import prolongation_learning, smoother_learning, stencil_smoother_learning
from mgnet_cli.pde.learning import MakeOptimizer, Part, Schedule, measure_size
from mgnet_cli.pde.problems import read_field
from mgnet_cli.pde.solve import Multigrid, smoother_name
from mgnet_cli.schema.solve import DiffusionProblemConfig, PoissonProblemConfig, SolverConfig

log = logging.getLogger(__name__)

PARTS: dict[str, Part] = {module.PART.name: module.PART for module in (
    smoother_learning, stencil_smoother_learning, prolongation_learning, interpolation_learning)}
"""The learned solver parts by the class they are: a smoother named so is learned or loaded (by its
``solver.smoother.learning``), not configured; ``LearnedProlongation`` by ``solver.prolongation=learned``;
``InterpolationNet`` by ``problem=matrix problem.amg.interpolation=learned``."""


def coefficient_file(checked: PoissonProblemConfig) -> torch.Tensor | None:
    """The coefficient field of ``problem.coefficient=file``, read (once) and checked whole before
    anything is solved or learned; None for any other problem."""
    if not isinstance(checked, DiffusionProblemConfig) or checked.coefficient != "file":
        return None
    try:
        return read_field(Path(checked.file).expanduser(), checked.n)  # the schema insists on a file
    except (OSError, ValueError) as error:
        raise ConfigError(f"problem.file={checked.file!r}: {error}") from error


def multigrid_of(solver: SolverConfig) -> Multigrid:
    """The checked ``solver`` as the library takes it, its ``solver.smoother`` (a ``_target_`` the
    schema allows) built as ``steps -> smoother`` and tried once; a bad setting is one line naming its key."""
    node = solver.smoother
    built_keys = {key.name: getattr(node, key.name) for key in fields(node) if key.name != "learning"}
    try:
        factory = instantiate(built_keys)  # a learned smoother's ``learning`` is how to learn it
        factory(1)
    except ValueError as error:  # the class names the setting: "omega=2: give a number in (0, 1]"
        raise ConfigError(f"solver.smoother.{str(error).splitlines()[0]}") from error
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"solver.smoother cannot be built: {first}") from error
    if solver.cycle == "backslash" and solver.post_smooth > 0:
        log.info("the backslash cycle smooths on the way down only: solver.post_smooth is unused")
    return Multigrid(solver, factory)


def learned_smoother(multigrid: Multigrid) -> Part | None:
    """The learned part ``multigrid``'s smoother is (learned or loaded, not configured), or None."""
    return PARTS.get(smoother_name(multigrid.smoother))


def training_settings(part: Part, node: Any, coarsest_n: int) -> Any:
    """The ``part``'s checked training keys (``node``) with its training grids sorted; ConfigError if
    the smallest is not above the coarsest grid (a rule across keys checked only for the part in use)."""
    sizes = sorted({int(n) for n in node.train_sizes})
    if sizes[0] <= coarsest_n:
        what = "smoothed" if part.use is not None else "coarsened"  # a smoother, or the prolongation
        raise ConfigError(f"{part.key}.train_sizes={sizes}: {sizes[0]} is not above "
                          f"solver.coarsest_n={coarsest_n}, so no level of it is {what}")
    return replace(node, train_sizes=sizes)


def built(node: Any, key: str, check: Callable[[Any], Any]) -> Any:
    """``instantiate(node)``, tried once with ``check``; any failure is a ConfigError naming ``key``."""
    try:
        built = instantiate(node)
        check(built)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{key} cannot be built: {first}") from error
    return built


def learning_tools(node: Any, key: str, steps: int) -> tuple[MakeOptimizer, Schedule]:
    """A learned part's optimizer factory and schedule (``<key>.optimizer``, ``<key>.scheduler``,
    over ``steps`` unless its ``epochs`` says otherwise), each built once on a probe so that a bad
    one is a one-line error before any learning."""
    probe = [torch.zeros(1, requires_grad=True)]
    make_optimizer = built(node.optimizer, f"{key}.optimizer", lambda make: make(probe))
    scheduler = replace(node.scheduler, epochs=node.scheduler.epochs or steps)
    schedule = built(scheduler, f"{key}.scheduler", lambda rule: [float(rule(step)) for step in (0, steps)])
    return make_optimizer, schedule


def load_or_learn(part: Part, node: Any, checkpoint: str | None, context: Any, run_dir: Path,
                  device: torch.device) -> tuple[Any, dict[str, Any]]:
    """Loads ``checkpoint`` (the part's ``checkpoint_key()``) or learns the part by its training keys
    ``node`` (saved in ``run_dir``); returns it and its record for results.json. ``context``: what
    the part serves (``Part``)."""
    key = part.key
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        model, state = part.load(path, context)
        log.info("%s loaded from %s (learned for %s)", part.record.replace("_", " "), path, state.get("cycle"))
        return model, {"checkpoint": str(path), "learned_here": False, "learned_for": state.get("cycle"),
                       "settings": state.get("settings")}
    settings = training_settings(part, node, context.config.coarsest_n) if part.on_grids else node
    make_optimizer, schedule = part.tools(settings) if part.tools else learning_tools(node, key, settings.steps)
    result = part.learn(settings, context, make_optimizer, schedule, run_dir, device)
    path = run_dir / f"{part.record}.pt"
    part.save(path, result, context)
    log.info("learned in %.1f s (%d steps); saved as %s: reuse it with %s=%s",
             result.time_s, settings.steps, path, part.checkpoint_key(), path)
    measured_n = measure_size(settings)
    return result.model, {"checkpoint": str(path), "learned_here": True, "time_s": result.time_s,
                          "factors": [{"step": step, "n": measured_n, "factor": factor}
                                      for step, factor in result.factors],
                          "held_out": result.held_out, "final_loss": result.losses[-1] if result.losses else None}
