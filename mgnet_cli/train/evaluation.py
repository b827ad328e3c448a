"""Evaluation on one split, the one loop of training and of ``mgnet eval``: loss, top-1/top-5,
per-class accuracy and the confusion matrix."""

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.train import TTA
from mgnet_cli.train.distributed import Distributed
from mgnet_cli.train.fast import autocast, memory_format


def predict(model: nn.Module, images: torch.Tensor, tta: str = TTA.none) -> torch.Tensor:
    """Logits (B, classes); ``tta="flip"`` averages them with those of the mirrored images;
    ``"flip_translate"`` weighs that average 1/2 and the same average of the images shifted by one
    pixel up-left and down-right (the border reflected) 1/4 each (airbench94's six views)."""
    if tta == TTA.none:
        return model(images)
    mirrored = 0.5 * (model(images) + model(images.flip(-1)))
    if tta == TTA.flip:
        return mirrored
    if tta == TTA.flip_translate:
        height, width = images.shape[-2:]
        padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
        shifted = (padded[..., :height, :width], padded[..., 2:, 2:])  # content moved down-right, up-left
        return 0.5 * mirrored + 0.25 * sum(predict(model, view, TTA.flip) for view in shifted)
    raise ValueError(f"tta={tta!r}: one of {', '.join(TTA)}")


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
    def metrics(self) -> dict[str, float]:
        """A training epoch's evaluation metrics: mean cross-entropy, top-1 and top-5 accuracy (fractions)."""
        return {"loss": self.loss, "acc": self.top1, "top5": self.top5}

    @property
    def count(self) -> int:
        """Images counted in the confusion matrix (``evaluate_split`` with ``num_classes``)."""
        return int(self.confusion.sum())


@torch.inference_mode()
def evaluate_split(
    model: nn.Module,
    batches: Iterable,
    num_classes: int | None = None,
    tta: str = TTA.none,
    *,
    limit: int | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
    world: Distributed | None = None,
) -> Evaluation:
    """The one evaluation loop: ``model`` in eval mode over (at most ``limit``) ``batches``, with no
    host sync until the end. ``num_classes`` given: the confusion matrix too (else an empty one).
    ``tta="flip"`` averages each image's logits with its mirror's (twice the work). In a
    data-parallel run each rank evaluates its part of the set and the sums are added over ``world``.
    """
    model.eval()
    totals: torch.Tensor | None = None  # [loss sum, top-5 hits, count], on the device
    confusion: torch.Tensor | None = None  # (C * C,) true x predicted counts, on the device
    for images, labels in itertools.islice(batches, limit):  # limit None: all
        with autocast(images.device, precision):
            logits = predict(model, memory_format(images, channels_last), tta).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        batch = torch.stack([F.cross_entropy(logits, labels, reduction="sum"),
                             (top == labels[:, None]).any(dim=1).sum(), labels.new_full((), len(labels))]).double()
        totals = batch if totals is None else totals + batch
        counts = (torch.bincount(labels * num_classes + top[:, 0], minlength=num_classes * num_classes)
                  if num_classes is not None else (top[:, 0] == labels).sum().reshape(1))  # top-1 hits: 1 x 1
        confusion = counts if confusion is None else confusion + counts
    return totalled(totals, confusion, num_classes, world)


def totalled(totals: torch.Tensor | None, confusion: torch.Tensor | None, num_classes: int | None,
             world: Distributed | None) -> Evaluation:
    """The sums of ``evaluate_split`` (over the ranks under DDP) as an Evaluation."""
    size = num_classes * num_classes if num_classes is not None else 1
    if world is not None and world.active:  # a rank's part may be empty
        device = world.device
        totals = world.sum(torch.zeros(3, dtype=torch.float64, device=device) if totals is None else totals)
        confusion = world.sum(torch.zeros(size, dtype=torch.int64, device=device) if confusion is None else confusion)
    loss, top5, count = totals.tolist() if totals is not None else (0, 0, 0)
    if count == 0:
        raise ConfigError("evaluation saw no batch: the evaluation set is empty")
    hits = confusion.cpu()
    if num_classes is None:
        return Evaluation(loss / count, int(hits[0]) / count, top5 / count, torch.zeros(0, 0, dtype=torch.int64))
    matrix = hits.view(num_classes, num_classes)
    return Evaluation(loss / count, int(matrix.diagonal().sum()) / count, top5 / count, matrix)
