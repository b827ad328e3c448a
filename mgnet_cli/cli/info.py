"""``mgnet info``: the architecture ``mgnet train`` would build with the same overrides.

The table has a row for the stem, one per grid level (MgNet: resolution, u and f channels,
smoothing steps) or per stage (ResNet baselines: resolution, channels, blocks), and one for the
head (the classifier and anything else in no other row), each with its parameters and forward
GFLOPs per image; then the totals. ``info.format=json`` prints the same facts as JSON.
"""

import json
import logging

import torch
from omegaconf import DictConfig

from mgnet_cli import memory, schema
from mgnet_cli.cli.build import build_model, data_shape, refuse_if_too_large, trains_on_cpu
from mgnet_cli.schema.commands import InfoFormat
from mgnet_cli.model.summary import summary
from mgnet_cli.report.text import format_table

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> None:
    """Prints the model's table (or JSON), built on the meta device: a model of any size is described
    without allocating it, and one this process could not train is refused with its size."""
    checked = schema.check(cfg, "info")
    shape = data_shape(cfg)
    with torch.device("meta"):
        model = build_model(cfg, shape["channels"], shape["num_classes"])
        facts = summary(model, shape["channels"], shape["image_size"])
    batch_size = checked.trainer.batch_size
    refuse_if_too_large(facts["parameters"], trains_on_cpu(str(checked.trainer.device)),
                        memory.activation_bytes(facts, batch_size), batch_size)
    if checked.info.format == InfoFormat.json:
        print(json.dumps({"model": type(model).__name__, "data": shape, **facts}, indent=2))
    else:
        print(format_table(type(model).__name__, facts, shape))
