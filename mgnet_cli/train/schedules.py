"""Learning-rate schedules as functions of the (fractional) epoch, applied every step via LambdaLR."""

import math
from dataclasses import dataclass


@dataclass
class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_epochs`` epochs.

    ``counted_from=1`` is the authors' code: ``lr = 0.1 * 0.1 ** (epoch // 50)`` with epochs
    numbered from 1, so the first decay starts epoch 50 (after 49 epochs at 0.1), the next epoch
    100, ...; ``counted_from=0`` decays after 50, 100, ... full epochs. Its defaults (the authors')
    are ``StepDecayConfig``'s, written there once (``scheduler=step``).
    """

    step_epochs: int
    gamma: float
    counted_from: int

    def __call__(self, epoch: float) -> float:
        """``epoch``: epochs done so far (fractional, 0 at the first step)."""
        return self.gamma ** math.floor((epoch + self.counted_from) / self.step_epochs + 1e-9)


@dataclass
class WarmupCosine:
    """Linear warm-up from ~0 over ``warmup_epochs``, then cosine decay to ``final_fraction``. Its
    defaults are ``WarmupCosineConfig``'s, written there once (``scheduler=cosine``; a learned solver
    part's ``learning.scheduler``)."""

    epochs: int
    warmup_epochs: float
    final_fraction: float

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1e-3) / (self.warmup_epochs + 1e-3)
        span = max(self.epochs - self.warmup_epochs, 1e-9)
        progress = min((epoch - self.warmup_epochs) / span, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_fraction + (1.0 - self.final_fraction) * cosine


@dataclass
class Triangular:
    """Linear from ``start_fraction`` up to 1 at ``peak_at`` of the run, then linear down to
    ``final_fraction`` at its end; constant after the end. Its defaults (airbench94's) are
    ``TriangularConfig``'s, written there once (``scheduler=triangular``)."""

    epochs: int
    peak_at: float
    start_fraction: float
    final_fraction: float

    def __call__(self, epoch: float) -> float:
        progress = min(max(epoch / self.epochs, 0.0), 1.0)
        if progress < self.peak_at:
            return self.start_fraction + (1.0 - self.start_fraction) * progress / self.peak_at
        return 1.0 + (self.final_fraction - 1.0) * (progress - self.peak_at) / (1.0 - self.peak_at)


@dataclass
class Constant:
    """No schedule: the optimizer's learning rate throughout."""

    def __call__(self, epoch: float) -> float:
        return 1.0
