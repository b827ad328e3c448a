"""Learning the learned interpolation (learned_interpolation.py): Adam on the two-grid error of a
family of small SPD problems, dense (a few hundred to a thousand unknowns each), on the CPU, through
learning.py's loop, result and file, as every learned solver part.

The loss of one problem is a stochastic estimate of ``(||E^k x||^2 / ||x||^2)^(1/2k)`` over random
Gaussian ``x`` (k = ``powers``; k = 1 is the mean square of ``E x``, which hardly sees the slowest modes), ``E = S_post^nu (I - P (P^T A P)^-1 P^T A) S_pre^nu`` the two-grid error propagation with
the AMG cycle's default smoother: Gauss-Seidel, forward before the coarse correction and backward
after (``problem.amg.smoother=gauss_seidel``). Everything but the network is fixed per problem and
made once: the classical split, strength and pattern (splitting.py, interpolation.py), the dense A and its triangles.
The measurement is the two-grid factor (``two_grid_factor``) on one held-out problem per family of
the next finer grid, never trained on. The training keys are the schema's
(``InterpolationLearningConfig``, mgnet_cli/schema/solve.py).
"""

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
import torch

from mgnet_cli.amg.learned_interpolation import (InterpolationGraph, InterpolationNet, interpolation_graph,
                                                 learned_interpolation, load_interpolation)
from mgnet_cli.amg.matrices import stencil_matrix
from mgnet_cli.amg.settings import SetupSettings
from mgnet_cli.amg.interpolation import classical_interpolation
from mgnet_cli.amg.splitting import second_pass, split_rs, strength
from mgnet_cli.pde.learning import LearningResult, MakeOptimizer, Part, Schedule, learn, measure_size, save_part
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.schema import rules
from mgnet_cli.schema.solve import InterpolationFamily, InterpolationLearningConfig

HELD_OUT_SEED = 10_000  # a held-out problem of size n is drawn from seed HELD_OUT_SEED + n, which training never uses


def family_matrix(family: str, n: int, seed: int) -> sparse.csr_matrix:
    """A problem of ``family`` on an n x n grid: jumps (k = 1 or 1000 per cell at random), rotated
    anisotropy (epsilon = 1e-3, theta uniform in [0, pi) drawn from ``seed``), lognormal (sigma = 1)
    or Poisson; the project's own stencils (pde/problems.py)."""
    if family in ("jumps", "lognormal"):
        return stencil_matrix(diffusion_stencil(coefficient_field(family, n, seed)))
    if family == "rotated":
        theta = math.pi * float(torch.rand(1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
        return stencil_matrix(anisotropic_stencil(n, 1e-3, theta))
    if family == "poisson":
        return stencil_matrix(diffusion_stencil(torch.ones(n, n, dtype=torch.float64)))
    raise ValueError(f"family must be one of {rules.choices(InterpolationFamily)}, got {family!r}")


def classical_parts(A: sparse.csr_matrix, settings: SetupSettings) -> tuple[sparse.csr_matrix, np.ndarray, sparse.csr_matrix]:
    """The finest level's strength, split and classical P as ``ruge_stuben`` makes them (RS splitting)."""
    S = strength(A, settings.theta)
    is_c = split_rs(S)
    if settings.second_pass:
        is_c = second_pass(S, is_c)
    return S, is_c, classical_interpolation(A, S, is_c, settings.truncation)


@dataclass
class TwoGridProblem:
    """One training matrix: its graph and the dense operators of its two-grid error."""

    graph: InterpolationGraph
    A: torch.Tensor  # (n, n) float64
    lower: torch.Tensor  # D + L: a forward Gauss-Seidel sweep solves with it
    upper: torch.Tensor  # D + U: a backward sweep
    coarse: int  # columns of P

    @classmethod
    def of(cls, A: sparse.csr_matrix, settings: SetupSettings | None = None) -> "TwoGridProblem":
        S, is_c, P = classical_parts(A, settings or SetupSettings())
        dense = torch.from_numpy(A.toarray())
        return cls(interpolation_graph(A, S, is_c, P), dense, torch.tril(dense), torch.triu(dense), int(is_c.sum()))

    def prolongation(self, weights: torch.Tensor) -> torch.Tensor:
        """The dense P (n x coarse): identity on C rows, ``weights`` on the F rows' pattern."""
        graph = self.graph
        P = torch.zeros(self.A.shape[0], self.coarse, dtype=torch.float64)
        c_points = torch.from_numpy(np.flatnonzero(graph.is_c))
        P[c_points, torch.arange(self.coarse)] = 1.0
        return P.index_put((graph.p_rows(), graph.p_coarse_cols()), weights)

    def error(self, P: torch.Tensor, factor: torch.Tensor, x: torch.Tensor, smoothing: int) -> torch.Tensor:
        """``E x`` for the columns of ``x`` (``factor``: Cholesky of ``P^T A P``): smoothing sweeps, the
        coarse correction, smoothing back."""
        A = self.A
        for _ in range(smoothing):
            x = x - torch.linalg.solve_triangular(self.lower, A @ x, upper=False)
        x = x - P @ torch.cholesky_solve(P.T @ (A @ x), factor)
        for _ in range(smoothing):
            x = x - torch.linalg.solve_triangular(self.upper, A @ x, upper=True)
        return x

    def loss(self, weights: torch.Tensor, x: torch.Tensor, smoothing: int, powers: int = 1) -> torch.Tensor:
        """``(mean ||E^k x||^2 / ||x||^2)^(1/2k)`` over the columns of ``x``, ``k = powers``: an estimate
        of the two-grid factor per cycle (of ``||E||_F / sqrt(n)`` at k = 1, of the spectral radius as k grows)."""
        P = self.prolongation(weights)
        factor = torch.linalg.cholesky(P.T @ self.A @ P)
        Ex = x
        for _ in range(powers):
            Ex = self.error(P, factor, Ex, smoothing)
        return (self.energy(Ex) / self.energy(x)).mean() ** (0.5 / powers)

    def energy(self, v: torch.Tensor) -> torch.Tensor:
        """``||v||_A^2`` of each column of ``v``."""
        return (v * (self.A @ v)).sum(0)


def training_problems(settings: InterpolationLearningConfig) -> list[TwoGridProblem]:
    """``problems`` matrices of each family and size, from seeds ``1000 seed + index``."""
    return [TwoGridProblem.of(family_matrix(str(family), n, settings.seed * 1000 + index))
            for family in settings.families for n in settings.train_sizes for index in range(settings.problems)]


class InterpolationTask:
    """The learned interpolation as learning.py's ``Task``: each step one training problem (in a
    seeded random order) and fresh x; measured, from the start, on one held-out problem per family."""

    name, tag, measures_start = "AMG interpolation", "learned_interpolation", True
    device = torch.device("cpu")

    @staticmethod
    def batch_factor(loss: float) -> float:
        return loss  # the loss estimates the two-grid factor itself

    def __init__(self, settings: InterpolationLearningConfig, problems: list[TwoGridProblem] | None = None) -> None:
        torch.manual_seed(settings.seed)  # the initial weights
        self.settings = settings
        self.problems = problems if problems is not None else training_problems(settings)
        self.model = InterpolationNet(settings.hidden, settings.rounds)
        self.generator = torch.Generator().manual_seed(settings.seed)
        n = measure_size(settings)
        matrices = {str(family): family_matrix(str(family), n, HELD_OUT_SEED + n) for family in settings.families}
        self.held_out = {family: (A, *classical_parts(A, SetupSettings())[:2]) for family, A in matrices.items()}

    def loss(self) -> torch.Tensor:
        problem = self.problems[int(torch.randint(len(self.problems), (1,), generator=self.generator))]
        x = torch.randn(problem.A.shape[0], self.settings.vectors, generator=self.generator, dtype=torch.float64)
        return problem.loss(self.model(problem.graph), x, self.settings.smoothing, self.settings.powers)

    def measure(self) -> tuple[float, dict[str, float]]:
        factors = {}
        for family, (A, S, is_c) in self.held_out.items():
            P = learned_interpolation(self.model, A, S, is_c, SetupSettings().truncation)
            factors[family] = two_grid_factor(A, P, self.settings.smoothing)
        return sum(factors.values()) / len(factors), factors


def adam(settings: InterpolationLearningConfig) -> tuple[MakeOptimizer, Schedule]:
    """Its optimizer and schedule, fixed by its keys: Adam at ``settings.lr``, constant."""
    return partial(torch.optim.Adam, lr=settings.lr), lambda step: 1.0


def learn_interpolation(settings: InterpolationLearningConfig, problems: list[TwoGridProblem] | None = None,
                        run_dir: Path | None = None) -> LearningResult:
    """Trains an ``InterpolationNet`` on ``problems`` (default: ``training_problems``) as ``adam`` says."""
    return trained(InterpolationTask(settings, problems), *adam(settings), run_dir)


def trained(task: InterpolationTask, make_optimizer: MakeOptimizer, schedule: Schedule,
            run_dir: Path | None) -> LearningResult:
    """learning.py's ``learn`` of ``task``; the network comes back in eval mode."""
    result = learn(task, task.settings, make_optimizer, schedule, run_dir)
    result.model.eval()
    return result


def save_interpolation(path: Path | str, result: LearningResult) -> None:
    """The network and the record of its training, weights-only; its cycle the two-grid one it learned in."""
    smoothing = result.settings.smoothing
    save_part(Path(path), result, {"smoother": "gauss_seidel", "pre_smooth": smoothing, "post_smooth": smoothing})


PART = Part(InterpolationNet.__name__, "problem.amg.learning", "learned_interpolation",
            load=lambda path, amg: load_interpolation(path),
            learn=lambda settings, amg, make_optimizer, schedule, run_dir, device: trained(
                InterpolationTask(settings), make_optimizer, schedule, run_dir),  # on the CPU, whatever ``device``
            save=lambda path, result, amg: save_interpolation(path, result),
            file_key="problem.amg.interpolation_weights", tools=adam, on_grids=False)
"""``mgnet solve problem=matrix problem.amg.interpolation=learned``'s network: loaded from
``problem.amg.interpolation_weights`` or learned by ``problem.amg.learning``; the setup takes it
whatever the matrix (the context, ``problem.amg``, decides nothing of it)."""


def two_grid_factor(A: sparse.csr_matrix, P: sparse.csr_matrix, smoothing: int = 1, iterations: int = 40,
                    seed: int = 0) -> float:
    """The two-grid cycle's asymptotic factor (``E`` as in ``TwoGridProblem.error``) by power
    iterations from a random start, sparse (exact coarse solve by SuperLU): the reduction of the last
    half of the iterations, per iteration."""
    import scipy.sparse.linalg as sparse_linalg

    A = sparse.csr_matrix(A)
    lower = sparse_linalg.splu(sparse.tril(A, format="csc"), permc_spec="NATURAL", diag_pivot_thresh=0.0)
    upper = sparse_linalg.splu(sparse.triu(A, format="csc"), permc_spec="NATURAL", diag_pivot_thresh=0.0)
    coarse = sparse_linalg.splu(sparse.csc_matrix(P.T @ A @ P))
    x = np.random.default_rng(seed).standard_normal(A.shape[0])
    norms = [np.linalg.norm(x)]
    for _ in range(iterations):
        for _ in range(smoothing):
            x = x - lower.solve(A @ x)
        x = x - P @ coarse.solve(P.T @ (A @ x))
        for _ in range(smoothing):
            x = x - upper.solve(A @ x)
        norms.append(np.linalg.norm(x))
        if norms[-1] < 1e-250:
            break
    span = max(1, (len(norms) - 1) // 2)
    return float((norms[-1] / norms[-1 - span]) ** (1.0 / span))
