"""``mgnet info``: the architecture ``mgnet train`` would build with the same overrides."""

import json
import logging

from omegaconf import DictConfig

from mgnet_cli.cli.build import build_model, data_shape
from mgnet_cli.errors import ConfigError
from mgnet_cli.model.summary import summary

log = logging.getLogger(__name__)


def format_table(name: str, facts: dict, shape: dict) -> str:
    header = f"{'level':>5} {'resolution':>10} {'u ch':>6} {'f ch':>6} {'steps':>5} {'parameters':>12}"
    lines = [f"{name} on {shape['channels']}x{shape['image_size']}x{shape['image_size']} images, "
             f"{shape['num_classes']} classes", header]
    for row in facts["levels"]:
        lines.append(f"{row['level']:>5} {row['resolution']:>7}x{row['resolution']:<2} "
                     f"{row['channels_u']:>6} {row['channels_f']:>6} {row['smoothing_steps']:>5} "
                     f"{row['parameters']:>12,}")
    lines.append(f"parameters: {facts['parameters']:,}")
    lines.append(f"forward: {facts['gflops_per_image']:.3f} GFLOPs per image")
    return "\n".join(lines)


def run(cfg: DictConfig) -> None:
    shape = data_shape(cfg)
    model = build_model(cfg, shape["channels"], shape["num_classes"])
    facts = summary(model, shape["channels"], shape["image_size"])
    output_format = cfg.info.format
    if output_format == "json":
        print(json.dumps({"model": type(model).__name__, "data": shape, **facts}, indent=2))
    elif output_format == "table":
        print(format_table(type(model).__name__, facts, shape))
    else:
        raise ConfigError(f"info.format={output_format!r}: use table or json")
