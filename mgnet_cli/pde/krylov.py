"""Multigrid-preconditioned conjugate gradients: the cycle as the preconditioner of CG (``solver.krylov=cg``).

One preconditioner application is one cycle from zero on ``A e = r``, ``e = cycle(None, r, r)``.
For CG it must be symmetric: V(pre, post) with the post-smoother the adjoint of the pre-smoother,
which ``adjoint_post_smoother`` makes of the Gauss-Seidel smoothers (their sweeps in reverse
order); Jacobi and Chebyshev are their own adjoints. The step uses the Polak-Ribiere ``beta``
(flexible CG), so a preconditioner that is symmetric only up to round-off (or, for the learned
smoothers, not at all) costs speed, not convergence. Where the cycle alone stalls on a few slow
modes (the jumps fields: a factor near 0.95), CG removes them a few iterations each.
"""

import math
from collections.abc import Callable

import torch
from torch import nn

from mgnet_cli.pde.smoothers import Smoother

def adjoint_post_smoother(smoother: Smoother) -> Smoother:
    """The post-smoother that makes the V cycle symmetric: its sweeps in reverse order."""
    smoother.reverse = True
    return smoother


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum()


def conjugate_gradients(cycle: nn.Module, A: nn.Module, f: torch.Tensor, tol: float, max_iterations: int,
                        each: Callable[[], None] | None = None) -> tuple[torch.Tensor, list[float], str]:
    """CG from ``u = 0``, preconditioned by one cycle per iteration, until ``||f - A u|| <= tol
    ||f||``: (u, residual norms, status), as ``iterate`` in solve.py; ``stalled`` after 5
    iterations without a new lowest residual (CG's residual is not monotone). ``each`` is called
    after every iteration (the benchmark's clock)."""
    u, r = torch.zeros_like(f), f
    norms = [torch.linalg.vector_norm(f).item()]
    z = cycle(None, r, r)
    p, rz = z, _dot(r, z)
    best, since_best = norms[0], 0
    for _ in range(max_iterations):
        q = A(p)
        alpha = rz / _dot(p, q)
        u = u + alpha * p
        r_next = r - alpha * q
        norms.append(torch.linalg.vector_norm(r_next).item())
        if each is not None:
            each()
        if norms[-1] <= tol * norms[0]:
            return u, norms, "converged"
        if not math.isfinite(norms[-1]) or norms[-1] > 1e3 * norms[0]:
            return u, norms, "diverged"
        best, since_best = (norms[-1], 0) if norms[-1] < best else (best, since_best + 1)
        if since_best >= 5:
            return u, norms, "stalled"
        z_next = cycle(None, r_next, r_next)
        beta = _dot(z_next, r_next - r) / rz  # Polak-Ribiere: (z_k+1, r_k+1 - r_k) / (z_k, r_k)
        rz = _dot(r_next, z_next)
        p, r, z = z_next + beta * p, r_next, z_next
    return u, norms, "max_cycles"
