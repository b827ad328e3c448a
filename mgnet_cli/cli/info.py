"""``mgnet info``: the architecture ``mgnet train`` would build with the same overrides.

The table has a row for the stem, one per grid level (MgNet: resolution, u and f channels,
smoothing steps) or per stage (ResNet baselines: resolution, channels, blocks), and one for the
head (the classifier and anything else in no other row), each with its parameters and forward
GFLOPs per image; then the totals. ``info.format=json`` prints the same facts as JSON.
"""

import json
import logging
from typing import Any

from omegaconf import DictConfig

from mgnet_cli import schema
from mgnet_cli.cli.build import build_model, data_shape
from mgnet_cli.schema.commands import InfoFormat
from mgnet_cli.model.summary import summary

log = logging.getLogger(__name__)

LEVEL_COLUMNS = [("level", 5), ("resolution", 10), ("u ch", 6), ("f ch", 6), ("steps", 5)]
STAGE_COLUMNS = [("stage", 5), ("resolution", 10), ("channels", 8), ("blocks", 6)]
TOTALS = [("parameters", 12), ("GFLOPs", 8)]


def line(cells: list[str], columns: list[tuple[str, int]]) -> str:
    return " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns))


def totals(row: dict[str, Any]) -> list[str]:
    return [f"{row['parameters']:,}", f"{row['gflops']:.3f}"]


def pixels(resolution: int) -> str:
    return f"{resolution}x{resolution}"


def format_table(name: str, facts: dict[str, Any], shape: dict[str, int]) -> str:
    """The level (or stage) table, then the parameter and FLOP totals."""
    by_level = not facts["stages"]
    columns = (LEVEL_COLUMNS if by_level else STAGE_COLUMNS) + TOTALS
    lines = [f"{name} on {shape['channels']}x{shape['image_size']}x{shape['image_size']} images, "
             f"{shape['num_classes']} classes", line([title for title, _ in columns], columns)]
    stem = facts["stem"]
    if stem is not None:
        width = ["-", str(stem["channels"])] if by_level else [str(stem["channels"])]
        lines.append(line(["stem", pixels(stem["resolution"]), *width, "-", *totals(stem)], columns))
    for row in facts["levels"]:
        lines.append(line([str(row["level"]), pixels(row["resolution"]), str(row["channels_u"]),
                           str(row["channels_f"]), str(row["smoothing_steps"]), *totals(row)], columns))
    for row in facts["stages"]:
        lines.append(line([str(row["stage"]), pixels(row["resolution"]), str(row["channels"]),
                           str(row["blocks"]), *totals(row)], columns))
    blanks = [""] * (len(columns) - len(TOTALS) - 1)
    lines.append(line(["head", *blanks, *totals(facts["head"])], columns))
    lines.append(f"parameters: {facts['parameters']:,}")
    lines.append(f"forward: {facts['gflops_per_image']:.3f} GFLOPs per image")
    return "\n".join(lines)


def run(cfg: DictConfig) -> None:
    checked = schema.check(cfg, "info")
    shape = data_shape(cfg)
    model = build_model(cfg, shape["channels"], shape["num_classes"])
    facts = summary(model, shape["channels"], shape["image_size"])
    if checked.info.format == InfoFormat.json:
        print(json.dumps({"model": type(model).__name__, "data": shape, **facts}, indent=2))
    else:
        print(format_table(type(model).__name__, facts, shape))
