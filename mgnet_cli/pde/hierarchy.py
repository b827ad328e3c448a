"""Algebraic-style multigrid on a stencil: Galerkin coarse levels built once, the network's cycle run.

Each level is ``Level(A = its stencil operator, smoother, R = P^T / 4, Pi = None, P, post_smoother)``
with ``A_{l+1} = R A_l P`` and ``P`` from a prolongation rule applied to ``A_l``'s stencil:
bilinear (the same weights everywhere), Black Box (operator-dependent, Dendy 1982) or learned
(learned_prolongation.py). The coarsest level is solved exactly. Nothing here is specific to one
PDE: the problems (problems.py) only give the finest stencil.
"""

from collections.abc import Callable

import torch

from mgnet_cli.cycle import Level, MultigridCycle
from mgnet_cli.pde.galerkin import bilinear_weights, black_box_weights, coarse_operator
from mgnet_cli.pde.poisson import coarse_size
from mgnet_cli.pde.smoothers import DirectSolve
from mgnet_cli.pde.solve import Multigrid, SolveResult, solve_system
from mgnet_cli.pde.stencils import StencilOperator

ProlongationRule = Callable[[torch.Tensor], torch.Tensor]
"""Fine stencil (3, 3, 2m + 1, 2m + 1) -> prolongation weights (3, 3, m, m)."""


def bilinear_rule(stencil: torch.Tensor) -> torch.Tensor:
    return bilinear_weights(coarse_size(stencil.shape[-1]), stencil.dtype, stencil.device)


PROLONGATIONS: dict[str, ProlongationRule] = {"bilinear": bilinear_rule, "black_box": black_box_weights}
"""``solver.prolongation`` name -> rule; ``learned`` is a ``LearnedProlongation`` module."""


def build_galerkin_cycle(stencil: torch.Tensor, multigrid: Multigrid,
                         rule: ProlongationRule) -> tuple[MultigridCycle, list[int]]:
    """The cycle on the fine ``stencil`` (3, 3, n, n) with Galerkin coarse levels, and the sizes."""
    A = StencilOperator(stencil)
    levels, sizes = [], [A.n]
    while A.n > multigrid.config.coarsest_n:
        coarse, P, R = coarse_operator(A, rule(A.stencil))
        pre, post = multigrid.level_smoothers(A, A.diagonal)
        levels.append(Level(A=A, smoother=pre, restrict_residual=R, restrict_u=None, prolong=P,
                            post_smoother=post))
        A = coarse
        sizes.append(A.n)
    levels.append(Level(A=A, smoother=DirectSolve(A, A.n, stencil.dtype, stencil.device)))
    return MultigridCycle(levels, shape=multigrid.config.cycle), sizes


def solve_stencil(stencil: torch.Tensor, f: torch.Tensor, multigrid: Multigrid,
                  rule: ProlongationRule) -> SolveResult:
    """Solves ``A u = f`` (``f``: (1, 1, n, n)) by Galerkin multigrid to ``multigrid``'s tolerance;
    setup includes the coarse levels."""
    config = multigrid.config
    with torch.inference_mode():
        return solve_system(f, lambda: build_galerkin_cycle(stencil, multigrid, rule), config.tol,
                            config.max_cycles, config.krylov)
