"""The settings of the algebraic multigrid, written once (Hydra structured-config example 5.2: the
dataclass beside the code that uses it): ``SetupSettings`` (setup.py: how coarse levels are chosen
from the matrix) and ``AmgSettings`` (solver.py: how the cycle runs). ``mgnet solve problem=matrix``
takes them as ``problem.amg.<key>``; mgnet_cli/schema/solve.py extends ``AmgSettings`` with the ranges.
Imports nothing heavy: the schema imports it. Each key's one-line help is its field's
``metadata["help"]`` (what ``mgnet_cli.schema.rules.setting`` writes; that module is not imported
here: the schema imports this one)."""

from dataclasses import dataclass, field
from enum import StrEnum

from mgnet_cli.cycle_shape import SHAPES_HELP, CycleShape
from mgnet_cli.krylov_choice import HELP as KRYLOV_HELP
from mgnet_cli.krylov_choice import Krylov

MATRIX_SUFFIXES = (".mtx", ".npz")  # Matrix Market, SciPy sparse
VECTOR_SUFFIXES = (".npy", ".mtx")  # a right-hand side: NumPy (no pickle), Matrix Market


DENSE_ROWS = 4096  # the coarsest matrix is factored densely up to this many rows (128 MiB)


class Coarsening(StrEnum):
    classical = "classical"
    aggregation = "aggregation"


class Splitting(StrEnum):
    rs = "rs"
    pmis = "pmis"


class Interpolation(StrEnum):
    classical = "classical"
    direct = "direct"
    extended_i = "extended_i"
    learned = "learned"


@dataclass
class SetupSettings:
    """How the coarse levels are chosen from the matrix: ``setup.ruge_stuben`` (classical) or
    ``aggregation.smoothed_aggregation``."""

    coarsening: Coarsening = field(default=Coarsening.classical, metadata={
            "help": "the family of coarse spaces: classical (C/F splitting and interpolation) or aggregation "
                    "(smoothed aggregation)"})
    theta: float = field(default=0.25, metadata={
            "help": "classical strength threshold: j is a strong neighbour of i when -a_ij >= theta max_k -a_ik"})
    splitting: Splitting = field(default=Splitting.rs, metadata={
            "help": "the C/F splitting: rs (Ruge-Stueben) or pmis (parallel, random weights)"})
    second_pass: bool = field(default=True, metadata={
            "help": "RS second pass: strong F-F pairs share a C point"})
    interpolation: Interpolation = field(default=Interpolation.classical, metadata={
            "help": "classical, direct, extended_i (extended+i: from C points up to two strong links away) or "
                    "learned (classical's pattern, weights by a graph network: learned_interpolation.py)"})
    truncation: float = field(default=0.2, metadata={
            "help": "drop interpolation weights below this fraction of the row's largest"})
    coarsest_size: int = field(default=64, metadata={
            "help": "stop coarsening at or below this many rows (solved directly)"})
    max_levels: int = field(default=25, metadata={"help": "levels at most, the finest included"})
    pmis_seed: int = field(default=0, metadata={"help": "of PMIS's random weights"})
    aggregation_theta: float = field(default=0.08, metadata={
            "help": "aggregation's symmetric strength threshold: i and j are strong neighbours when "
                    "|a_ij| >= aggregation_theta sqrt(a_ii a_jj)"})
    aggregation_omega: float = field(default=4 / 3, metadata={
            "help": "aggregation's prolongator smoothing: one damped Jacobi step, weight aggregation_omega / "
                    "rho(D^-1 A)"})


class AmgSmoother(StrEnum):
    gauss_seidel = "gauss_seidel"
    symmetric_gauss_seidel = "symmetric_gauss_seidel"
    l1_jacobi = "l1_jacobi"
    chebyshev = "chebyshev"


# The shapes of mgnet_cli/cycle_shape.py that come back up (not MgNet's backslash), derived from it:
# a new shape there is a choice here.
AmgCycle = StrEnum("AmgCycle", {shape.name: shape.value for shape in CycleShape if shape != CycleShape.backslash})


@dataclass
class AmgSettings(SetupSettings):
    """The setup and how ``solver.solve_matrix`` cycles. The defaults were measured (docs/amg.md):
    V(1,1) with Gauss-Seidel forward before the coarse correction and backward after (a symmetric
    cycle), preconditioning CG."""

    smoother: AmgSmoother = field(default=AmgSmoother.gauss_seidel, metadata={
            "help": "gauss_seidel (forward before the coarse "
                                    "correction, backward after), symmetric_gauss_seidel, l1_jacobi or chebyshev"})
    cycle: AmgCycle = field(default=AmgCycle.v, metadata={"help": SHAPES_HELP})
    pre_smooth: int = field(default=1, metadata={"help": "smoothing steps before the coarse-grid correction"})
    post_smooth: int = field(default=1, metadata={"help": "after it"})
    krylov: Krylov = field(default=Krylov.cg, metadata={"help": KRYLOV_HELP})

    def prolongation(self) -> str:
        """How P is made, for results.json: ``smoothed aggregation``, or the interpolation's name."""
        return "smoothed aggregation" if self.coarsening == Coarsening.aggregation else str(self.interpolation)

    def describe(self) -> str:
        """What was chosen, in a few words: ``RS + 2nd pass (theta=0.25), classical interpolation,
        V(1,1) gauss_seidel-preconditioned CG`` or ``smoothed aggregation (theta=0.08, omega=1.333),
        V(1,1) ...``."""
        if self.coarsening == Coarsening.aggregation:
            coarse = f"smoothed aggregation (theta={self.aggregation_theta:g}, omega={self.aggregation_omega:.4g})"
        else:
            split = f"{self.splitting.upper()}{' + 2nd pass' if self.second_pass else ''} (theta={self.theta:g})"
            coarse = f"{split}, {self.interpolation} interpolation"
        shape = f"{self.cycle.upper()}({self.pre_smooth},{self.post_smooth}) {self.smoother}"
        accelerated = "-preconditioned CG" if self.krylov == Krylov.cg else " cycles"
        return f"{coarse}, {shape}{accelerated}"
