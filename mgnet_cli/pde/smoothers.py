"""Classical smoothers for ``A u = f``, called like the network's: ``smoother(u, f, residual, A) -> u``.

``residual = f - A u`` comes in already formed and ``u = None`` is the zero grid function (see
mgnet_cli/cycle.py). They need only ``A(u)``, ``A.residual(u, f) = f - A u`` and the constant
diagonal ``A.diagonal``, so they serve any such stencil, not just the Laplacian. None changes the
tensors it is given. ``DirectSolve`` fills the coarsest level's smoother slot with an exact solve.
The learned smoother (a 3x3 kernel per level, trained through the cycle) is in learned_smoother.py, the
line smoother in lines.py. The registry is ``configs/solver/smoother/``: a new smoother is one
class and one YAML there.
"""

from collections.abc import Callable

import torch
from torch import nn

from mgnet_cli.cycle import zero_if_none
from mgnet_cli.schema.solve import ChebyshevPolynomialConfig, JacobiConfig  # their defaults

SmootherFactory = Callable[[int], nn.Module]
"""``steps -> smoother``: a class of this module (or ``functools.partial`` of one with its settings),
as ``configs/solver/smoother/*.yaml`` build them with ``_partial_: true``."""


class Smoother(nn.Module):
    """A smoother of the cycle: ``smoother(u, f, residual, A) -> u``, ``steps`` sweeps of ``smooth``
    (none: ``u`` as it is). ``reverse``: its sweeps in reverse order (the adjoint, for a symmetric V
    cycle: krylov.py); a symmetric one ignores it."""

    reverse: bool = False

    def __init__(self, steps: int) -> None:
        super().__init__()
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps={steps!r}: give an integer >= 0")
        self.steps = steps

    def forward(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
                A: nn.Module) -> torch.Tensor:
        return zero_if_none(u, f) if self.steps == 0 else self.smooth(u, f, residual, A)

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def setup(self, A: nn.Module, like: torch.Tensor) -> "Smoother":
        """Prepares, once, what depends only on its level's operator ``A`` (``like``: a grid function
        of the level's size, dtype and device), as the cycle is built (PyAMG's ``setup_*``); most
        smoothers need nothing."""
        return self

    LEVEL_STATE: tuple[str, ...] = ()  # the attributes ``setup`` fills (not an nn.Module field)

    def setup_as(self, twin: "Smoother", A: nn.Module, like: torch.Tensor) -> "Smoother":
        """Set up for the level ``twin`` (its other smoother of the same kind, set up already) was:
        ``twin``'s prepared state shared rather than prepared a second time (a level's pre- and
        post-smoother differ only in steps and direction), or ``setup`` where ``twin`` holds none."""
        if type(twin) is type(self) and self.LEVEL_STATE and all(
                getattr(twin, name, None) is not None for name in self.LEVEL_STATE):
            for name in self.LEVEL_STATE:
                setattr(self, name, getattr(twin, name))
            return self
        return self.setup(A, like)


Weight = float | torch.Tensor  # a number, or one per grid point (D^-1 of a variable stencil)


def _add(u: torch.Tensor | None, correction: torch.Tensor, weight: Weight = 1.0) -> torch.Tensor:
    """``u + weight * correction`` in one pass, with ``None`` standing for zero; ``u`` is not changed."""
    if u is None:
        return correction * weight
    if isinstance(weight, torch.Tensor):
        return torch.addcmul(u, correction, weight)
    return u.add(correction, alpha=weight)


def _add_(u: torch.Tensor, correction: torch.Tensor, weight: Weight) -> torch.Tensor:
    """``u += weight * correction`` in place."""
    if isinstance(weight, torch.Tensor):
        return u.addcmul_(correction, weight)
    return u.add_(correction, alpha=weight)


class DampedJacobi(Smoother):
    """``steps`` sweeps of ``u <- u + omega D^-1 (f - A u)``; ``omega = 4/5`` is optimal in 2D."""

    def __init__(self, steps: int, omega: float = JacobiConfig.omega) -> None:
        super().__init__(steps)
        if not isinstance(omega, (int, float)) or isinstance(omega, bool) or not 0 < omega <= 1:
            raise ValueError(f"omega={omega!r}: give a number in (0, 1]")
        self.omega = float(omega)

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        weight = self.omega / A.diagonal
        u = _add(u, residual, weight)  # a new tensor: later steps may update it in place
        for _ in range(1, self.steps):
            u = _add(u, A.residual(u, f), weight) if torch.is_grad_enabled() else \
                _add_(u, A.residual(u, f), weight)
        return u


def _update_colour(u: torch.Tensor, residual: torch.Tensor, weight: Weight, colour: int) -> torch.Tensor:
    """``u += weight * residual`` on the points with ``(i + j) % 2 == colour``: in place, or into a
    copy when autograd records (the learned prolongation trains through this smoother)."""
    if torch.is_grad_enabled():
        u = u.clone()
    for row_start in (0, 1):
        col_start = (row_start + colour) % 2
        points = (..., slice(row_start, None, 2), slice(col_start, None, 2))
        local = weight[points[1:]] if isinstance(weight, torch.Tensor) else weight
        _add_(u[points], residual[points], local)
    return u


class RedBlackGaussSeidel(Smoother):
    """``steps`` sweeps of Gauss-Seidel, first on the red points (``i + j`` even), then the black.

    Adding ``r_ij / D`` on one colour is the Gauss-Seidel update there, because points of one
    colour are not each other's neighbours in the 5-point stencil. ``reverse``: black, then red
    (the adjoint sweep, for a symmetric V cycle: krylov.py).
    """

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        weight = 1.0 / A.diagonal
        u = torch.zeros_like(f) if u is None else u.clone()  # the sweeps update it in place
        first, second = (1, 0) if self.reverse else (0, 1)
        for step in range(self.steps):
            if step > 0:
                residual = A.residual(u, f)
            u = _update_colour(u, residual, weight, colour=first)  # red, from the given residual
            u = _update_colour(u, A.residual(u, f), weight, colour=second)  # black, seeing the new red values
        return u


class ChebyshevPolynomial(Smoother):
    """Chebyshev semi-iteration on ``D^-1 A`` over ``[lambda_max / ratio, lambda_max]``, ``steps`` = degree.

    The residual after the smoother is ``p(A D^-1) r`` with ``p`` the scaled Chebyshev polynomial
    smallest on that interval: it damps the upper part of the spectrum (the oscillatory modes) and
    leaves the smooth ones to the coarse grid. ``lambda_max = 2`` bounds ``D^-1 A`` for any
    stencil with a dominant diagonal (Gershgorin). Degree 1 with ``ratio = 4`` is Jacobi, omega = 4/5.
    """

    def __init__(self, steps: int, ratio: float = ChebyshevPolynomialConfig.ratio, lambda_max: float = 2.0) -> None:
        super().__init__(steps)
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not ratio > 1:
            raise ValueError(f"ratio={ratio!r}: give a number > 1")
        self.lower, self.upper = lambda_max / ratio, lambda_max

    def smooth(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
               A: nn.Module) -> torch.Tensor:
        centre, half_width = (self.upper + self.lower) / 2, (self.upper - self.lower) / 2
        sigma = centre / half_width
        rho = 1.0 / sigma
        direction = residual * (1.0 / (centre * A.diagonal))
        u = _add(u, direction)  # a new tensor: later steps may update it in place
        for _ in range(1, self.steps):
            residual = A.residual(direction, residual)  # r - A d
            rho_next = 1.0 / (2.0 * sigma - rho)
            direction = direction * (rho_next * rho)
            _add_(direction, residual, 2.0 * rho_next / (half_width * A.diagonal))
            u = u + direction if torch.is_grad_enabled() else u.add_(direction)
            rho = rho_next
        return u


class DirectSolve(nn.Module):
    """The coarsest level's solver: ``u + A^-1 (f - A u)``, ``A^-1`` formed once by Cholesky.

    The dense matrix is read off the operator by applying it to every unit grid function, so it
    is exact for any linear, symmetric positive definite ``A``; meant for small grids (n <= 31).
    """

    def __init__(self, A: nn.Module, n: int, dtype: torch.dtype, device: torch.device | str) -> None:
        super().__init__()
        unit = torch.eye(n * n, dtype=dtype, device=device).view(n * n, 1, n, n)
        matrix = A(unit).view(n * n, n * n)
        self.register_buffer("inverse", torch.cholesky_inverse(torch.linalg.cholesky(matrix)))

    def forward(self, u: torch.Tensor | None, f: torch.Tensor, residual: torch.Tensor,
                A: nn.Module) -> torch.Tensor:
        flat = residual.reshape(-1, self.inverse.shape[0])
        return _add(u, (flat @ self.inverse).view_as(residual))  # the inverse is symmetric
