"""``mgnet eval checkpoint=<path>``: a checkpoint's loss, top-1/top-5, per-class accuracy and
confusion matrix on one split, printed and saved as JSON and a PNG heat map."""

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from mgnet_cli import schema
from mgnet_cli.cli.build import build_data, build_model
from mgnet_cli.cli.resume import saved_config
from mgnet_cli.data.files import naming
from mgnet_cli.errors import ConfigError, DataError
from mgnet_cli.schema.commands import EvalConfig
from mgnet_cli.schema.train import TTA
from mgnet_cli.report.plots import confusion_heatmap
from mgnet_cli.report.text import as_json, format_evaluation
from mgnet_cli.storage import write_json_atomic
from mgnet_cli.train.checkpoint import load_checkpoint, load_weights
from mgnet_cli.train.evaluation import evaluate_split
from mgnet_cli.device import resolve_device

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    options: EvalConfig = schema.check(cfg, "eval")
    split, tta = options.split.value, options.tta.value
    path = Path(options.checkpoint).expanduser()
    path = path / "best.pt" if path.is_dir() else path
    device = resolve_device(options.device, "device")
    checkpoint = load_checkpoint(path)
    out = output_folder(options.output_dir, path)
    run_cfg = saved_config(checkpoint, path)  # rebuilt on the schemas: the file picks no code
    if options.dataset_root:
        run_cfg.dataset.root = options.dataset_root
    checked = schema.check(run_cfg, "train")
    try:  # the data folder the run recorded, unless dataset_root says where it is now
        data, _ = build_data(run_cfg, checked)
    except DataError as error:
        raise naming("dataset_root", error) from None
    model = build_model(run_cfg, data.in_channels, data.num_classes)
    load_weights(model, checkpoint["model"], path)
    model.to(device)
    batches = data.batches(options.batch_size, options.batch_size, device, None, checked.seed)
    source = batches.train if split == "train" else batches.evaluations.get(split)
    if source is None:
        raise ConfigError(f"split={split}: this run held out no validation set (dataset.val_size=0)")
    result = evaluate_split(model, source, data.num_classes, tta)
    root = out if options.output_dir else path.parent  # no link followed below the run folder
    stem = f"{path.stem}_{split}" + (f"_tta-{tta}" if tta != TTA.none else "")
    write_json_atomic(out / f"{stem}.json", as_json(result, data.classes, path, split, tta), root)
    confusion_heatmap(result.confusion.numpy(), data.classes,
                      f"{path.name} on {data.name} {split}: top-1 {result.top1:.2%}", out / f"{stem}_confusion.png",
                      root)
    print(format_evaluation(result, data.classes, f"{path} on {data.name} {split} ({result.count:,} images)"))
    print(f"saved {out / (stem + '.json')} and {out / (stem + '_confusion.png')}")
    return result.top1


def output_folder(output_dir: str | None, checkpoint: Path) -> Path:
    """Where the report goes (``<checkpoint folder>/eval`` by default), checked before anything
    is evaluated: the nearest existing folder on its path must be a writable folder."""
    out = Path(output_dir).expanduser() if output_dir else checkpoint.parent / "eval"
    existing = out.absolute()
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if existing.exists() and not existing.is_dir() else "is not writable"
        given = f"output_dir={output_dir}" if output_dir else f"the default output folder {out}"
        raise ConfigError(f"{given}: {existing} {what}; give output_dir=<a writable folder>")
    return out
