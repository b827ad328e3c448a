"""A model's full evaluation on one split: loss, top-1/top-5, per-class accuracy, confusion matrix."""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def predict(model: nn.Module, images: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Logits (B, classes); ``tta="flip"`` averages them with those of the mirrored images."""
    if tta == "none":
        return model(images)
    if tta == "flip":
        return 0.5 * (model(images) + model(images.flip(-1)))
    raise ValueError(f"tta={tta!r}: use none or flip")


@dataclass(frozen=True)
class Evaluation:
    """Counts over a split; ``confusion[true, predicted]`` (classes x classes)."""

    loss: float
    top1: float
    top5: float
    confusion: torch.Tensor  # (C, C) int64

    @property
    def per_class(self) -> list[float]:
        """Recall of each class: correct / images of that class (nan for an absent class)."""
        totals = self.confusion.sum(dim=1).double()
        return (self.confusion.diagonal().double() / totals).tolist()

    @property
    def count(self) -> int:
        return int(self.confusion.sum())


@torch.inference_mode()
def evaluate_split(model: nn.Module, batches: Iterable, num_classes: int, tta: str = "none") -> Evaluation:
    """Runs ``model`` in eval mode over ``batches`` of (images, labels) on its device."""
    model.eval()
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64)
    loss_sum, top5_hits = 0.0, 0
    for images, labels in batches:
        logits = predict(model, images, tta).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        top = logits.topk(min(5, num_classes), dim=1).indices
        top5_hits += int((top == labels[:, None]).any(dim=1).sum())
        pairs = (labels * num_classes + top[:, 0]).cpu()
        confusion += torch.bincount(pairs, minlength=num_classes * num_classes)
    confusion = confusion.view(num_classes, num_classes)
    count = int(confusion.sum())
    if count == 0:
        raise ValueError("the split has no images")
    return Evaluation(loss_sum / count, int(confusion.diagonal().sum()) / count, top5_hits / count, confusion)
