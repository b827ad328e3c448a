"""``mgnet info``: the architecture ``mgnet train`` would build with the same overrides.

The table has a row for the stem, one per grid level (MgNet: resolution, u and f channels,
smoothing steps) or per stage (ResNet baselines: resolution, channels, blocks), and one for the
head (the classifier and anything else in no other row), each with its parameters and forward
GFLOPs per image; then the totals. ``info.format=json`` prints the same facts as JSON.
"""

import json
import logging

from omegaconf import DictConfig

from mgnet_cli import schema
from mgnet_cli.cli.build import build_model, data_shape
from mgnet_cli.schema.commands import InfoFormat
from mgnet_cli.model.summary import summary
from mgnet_cli.report.text import format_table

log = logging.getLogger(__name__)

def run(cfg: DictConfig) -> None:
    checked = schema.check(cfg, "info")
    shape = data_shape(cfg)
    model = build_model(cfg, shape["channels"], shape["num_classes"])
    facts = summary(model, shape["channels"], shape["image_size"])
    if checked.info.format == InfoFormat.json:
        print(json.dumps({"model": type(model).__name__, "data": shape, **facts}, indent=2))
    else:
        print(format_table(type(model).__name__, facts, shape))
