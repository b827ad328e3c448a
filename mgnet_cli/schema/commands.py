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
    checkpoint: str = MISSING
    split: Split = Split.test
    device: str = "auto"
    batch_size: int = 512
    tta: TTA = TTA.none
    dataset_root: str | None = None
    output_dir: str | None = None

    def __post_init__(self) -> None:
        rules.text(self, "checkpoint")
        rules.device(self, "device")
        rules.count(self, "batch_size", maximum=2**20)
        rules.text(self, "dataset_root", optional=True)
        rules.text(self, "output_dir", optional=True)


@dataclass
class InfoOutputConfig:
    """``info.format``: how ``mgnet info`` prints the architecture (a table, or JSON)."""
    format: InfoFormat = InfoFormat.table


@dataclass
class InfoConfig(TrainConfig):
    """``mgnet info``: train's keys and groups (it takes the same overrides), and its format."""
    info: InfoOutputConfig = field(default_factory=InfoOutputConfig)
