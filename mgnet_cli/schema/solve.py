"""Schemas of ``mgnet solve``: the problem group (chosen by its ``kind``), the solver's keys, its
smoother group (chosen by ``_target_``) and the optimizers of what it learns."""

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mgnet_cli import memory, shipped
from mgnet_cli.amg.settings import DENSE_ROWS, MATRIX_SUFFIXES, VECTOR_SUFFIXES, AmgSettings
from mgnet_cli.cycle_shape import SHAPES_HELP, CycleShape
from mgnet_cli.krylov_choice import HELP as KRYLOV_HELP
from mgnet_cli.krylov_choice import Krylov
from mgnet_cli.schema import rules
from mgnet_cli.schema.train import WarmupCosineConfig

GRID_SIZES = tuple(2**level - 1 for level in range(2, 14))  # 3 .. 8191 interior points per side
BYTES_PER_POINT = 8 * 40  # float64, about 40 arrays a point over the hierarchy (stencils, vectors)


class ProblemKind(rules.Choice):
    poisson = "poisson"
    diffusion = "diffusion"
    anisotropic = "anisotropic"
    matrix = "matrix"


class RightHandSide(rules.Choice):
    random = "random"
    ones = "ones"
    sine = "sine"


MATRIX_RHS = (RightHandSide.random, RightHandSide.ones)  # what problem=matrix takes besides a vector file
# (sine is -Δ of a known solution on the grid: a user's matrix has none)


class Coefficient(rules.Choice):
    lognormal = "lognormal"
    jumps = "jumps"
    checkerboard = "checkerboard"
    constant = "constant"
    file = "file"


class Prolongation(rules.Choice):
    bilinear = "bilinear"
    black_box = "black_box"
    learned = "learned"


class ProlongationBase(rules.Choice):
    """The rule a learned prolongation corrects (and starts from)."""
    black_box = "black_box"
    bilinear = "bilinear"


class Dtype(rules.Choice):
    """The solve's floating-point type: each value is the name of its torch dtype (torch.float64)."""
    float64 = "float64"
    float32 = "float32"


def grid_size(owner: object, name: str, largest: int = GRID_SIZES[-1]) -> None:
    value = getattr(owner, name)
    allowed = [size for size in GRID_SIZES if size <= largest]
    if value not in allowed:
        raise rules.Invalid(name, value, f"give 2^L - 1 interior points: {', '.join(map(str, allowed[:6]))}, "
                                         f"... {allowed[-1]}")


def fits_in_memory(owner: object, name: str) -> None:
    """An ``n`` whose arrays cannot fit in what this process may allocate is refused before allocating."""
    n = getattr(owner, name)
    if reason := memory.shortfall(n * n * BYTES_PER_POINT):
        raise rules.Invalid(name, n, f"{reason}: give a smaller grid")


# --- problem ------------------------------------------------------------------------------------
@dataclass
class PoissonProblemConfig:
    """-Δu = g (``configs/problem/poisson.yaml``)."""
    kind: str = rules.setting("poisson", "the problem's kind, chosen with problem=NAME (configs/problem/)")
    n: int = rules.setting(255, "interior points per side, 2^L - 1 (1023 = a million unknowns)")
    rhs: RightHandSide = rules.setting(RightHandSide.random, "the right-hand side: random (standard normal, "
                                       "seeded), ones, or sine (poisson: an exact solution, the error reported)")
    seed: int = rules.setting(0, "of the random right-hand side")
    save_matrix: str | None = rules.setting(None, "a .mtx or .npz file to write the fine-grid matrix to "
                                                  "(problem=matrix problem.file=... reads it)")

    TARGETS: ClassVar[tuple[str, ...]] = ("poisson",)
    SELECTED_BY: ClassVar[str] = "kind"

    def __post_init__(self) -> None:
        rules.one_of(self, "kind", self.TARGETS)
        grid_size(self, "n")
        fits_in_memory(self, "n")
        rules.seed(self, "seed")
        matrix_file(self, "save_matrix", optional=True)


@dataclass
class DiffusionProblemConfig(PoissonProblemConfig):
    """-∇·(k∇u) = g with a coefficient field (``configs/problem/diffusion.yaml``)."""
    kind: str = "diffusion"
    coefficient: Coefficient = rules.setting(Coefficient.lognormal, "k: lognormal (exp(sigma N(0,1))), jumps "
                                             "(1 or contrast at random), checkerboard, constant, or file")
    sigma: float = rules.setting(1.0, "lognormal: standard deviation of log k")
    contrast: float = rules.setting(1000.0, "jumps and checkerboard: k is 1 or this")
    block: int = rules.setting(8, "checkerboard: boxes per block side")
    file: str | None = rules.setting(None, "coefficient=file: a .npy array of (n, n) positive numbers")
    field_seed: int = rules.setting(0, "of the random coefficient field")

    TARGETS: ClassVar[tuple[str, ...]] = ("diffusion",)

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.number(self, "sigma", 0.0, 10.0, low_open=True)
        rules.number(self, "contrast", 0.0, 1e12, low_open=True)
        rules.count(self, "block", maximum=self.n)
        rules.text(self, "file", optional=True)
        if self.coefficient == Coefficient.file and self.file is None:
            raise rules.Invalid("file", None, "problem.coefficient=file needs a .npy file of (n, n) "
                                              "positive numbers")
        if self.file is not None and self.coefficient != Coefficient.file:  # else read by nothing
            raise rules.Invalid("file", self.file, f"read only with problem.coefficient=file, not "
                                                   f"{self.coefficient}: add problem.coefficient=file or drop it")
        rules.seed(self, "field_seed")


@dataclass
class AnisotropicProblemConfig(PoissonProblemConfig):
    """-∇·(K∇u) = g, K rotated (``configs/problem/anisotropic.yaml``)."""
    kind: str = "anisotropic"
    epsilon: float = rules.setting(0.01, "the weak direction's conductivity, in (0, 1]")
    theta: float = rules.setting(0.0, "rotation of the strong direction from the x axis, radians")

    TARGETS: ClassVar[tuple[str, ...]] = ("anisotropic",)

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.number(self, "epsilon", 0.0, 1.0, low_open=True)
        rules.number(self, "theta", -2 * math.pi, 2 * math.pi)


def matrix_file(owner: object, name: str, optional: bool = False) -> None:
    """A path to a sparse matrix file: ``.mtx`` (Matrix Market) or ``.npz`` (SciPy sparse)."""
    rules.text(owner, name, optional)
    value = getattr(owner, name)
    if value is not None and not value.lower().endswith(MATRIX_SUFFIXES):
        raise rules.Invalid(name, value, "give a .mtx (Matrix Market) or .npz (SciPy sparse) file")


class InterpolationFamily(rules.Choice):
    jumps = "jumps"
    rotated = "rotated"
    lognormal = "lognormal"
    poisson = "poisson"


@dataclass
class InterpolationLearningConfig:
    """``problem.amg.learning``: how the learned AMG interpolation is learned when no
    ``problem.amg.interpolation_weights`` is given (mgnet_cli/amg/interpolation_learning.py;
    scripts/train_interpolation.py takes each key as --<key>): Adam on the two-grid error of small
    problems, dense."""
    train_sizes: list[int] = rules.setting([15, 23, 31], "grid sides n of the training problems (dense: at most 63)")
    families: list[InterpolationFamily] = rules.setting([InterpolationFamily.jumps, InterpolationFamily.rotated],
                                                        "training problem families")
    problems: int = rules.setting(4, "training problems per family and size")
    steps: int = rules.setting(150, "Adam steps, one problem each (0: the classical interpolation, as a file)")
    vectors: int = rules.setting(32, "random x per loss estimate")
    smoothing: int = rules.setting(1, "Gauss-Seidel sweeps before and after the coarse correction")
    powers: int = rules.setting(8, "k in the loss (mean ||E^k x||_A^2 / ||x||_A^2)^(1/2k): k > 1 weighs the slow modes")
    lr: float = rules.setting(1e-3, "Adam's learning rate")
    hidden: int = rules.setting(32, "the network's width")
    rounds: int = rules.setting(3, "message-passing rounds")
    seed: int = rules.setting(0, "of the problems, the x and the initial weights (held-out problems are other draws)")
    measure_every: int = rules.setting(50, "steps between two-grid factor measurements on held-out problems of "
                                           "the next finer grid, 2 max(train_sizes) + 1")

    LARGEST_TRAIN_N: ClassVar[int] = 63  # the two-grid error is dense: n^2 unknowns
    LARGEST_WIDTH: ClassVar[int] = 1024  # of hidden and rounds (a weights file's too)

    def __post_init__(self) -> None:
        rules.integers(self, "train_sizes", minimum=3, maximum=self.LARGEST_TRAIN_N)
        if not self.families or any(family not in tuple(InterpolationFamily) for family in self.families):
            raise rules.Invalid("families", self.families, f"give one or more of {rules.choices(InterpolationFamily)}")
        rules.count(self, "steps", minimum=0, maximum=10**6)
        for name in ("problems", "vectors", "smoothing", "powers", "measure_every"):
            rules.count(self, name, maximum=10**6)
        rules.count(self, "hidden", maximum=self.LARGEST_WIDTH)
        rules.count(self, "rounds", maximum=self.LARGEST_WIDTH)
        rules.positive(self, "lr")
        rules.seed(self, "seed")


@dataclass
class AmgConfig(AmgSettings):
    """``problem.amg``: the algebraic multigrid's keys, types and defaults, written once beside the
    code (mgnet_cli/amg/: ``AmgSettings``, ``SetupSettings``); here their ranges, and the learned
    interpolation's file or how to learn it (the command's: the setup takes the network)."""
    interpolation_weights: str | None = rules.setting(None, "with interpolation=learned: a weights file to load "
                                                      "(a run's learned_interpolation.pt); null: learn one first, "
                                                      "by problem.amg.learning (saved in the run folder)")
    learning: InterpolationLearningConfig = field(default_factory=InterpolationLearningConfig, metadata={
            "help": "interpolation=learned without interpolation_weights: how its network is learned"})

    def __post_init__(self) -> None:
        rules.number(self, "theta", 0.0, 1.0, low_open=True)
        rules.number(self, "truncation", 0.0, 1.0, high_open=True)
        rules.number(self, "aggregation_theta", 0.0, 1.0)
        rules.number(self, "aggregation_omega", 0.0, 2.0, low_open=True, high_open=True,
                     why="a damped Jacobi step on D^-1 A scaled to its spectral radius")
        rules.text(self, "interpolation_weights", optional=True)
        if self.interpolation == "learned" and self.coarsening == "aggregation":
            raise rules.Invalid("interpolation", "learned", "the learned interpolation corrects the classical one; "
                                "smoothed aggregation has none: drop problem.amg.coarsening=aggregation")
        rules.count(self, "coarsest_size", maximum=DENSE_ROWS)  # the coarsest matrix is factored densely
        rules.count(self, "max_levels", minimum=2, maximum=100)
        rules.seed(self, "pmis_seed")
        rules.count(self, "pre_smooth", minimum=0, maximum=100)
        rules.count(self, "post_smooth", minimum=0, maximum=100)
        if self.pre_smooth == 0 and self.post_smooth == 0:
            raise rules.Invalid("pre_smooth", 0, "with problem.amg.post_smooth=0 the cycle never smooths")


@dataclass
class MatrixProblemConfig:
    """A user's symmetric positive definite matrix, solved by algebraic multigrid
    (``configs/problem/matrix.yaml``; docs/amg.md)."""
    kind: str = rules.setting("matrix", "the problem's kind, chosen with problem=NAME (configs/problem/)")
    file: str | None = rules.setting(None, "required: a .mtx (Matrix Market) or .npz (SciPy sparse) symmetric "
                                           "positive definite matrix")  # null composes; the solve insists
    rhs: str = rules.setting(RightHandSide.random.value, f"{', '.join(MATRIX_RHS)} (as a grid "
                             f"problem's: standard normal from problem.seed, all ones), or a vector file "
                             f"({', '.join(VECTOR_SUFFIXES)}: an array or one column)")
    seed: int = rules.setting(0, "of the random right-hand side")
    amg: AmgConfig = field(default_factory=AmgConfig)

    TARGETS: ClassVar[tuple[str, ...]] = ("matrix",)
    SELECTED_BY: ClassVar[str] = "kind"

    def __post_init__(self) -> None:
        rules.one_of(self, "kind", self.TARGETS)
        matrix_file(self, "file", optional=True)
        rules.text(self, "rhs")
        if self.rhs not in MATRIX_RHS and not self.rhs.lower().endswith(VECTOR_SUFFIXES):
            raise rules.Invalid("rhs", self.rhs, f"give {', '.join(MATRIX_RHS)}, or a vector file: .npy, or a "
                                                 "Matrix Market .mtx (array or one-column coordinates)")
        rules.seed(self, "seed")


# --- solver smoothers ---------------------------------------------------------------------------
@dataclass
class SolverSmootherConfig:
    """A solver smoother with the keys every one has (``configs/solver/smoother/*.yaml`` extending
    ``/schema/solver/smoother/base``: red-black and zebra-line Gauss-Seidel and any new one); the
    code it may call is what those files name."""
    _target_: str = rules.target("mgnet_cli.pde.smoothers.RedBlackGaussSeidel")
    _partial_: bool = rules.partial("the steps are")

    TARGETS = shipped.Targets("solver/smoother", "base")  # what the shipped options name

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the cycle passes the steps)")


@dataclass
class JacobiConfig(SolverSmootherConfig):
    _target_: str = "mgnet_cli.pde.smoothers.DampedJacobi"
    omega: float = rules.setting(0.8, "the damping, in (0, 1]; 4/5 is optimal for the 5-point Laplacian")

    TARGETS = shipped.Targets("solver/smoother", "jacobi")

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.number(self, "omega", 0.0, 1.0, low_open=True)


@dataclass
class ChebyshevPolynomialConfig(SolverSmootherConfig):
    _target_: str = "mgnet_cli.pde.smoothers.ChebyshevPolynomial"
    ratio: float = rules.setting(4.0, "> 1: the polynomial damps D^-1 A's eigenvalues in [2 / ratio, 2]; "
                                 "4 at degree 1 is damped Jacobi with omega = 4/5")

    TARGETS = shipped.Targets("solver/smoother", "chebyshev")

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.number(self, "ratio", 1.0, 1e6, low_open=True)


# --- what the solver learns ---------------------------------------------------------------------
@dataclass
class LearningScheduleConfig(WarmupCosineConfig):
    """The learning rate over the steps of learning (one step is one "epoch"); a warm-up longer
    than a short test run just warms up all the way."""
    epochs: int | None = rules.setting(None, "steps the schedule spans; null: the part's steps")

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        if self.epochs is not None:
            rules.count(self, "epochs", maximum=10**6)
        rules.number(self, "warmup_epochs", 0.0, 10**6)
        rules.number(self, "final_fraction", 0.0, 1.0)


@dataclass
class LearningOptimizerConfig:
    """The optimizer of a learned smoother or prolongation (Adam by default)."""
    _target_: str = rules.setting("torch.optim.Adam", "the optimizer: torch.optim.Adam, AdamW or SGD")
    _partial_: bool = rules.partial("the parameters are")
    lr: float = rules.setting(1e-2, "the learning rate")

    TARGETS: ClassVar[tuple[str, ...]] = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD")

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the parameters are passed in)")
        rules.positive(self, "lr")


@dataclass
class LearnedSmootherConfig:
    """``solver.smoother.learning`` of ``solver/smoother=learned``: how its kernels are learned (or
    the checkpoint to load); the other learned parts' keys extend these."""
    checkpoint: str | None = rules.setting(None, "a saved part (.pt) to load; null: learn one first (saved in "
                                           "the run folder)")
    shared: bool = rules.setting(True, "one kernel for every level (true) or one per grid size (false)")
    train_sizes: list[int] = rules.setting([31, 63], "training grids (2^L - 1, above solver.coarsest_n)")
    steps: int = rules.setting(200, "gradient steps; each draws batch random problems per training grid")
    batch: int = rules.setting(16, "random problems per training grid and step")
    cycles: int = rules.setting(6, "unrolled cycles per problem; loss = log(||r_cycles|| / ||r_0||) / cycles")
    seed: int = rules.setting(0, "of the training problems (the factor is measured on other ones)")
    measure_every: int = rules.setting(25, "steps between factor measurements on the next finer, unseen grid")
    optimizer: LearningOptimizerConfig = field(default_factory=LearningOptimizerConfig)
    scheduler: LearningScheduleConfig = field(default_factory=LearningScheduleConfig)

    LARGEST_TRAIN_N: ClassVar[int] = 255  # cycles unrolled under autograd: small grids suffice

    def __post_init__(self) -> None:
        rules.text(self, "checkpoint", optional=True)
        sizes = rules.integers(self, "train_sizes", minimum=3, maximum=self.LARGEST_TRAIN_N)
        if any(size not in GRID_SIZES for size in sizes):
            raise rules.Invalid("train_sizes", sizes, f"give grid sizes 2^L - 1 up to {self.LARGEST_TRAIN_N}, "
                                                      "e.g. [31,63]")
        for name in ("steps", "batch", "cycles", "measure_every"):
            rules.count(self, name, maximum=10**6)
        rules.seed(self, "seed")


class TrainingField(rules.Choice):
    lognormal = "lognormal"
    jumps = "jumps"
    anisotropic = "anisotropic"


@dataclass
class FieldLearningConfig(LearnedSmootherConfig):
    """The keys of a CNN learned on random coefficient fields (the learned prolongation, the
    stencil-aware smoother): small grids, a few problems a step, few cycles."""
    train_sizes: list[int] = field(default_factory=lambda: [31])
    batch: int = 4
    cycles: int = 2
    hidden: int = rules.setting(16, "channels of the network")
    fields: list[TrainingField] = rules.setting([TrainingField.anisotropic, TrainingField.jumps],
                                                "kinds of training field, in turn")

    LARGEST_HIDDEN: ClassVar[int] = 1024  # a weights file's too

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.count(self, "hidden", maximum=self.LARGEST_HIDDEN)
        if not self.fields:
            raise rules.Invalid("fields", self.fields, f"give at least one of {rules.choices(TrainingField)}")


@dataclass
class LearnedProlongationConfig(FieldLearningConfig):
    """``solver.learned_prolongation`` (read with ``solver.prolongation=learned``): the CNN that
    predicts P's weights."""
    steps: int = 100
    hidden: int = 32
    base: ProlongationBase = rules.setting(ProlongationBase.black_box, "the rule the network corrects (and "
                                           "starts from)")
    fields: list[TrainingField] = field(default_factory=lambda: [TrainingField.lognormal, TrainingField.jumps])
    optimizer: LearningOptimizerConfig = field(default_factory=lambda: LearningOptimizerConfig(lr=1e-3))

    LARGEST_HIDDEN: ClassVar[int] = 4096


@dataclass
class StencilAwareConfig(FieldLearningConfig):
    """``solver.smoother.learning`` of ``solver/smoother=stencil_aware``: the CNN from each point's
    stencils to the smoother's taps."""
    steps: int = 60
    measure_every: int = 20
    optimizer: LearningOptimizerConfig = field(default_factory=lambda: LearningOptimizerConfig(lr=3e-3))


@dataclass
class LearnedSmootherOptionConfig(SolverSmootherConfig):
    """``configs/solver/smoother/learned.yaml``: the smoother and, under ``learning``, how it is learned."""
    _target_: str = "mgnet_cli.pde.learned_smoother.LearnedSmoother"
    learning: LearnedSmootherConfig = field(default_factory=LearnedSmootherConfig)

    TARGETS = shipped.Targets("solver/smoother", "learned")


@dataclass
class StencilAwareOptionConfig(SolverSmootherConfig):
    """``configs/solver/smoother/stencil_aware.yaml``: the smoother and, under ``learning``, how it is learned."""
    _target_: str = "mgnet_cli.pde.stencil_smoother.StencilAwareSmoother"
    learning: StencilAwareConfig = field(default_factory=StencilAwareConfig)

    TARGETS = shipped.Targets("solver/smoother", "stencil_aware")


@dataclass
class SolverConfig:
    """``solve.yaml``'s ``solver``: the cycle, its coarsening and what it learns."""
    cycle: CycleShape = rules.setting(CycleShape.v, f"{SHAPES_HELP}; backslash: MgNet's shape, smoothing on the "
                                    "way down only")
    prolongation: Prolongation = rules.setting(Prolongation.bilinear, "diffusion/anisotropic: bilinear, "
                                               "black_box (Dendy) or learned; R = P^T, A_c = R A P")
    krylov: Krylov = rules.setting(Krylov.none, KRYLOV_HELP)
    pre_smooth: int = rules.setting(1, "smoothing steps before the coarse-grid correction (Chebyshev: the degree)")
    post_smooth: int = rules.setting(1, "after it; the backslash cycle has none")
    coarsest_n: int = rules.setting(7, "coarsening stops at this grid (2^k - 1), which is solved exactly")
    tol: float = rules.setting(1e-8, "stop when ||f - A u|| <= tol ||f||")
    max_cycles: int = rules.setting(50, "cycles at most")
    dtype: Dtype = rules.setting(Dtype.float64, "float64 or float32 (float32 stalls near a relative residual of 1e-6)")
    device: str = rules.setting("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    threads: int | None = rules.setting(None, "CPU threads; null: the cores other processes leave idle at the "
                                        "start, capped at the usable cores")
    learned_prolongation: LearnedProlongationConfig = field(default_factory=LearnedProlongationConfig,
                                                            metadata={"help": "solver.prolongation=learned: how its CNN is learned"})
    smoother: Any = rules.group("solver/smoother")

    def __post_init__(self) -> None:
        rules.count(self, "pre_smooth", minimum=0, maximum=100)
        rules.count(self, "post_smooth", minimum=0, maximum=100)
        if self.pre_smooth == 0 and (self.cycle == CycleShape.backslash or self.post_smooth == 0):
            raise rules.Invalid("pre_smooth", 0, f"with solver.post_smooth={self.post_smooth} and "
                                                 f"solver.cycle={self.cycle.value} the cycle never smooths")
        grid_size(self, "coarsest_n", largest=31)  # solved densely: 961 unknowns at most
        rules.number(self, "tol", 0.0, 1.0, low_open=True, high_open=True)
        rules.count(self, "max_cycles", maximum=100_000)
        rules.device(self, "device")
        rules.optional_count(self, "threads")


@dataclass
class SolveConfig:
    """``configs/solve.yaml``: a problem and a solver."""
    problem: Any = rules.group("problem")
    solver: SolverConfig = field(default_factory=SolverConfig)

