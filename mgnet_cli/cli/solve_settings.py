"""``mgnet solve``'s config as the solver's typed arguments. Types and ranges are the schema's
(mgnet_cli/schema/solve.py, checked before the run); here only what it cannot state: the smoother
built once, a coefficient file read, training grids above the coarsest. Each a one-line ConfigError."""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from mgnet_cli.errors import ConfigError
from mgnet_cli.pde.smoother_learning import LearningSettings
from mgnet_cli.pde.prolongation_learning import FieldLearningSettings, ProlongationSettings
from mgnet_cli.pde.problems import Problem, read_field
from mgnet_cli.pde.smoothers import SmootherFactory
from mgnet_cli.pde.solve import MultigridSettings

log = logging.getLogger(__name__)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def problem_settings(node: DictConfig) -> Problem:
    """``cfg.problem`` (types and ranges: the schema's, checked before the run) as a ``Problem``, the
    coefficient field's file read."""
    kind = str(node.kind)
    try:
        return _problem(node, kind)
    except (ConfigAttributeError, ConfigKeyError) as error:
        raise ConfigError(f"problem.kind={kind}: choose the problem with problem={kind} "
                          f"(configs/problem/), not by its kind") from error


def _problem(node: DictConfig, kind: str) -> Problem:
    n = int(node.n)
    if kind == "diffusion":
        file, values = None, None
        if str(node.coefficient) == "file":
            file = Path(str(node.file)).expanduser()  # the schema insists on one
            try:
                values = read_field(file, n)  # checked whole and read once: the solve uses these
            except (OSError, ValueError) as error:
                raise ConfigError(f"problem.file={str(node.file)!r}: {error}") from error
        return Problem(kind=kind, n=n, coefficient=str(node.coefficient), file=file, sigma=float(node.sigma),
                       contrast=float(node.contrast), block=int(node.block), field_seed=int(node.field_seed),
                       values=values)
    if kind == "anisotropic":
        return Problem(kind=kind, n=n, epsilon=float(node.epsilon), theta=float(node.theta))
    return Problem(kind=kind, n=n)


def is_learned(node: DictConfig) -> bool:
    """True for ``solver/smoother=learned``: its kernels are learned or loaded, not configured."""
    return str(node.get("_target_", "")).endswith(".LearnedSmoother")


def is_stencil_aware(node: DictConfig) -> bool:
    """True for ``solver/smoother=stencil_aware``: its network is learned or loaded, not configured."""
    return str(node.get("_target_", "")).endswith(".StencilAwareSmoother")


def smoother_factory(node: DictConfig) -> SmootherFactory:
    """``solver.smoother`` (a node of configs/solver/smoother/) built as ``steps -> smoother``,
    tried once; a bad setting is one line naming its key. Only mgnet's classes are built."""
    if not isinstance(node, DictConfig):
        raise ConfigError(f"solver.smoother={node!r}: choose the smoother with solver/smoother={node} "
                          f"(a config group: configs/solver/smoother/)")
    target = str(node.get("_target_", ""))
    if not target.startswith("mgnet_cli.pde."):
        raise ConfigError(f"solver.smoother._target_={target!r}: choose a smoother with "
                          f"solver/smoother=NAME (configs/solver/smoother/)")
    try:
        factory = instantiate(node)
        factory(1)
    except ValueError as error:  # the class names the setting: "omega=2: give a number in (0, 1]"
        raise ConfigError(f"solver.smoother.{str(error).splitlines()[0]}") from error
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"solver.smoother cannot be built: {first}") from error
    return factory


def multigrid_settings(solver: DictConfig) -> MultigridSettings:
    """The cycle's shape, smoother and coarsest grid from ``cfg.solver`` (ranges: the schema's)."""
    cycle, post = str(solver.cycle), int(solver.post_smooth)
    if cycle == "backslash" and post > 0:
        log.info("the backslash cycle smooths on the way down only: solver.post_smooth is unused")
    return MultigridSettings(
        cycle=cycle, smoother=smoother_factory(solver.smoother),
        pre_smooth=int(solver.pre_smooth), post_smooth=post,
        coarsest_n=int(solver.coarsest_n), prolongation=str(solver.prolongation),
        krylov=str(solver.krylov),
    )


def above_coarsest(train_sizes: Any, key: str, coarsest_n: int, what: str = "smoothed") -> tuple[int, ...]:
    """The training grids, sorted; ConfigError if the smallest is not above the coarsest grid (the
    one rule across keys the schema cannot state)."""
    sizes = sorted({int(n) for n in train_sizes})
    if sizes[0] <= coarsest_n:
        raise ConfigError(f"{key}.train_sizes={sizes}: {sizes[0]} is not above "
                          f"solver.coarsest_n={coarsest_n}, so no level of it is {what}")
    return tuple(sizes)


def learning_settings(node: DictConfig, coarsest_n: int) -> LearningSettings:
    """``cfg.solver.learned``'s training keys."""
    return LearningSettings(
        shared=bool(node.shared), train_sizes=above_coarsest(node.train_sizes, "solver.learned", coarsest_n),
        steps=node.steps, batch=node.batch, cycles=node.cycles, seed=node.seed,
        measure_every=node.measure_every)


def prolongation_settings(node: DictConfig, coarsest_n: int) -> ProlongationSettings:
    """``cfg.solver.learned_prolongation``'s training keys."""
    sizes = above_coarsest(node.train_sizes, "solver.learned_prolongation", coarsest_n, "coarsened")
    return ProlongationSettings(train_sizes=sizes, steps=node.steps, batch=node.batch, cycles=node.cycles,
                                seed=node.seed, measure_every=node.measure_every, hidden=node.hidden,
                                base=str(node.base))


def stencil_aware_settings(node: DictConfig, coarsest_n: int) -> FieldLearningSettings:
    """``cfg.solver.stencil_aware``'s training keys."""
    sizes = above_coarsest(node.train_sizes, "solver.stencil_aware", coarsest_n)
    return FieldLearningSettings(train_sizes=sizes, steps=node.steps, batch=node.batch, cycles=node.cycles,
                                 seed=node.seed, measure_every=node.measure_every, hidden=node.hidden,
                                 fields=tuple(str(kind) for kind in node.fields))


def built(node: DictConfig, key: str, check: Callable[[Any], Any]) -> Any:
    """``instantiate(node)``, tried once with ``check``; any failure is a ConfigError naming ``key``."""
    try:
        built = instantiate(node)
        check(built)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{key} cannot be built: {first}") from error
    return built
