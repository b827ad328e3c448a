"""Schemas of the keys of ``mgnet eval`` and ``mgnet info`` (``configs/eval.yaml``, ``info.yaml``)."""

from dataclasses import dataclass, field

from omegaconf import MISSING

from mgnet_cli.schema import rules
from mgnet_cli.schema.train import TTA, TrainConfig


class Split(rules.Choice):
    """What ``mgnet eval`` scores: the test set, the held-out validation set or the training set."""
    test = "test"
    val = "val"
    train = "train"


class InfoFormat(rules.Choice):
    table = "table"
    json = "json"


@dataclass
class EvalConfig:
    """``mgnet eval checkpoint=<path>``'s keys."""
    checkpoint: str = rules.setting(MISSING, "required: a checkpoint file (best.pt, last.pt) or a run "
                                             "folder (its best.pt)")
    split: Split = rules.setting(Split.test, "the split scored (train is evaluated without augmentation)")
    device: str = rules.setting("auto", rules.DEVICE_HELP)
    batch_size: int = rules.setting(512, "images per evaluation batch")
    tta: TTA = rules.setting(TTA.none, "test-time augmentation: flip averages the logits of each image "
                                       "and its mirror; flip_translate also those of it shifted by a pixel")
    dataset_root: str | None = rules.setting(None, "where the data set lives now, if not where the run "
                                                   "read it (the run recorded that folder)")
    output_dir: str | None = rules.setting(None, "where the results go; null: <checkpoint folder>/eval")

    def __post_init__(self) -> None:
        rules.text(self, "checkpoint")
        rules.device(self, "device")
        rules.count(self, "batch_size", maximum=rules.LARGEST_BATCH)
        rules.text(self, "dataset_root", optional=True)
        rules.text(self, "output_dir", optional=True)


@dataclass
class InfoOutputConfig:
    """``info``: how ``mgnet info`` prints the architecture."""
    format: InfoFormat = rules.setting(InfoFormat.table, "a table of the levels, or the same as JSON")


@dataclass
class InfoConfig(TrainConfig):
    """``mgnet info``: train's keys and groups (it takes the same overrides), and its format."""
    info: InfoOutputConfig = field(default_factory=InfoOutputConfig)
