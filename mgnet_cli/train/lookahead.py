"""Lookahead (Zhang et al. 2019) as airbench94 runs it (``trainer.lookahead_steps``, ``.lookahead_alpha``).

Every ``steps`` optimizer steps the slow copy of the weights moves toward the trained ("fast")
ones, ``slow <- decay slow + (1 - decay) fast``, and training goes on *from the slow copy*
(``fast <- slow``); after the run's last step the weights are the slow copy. ``decay`` rises as
``alpha (step / total)^3``: no pull early, when the weights move far, and ``alpha`` at the end, where
the average of the last steps generalises better than their last point.

Not ``trainer.ema_decay``: an EMA is a second model evaluated beside the trained one, which never
sees it; lookahead resets the trained weights to the average, so it changes the path of training
(and the weights that are saved and evaluated). BatchNorm's running statistics are averaged too.
"""

import torch
from torch import nn


class Lookahead:
    """The slow weights of ``model`` (its floating-point state: parameters and BatchNorm's running
    statistics), pulled every ``steps`` of ``total`` steps."""

    def __init__(self, model: nn.Module, steps: int, alpha: float, total: int) -> None:
        self.model, self.steps, self.alpha, self.total = model, steps, alpha, max(total, 1)
        self.slow = {key: value.detach().clone() for key, value in model.state_dict().items()
                     if value.is_floating_point()}

    def decay(self, step: int) -> float:
        """The share the slow weights keep at global step ``step`` (counted from 1)."""
        return self.alpha * min(step / self.total, 1.0) ** 3

    @torch.no_grad()
    def __call__(self, step: int) -> None:
        """After optimizer step ``step`` (counted from 1): a pull every ``steps`` steps; at the last
        step the weights become the slow copy."""
        if step >= self.total:
            self.pull(1.0)
        elif step % self.steps == 0:
            self.pull(self.decay(step))

    def pull(self, decay: float) -> None:
        """``slow <- decay slow + (1 - decay) fast``, then ``fast <- slow``."""
        state = self.model.state_dict()
        for key, slow in self.slow.items():
            slow.lerp_(state[key], 1.0 - decay)
            state[key].copy_(slow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.slow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, slow in self.slow.items():
            slow.copy_(state[key])
