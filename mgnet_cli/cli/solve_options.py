"""``mgnet solve``'s config, checked: every bad value is a ConfigError naming its key and what to give."""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from mgnet_cli.errors import ConfigError
from mgnet_cli.pde.learned_prolongation import BASES
from mgnet_cli.pde.smoother_learning import LearningSettings
from mgnet_cli.pde.prolongation_learning import FieldLearningSettings, ProlongationSettings
from mgnet_cli.pde.poisson import RIGHT_HAND_SIDES, is_grid_size
from mgnet_cli.pde.problems import COEFFICIENTS, PROBLEMS, Problem, read_field
from mgnet_cli.pde.smoothers import SmootherFactory
from mgnet_cli.pde.solve import MultigridOptions

log = logging.getLogger(__name__)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
LARGEST_COARSEST_N = 31  # the coarsest grid is factorised densely: 961 unknowns at most
LARGEST_TRAIN_N = 255  # learning unrolls cycles under autograd: small grids suffice (and are fast)


def choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if str(value) not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed: use one of {', '.join(allowed)}")
    return str(value)


def integer(value: Any, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key}={value!r}: give an integer >= {minimum}")
    return value


def number(value: Any, key: str, low: float, high: float, rule: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low < value <= high:
        raise ConfigError(f"{key}={value!r}: give a number {rule}")
    return float(value)


def grid_size(value: Any, key: str, largest: int | None = None) -> int:
    n = integer(value, key, 1)
    sizes = [2**level - 1 for level in range(1, 13)]
    if largest is not None:
        sizes = [size for size in sizes if size <= largest]
    if not is_grid_size(n) or (largest is not None and n > largest):
        raise ConfigError(f"{key}={value!r} is not a grid size: give 2^L - 1 interior points "
                          f"({', '.join(map(str, sizes))}{'' if largest else ', ...'})")
    return n


PROLONGATION_CHOICES = ("bilinear", "black_box", "learned")


def problem_settings(node: DictConfig) -> Problem:
    """``cfg.problem`` checked: the kind's own keys, the coefficient field's file readable."""
    kind = choice(node.kind, "problem.kind", PROBLEMS)
    try:
        return _problem(node, kind)
    except (ConfigAttributeError, ConfigKeyError) as error:
        raise ConfigError(f"problem.kind={kind}: choose the problem with problem={kind} "
                          f"(configs/problem/), not by its kind") from error


def _problem(node: DictConfig, kind: str) -> Problem:
    n = grid_size(node.n, "problem.n")
    choice(node.rhs, "problem.rhs", RIGHT_HAND_SIDES)
    integer(node.seed, "problem.seed", 0)
    if kind == "diffusion":
        coefficient = choice(node.coefficient, "problem.coefficient", COEFFICIENTS)
        file = None
        if coefficient == "file":
            if node.file is None:
                raise ConfigError("problem.file=None: problem.coefficient=file needs a .npy file of "
                                  f"({n}, {n}) positive numbers")
            file = Path(str(node.file)).expanduser()
            try:
                read_field(file, n)
            except (OSError, ValueError) as error:
                raise ConfigError(f"problem.file={str(node.file)!r}: {error}") from error
        return Problem(kind=kind, n=n, coefficient=coefficient, file=file,
                       sigma=number(node.sigma, "problem.sigma", 0.0, 10.0, "in (0, 10]"),
                       contrast=number(node.contrast, "problem.contrast", 0.0, 1e12, "in (0, 1e12]"),
                       block=integer(node.block, "problem.block", 1),
                       field_seed=integer(node.field_seed, "problem.field_seed", 0))
    if kind == "anisotropic":
        return Problem(kind=kind, n=n,
                       epsilon=number(node.epsilon, "problem.epsilon", 0.0, 1.0, "in (0, 1]"),
                       theta=number(node.theta, "problem.theta", -10.0, 10.0, "in (-10, 10] (radians)"))
    return Problem(kind=kind, n=n)


def is_learned(node: DictConfig) -> bool:
    """True for ``solver/smoother=learned``: its kernels are learned or loaded, not configured."""
    return str(node.get("_target_", "")).endswith(".LearnedSmoother")


def is_stencil_aware(node: DictConfig) -> bool:
    """True for ``solver/smoother=stencil_aware``: its network is learned or loaded, not configured."""
    return str(node.get("_target_", "")).endswith(".StencilAwareSmoother")


def stencil_aware_settings(node: DictConfig, coarsest_n: int) -> FieldLearningSettings:
    """``cfg.solver.stencil_aware``'s training keys (their types and ranges: the schema's)."""
    sizes = sorted(set(node.train_sizes))
    if sizes[0] <= coarsest_n:
        raise ConfigError(f"solver.stencil_aware.train_sizes={sizes}: {sizes[0]} is not above "
                          f"solver.coarsest_n={coarsest_n}, so no level of it is smoothed")
    return FieldLearningSettings(train_sizes=tuple(sizes), steps=node.steps, batch=node.batch,
                                 cycles=node.cycles, seed=node.seed, measure_every=node.measure_every,
                                 hidden=node.hidden, fields=tuple(str(kind) for kind in node.fields))


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


def multigrid_options(solver: DictConfig) -> MultigridOptions:
    """The cycle's shape, smoother and coarsest grid from ``cfg.solver``, checked."""
    cycle = choice(solver.cycle, "solver.cycle", ("v", "w", "backslash"))
    pre = integer(solver.pre_smooth, "solver.pre_smooth", 0)
    post = integer(solver.post_smooth, "solver.post_smooth", 0)
    if pre == 0 and (cycle == "backslash" or post == 0):
        raise ConfigError(f"solver.pre_smooth={pre}, solver.post_smooth={post} with "
                          f"solver.cycle={cycle} never smooths: give the cycle a smoothing step")
    if cycle == "backslash" and post > 0:
        log.info("the backslash cycle smooths on the way down only: solver.post_smooth is unused")
    return MultigridOptions(
        cycle=cycle, smoother=smoother_factory(solver.smoother),
        pre_smooth=pre, post_smooth=post,
        coarsest_n=grid_size(solver.coarsest_n, "solver.coarsest_n", LARGEST_COARSEST_N),
        prolongation=choice(solver.prolongation, "solver.prolongation", PROLONGATION_CHOICES),
    )


def learning_settings(node: DictConfig, coarsest_n: int) -> LearningSettings:
    """``cfg.solver.learned``'s training keys, checked."""
    if not isinstance(node.shared, bool):
        raise ConfigError(f"solver.learned.shared={node.shared!r}: give true (one kernel for every "
                          f"level) or false (one per grid size)")
    if not isinstance(node.train_sizes, ListConfig) or len(node.train_sizes) == 0:
        raise ConfigError(f"solver.learned.train_sizes={node.train_sizes!r}: give a list of grid "
                          f"sizes, e.g. [31,63]")
    sizes = sorted({grid_size(n, "solver.learned.train_sizes", LARGEST_TRAIN_N) for n in node.train_sizes})
    if sizes[0] <= coarsest_n:
        raise ConfigError(f"solver.learned.train_sizes={sizes}: {sizes[0]} is not above "
                          f"solver.coarsest_n={coarsest_n}, so no level of it is smoothed")
    return LearningSettings(
        shared=node.shared, train_sizes=tuple(sizes),
        steps=integer(node.steps, "solver.learned.steps", 1),
        batch=integer(node.batch, "solver.learned.batch", 1),
        cycles=integer(node.cycles, "solver.learned.cycles", 1),
        seed=integer(node.seed, "solver.learned.seed", 0),
        measure_every=integer(node.measure_every, "solver.learned.measure_every", 1),
    )


def prolongation_settings(node: DictConfig, coarsest_n: int) -> ProlongationSettings:
    """``cfg.solver.learned_prolongation``'s training keys, checked."""
    key = "solver.learned_prolongation"
    if not isinstance(node.train_sizes, ListConfig) or len(node.train_sizes) == 0:
        raise ConfigError(f"{key}.train_sizes={node.train_sizes!r}: give a list of grid sizes, e.g. [31,63]")
    sizes = sorted({grid_size(n, f"{key}.train_sizes", LARGEST_TRAIN_N) for n in node.train_sizes})
    if sizes[0] <= coarsest_n:
        raise ConfigError(f"{key}.train_sizes={sizes}: {sizes[0]} is not above "
                          f"solver.coarsest_n={coarsest_n}, so no level of it is coarsened")
    return ProlongationSettings(
        train_sizes=tuple(sizes), steps=integer(node.steps, f"{key}.steps", 1),
        batch=integer(node.batch, f"{key}.batch", 1), cycles=integer(node.cycles, f"{key}.cycles", 1),
        seed=integer(node.seed, f"{key}.seed", 0),
        measure_every=integer(node.measure_every, f"{key}.measure_every", 1),
        hidden=integer(node.hidden, f"{key}.hidden", 1), base=choice(node.base, f"{key}.base", BASES))


def built(node: DictConfig, key: str, check: Callable[[Any], Any]) -> Any:
    """``instantiate(node)``, tried once with ``check``; any failure is a ConfigError naming ``key``."""
    try:
        built = instantiate(node)
        check(built)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{key} cannot be built: {first}") from error
    return built
