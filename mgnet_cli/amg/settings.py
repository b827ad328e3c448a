"""The settings of the algebraic multigrid, written once (Hydra structured-config example 5.2: the
dataclass beside the code that uses it): ``SetupSettings`` (setup.py: how coarse levels are chosen
from the matrix) and ``AmgSettings`` (solver.py: how the cycle runs). ``mgnet solve problem=matrix``
takes them as ``problem.amg.<key>``; mgnet_cli/schema/solve.py extends ``AmgSettings`` with the ranges.
Imports nothing heavy: the schema imports it."""

from dataclasses import dataclass
from enum import StrEnum

MATRIX_SUFFIXES = (".mtx", ".npz")  # Matrix Market, SciPy sparse


class Splitting(StrEnum):
    rs = "rs"
    pmis = "pmis"


class Interpolation(StrEnum):
    classical = "classical"
    direct = "direct"


SPLITTINGS = tuple(Splitting)
INTERPOLATIONS = tuple(Interpolation)


@dataclass
class SetupSettings:
    """How ``setup.ruge_stuben`` chooses the coarse levels from the matrix."""

    theta: float = 0.25  # strength threshold
    splitting: Splitting = Splitting.rs
    second_pass: bool = True  # RS second pass: strong F-F pairs share a C point
    interpolation: Interpolation = Interpolation.classical
    truncation: float = 0.2  # drop interpolation weights below this fraction of the row's largest
    coarsest_size: int = 64  # stop coarsening at or below this many rows (solved directly)
    max_levels: int = 25
    pmis_seed: int = 0  # PMIS's random weights


class AmgSmoother(StrEnum):
    gauss_seidel = "gauss_seidel"
    symmetric_gauss_seidel = "symmetric_gauss_seidel"
    l1_jacobi = "l1_jacobi"
    chebyshev = "chebyshev"


class AmgCycle(StrEnum):
    v = "v"
    w = "w"


class AmgKrylov(StrEnum):
    cg = "cg"
    none = "none"


SMOOTHERS = tuple(AmgSmoother)


@dataclass
class AmgSettings(SetupSettings):
    """The setup and how ``solver.solve_matrix`` cycles. The defaults were measured (docs/amg.md):
    V(1,1) with Gauss-Seidel forward before the coarse correction and backward after (a symmetric
    cycle), preconditioning CG."""

    smoother: AmgSmoother = AmgSmoother.gauss_seidel
    cycle: AmgCycle = AmgCycle.v
    pre_smooth: int = 1
    post_smooth: int = 1
    krylov: AmgKrylov = AmgKrylov.cg  # cg: one cycle per iteration preconditions conjugate gradients

    def describe(self) -> str:
        """What was chosen, in a few words: ``RS + 2nd pass, classical interpolation, V(1,1) gauss_seidel, CG``."""
        split = f"{self.splitting.upper()}{' + 2nd pass' if self.second_pass else ''} (theta={self.theta:g})"
        shape = f"{self.cycle.upper()}({self.pre_smooth},{self.post_smooth}) {self.smoother}"
        accelerated = "-preconditioned CG" if self.krylov == "cg" else " cycles"
        return f"{split}, {self.interpolation} interpolation, {shape}{accelerated}"
