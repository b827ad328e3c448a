"""Training the learned interpolation (learned_interpolation.py): Adam on the two-grid error of a
family of small SPD problems, dense (a few hundred to a thousand unknowns each), on the CPU.

The loss of one problem is a stochastic estimate of ``(||E^k x||^2 / ||x||^2)^(1/2k)`` over random
Gaussian ``x`` (k = ``powers``; k = 1 is the mean square of ``E x``, which hardly sees the slowest modes), ``E = S_post^nu (I - P (P^T A P)^-1 P^T A) S_pre^nu`` the two-grid error propagation with
the AMG cycle's default smoother: Gauss-Seidel, forward before the coarse correction and backward
after (``problem.amg.smoother=gauss_seidel``). Everything but the network is fixed per problem and
made once: the classical split, strength and pattern (setup.py), the dense A and its triangles.
"""

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
import torch

from mgnet_cli.amg.learned_interpolation import InterpolationGraph, InterpolationNet, interpolation_graph
from mgnet_cli.amg.matrices import stencil_matrix
from mgnet_cli.amg.settings import SetupSettings
from mgnet_cli.amg.setup import classical_interpolation, second_pass, split_rs, strength
from mgnet_cli.pde.problems import anisotropic_stencil, coefficient_field, diffusion_stencil
from mgnet_cli.train.checkpoint import save_checkpoint

FAMILIES = ("jumps", "rotated", "lognormal", "poisson")


@dataclass(frozen=True)
class TrainingSettings:
    """How the network is trained (scripts/train_interpolation.py takes each as --<name>)."""

    sizes: tuple[int, ...] = field(default=(15, 23, 31), metadata={"help": "grid sides n of the training problems"})
    families: tuple[str, ...] = field(default=("jumps", "rotated"), metadata={
            "help": f"training problem families, of {', '.join(FAMILIES)}"})
    problems: int = field(default=4, metadata={"help": "training problems per family and size"})
    steps: int = field(default=150, metadata={"help": "Adam steps, one problem each"})
    vectors: int = field(default=32, metadata={"help": "random x per loss estimate"})
    smoothing: int = field(default=1, metadata={"help": "Gauss-Seidel sweeps before and after the coarse correction"})
    powers: int = field(default=8, metadata={
            "help": "k in the loss (mean ||E^k x||^2 / ||x||^2)^(1/2k): k > 1 weighs the slow modes"})
    lr: float = field(default=1e-3, metadata={"help": "Adam's learning rate"})
    hidden: int = field(default=32, metadata={"help": "the network's width"})
    rounds: int = field(default=3, metadata={"help": "message-passing rounds"})
    seed: int = field(default=0, metadata={"help": "of the problems, the x and the initial weights"})


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
    raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")


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


def training_problems(settings: TrainingSettings) -> list[TwoGridProblem]:
    """``problems`` matrices of each family and size, from seeds ``1000 seed + index``."""
    return [TwoGridProblem.of(family_matrix(family, n, settings.seed * 1000 + index))
            for family in settings.families for n in settings.sizes for index in range(settings.problems)]


@dataclass
class TrainingResult:
    net: InterpolationNet
    settings: TrainingSettings
    losses: list[float]
    time_s: float


def train(settings: TrainingSettings, problems: list[TwoGridProblem] | None = None) -> TrainingResult:
    """Adam for ``settings.steps`` steps, each on one problem (in a seeded random order) and fresh x."""
    torch.manual_seed(settings.seed)
    problems = problems if problems is not None else training_problems(settings)
    net = InterpolationNet(settings.hidden, settings.rounds)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    losses, start = [], time.perf_counter()
    for _ in range(settings.steps):
        problem = problems[int(torch.randint(len(problems), (1,), generator=generator))]
        x = torch.randn(problem.A.shape[0], settings.vectors, generator=generator, dtype=torch.float64)
        loss = problem.loss(net(problem.graph), x, settings.smoothing, settings.powers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return TrainingResult(net.eval(), settings, losses, time.perf_counter() - start)


def save_net(path: Path | str, result: TrainingResult) -> None:
    """The network (``state()``), its training settings and losses: plain data, weights-only."""
    settings = {name: list(value) if isinstance(value, tuple) else value for name, value in vars(result.settings).items()}
    save_checkpoint(Path(path), {**result.net.state(), "settings": settings, "losses": result.losses,
                                 "time_s": result.time_s})


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
