"""Config -> objects: the one wiring of a training run (``build_training``) and its pieces."""

import random
from dataclasses import fields
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from mgnet_cli import memory, schema
from mgnet_cli.data.splits import ImageData, split_validation
from mgnet_cli.device import resolve_device
from mgnet_cli.errors import ConfigError, MgnetError
from mgnet_cli.model.mgnet import MgNet
from mgnet_cli.model.summary import summary
from mgnet_cli.model.whitening import SAMPLE_IMAGES, freeze_stem, whiten_stem
from mgnet_cli.schema.data import AugmentationConfig
from mgnet_cli.schema.model import StemInit, StemInitConfig
from mgnet_cli.schema.train import TrainConfig
from mgnet_cli.train.distributed import Distributed, check_sync_bn
from mgnet_cli.train.fast import Placement, placement
from mgnet_cli.train.loop import Training
from mgnet_cli.train.optimizers import GROUPING_KEYS, build_optimizer

DATASET_SETTINGS = ("val_size", "augmentation", "shape")  # dataset keys read here, not by the loader
STEM_KEYS = tuple(field.name for field in fields(StemInitConfig))  # model keys read here, not by the model


def build_training(cfg: DictConfig, world: Distributed | None = None,
                   checked: TrainConfig | None = None) -> Training:
    """The config checked, seeded (deterministic kernels if asked), then its data, model, optimizer,
    schedule and batches: the set-up ``mgnet train``, the benchmarks and the tests share.
    ``world``: this process's rank under torchrun (its device and its part of every batch);
    ``checked``: ``schema.check(cfg, "train")`` when the caller has it already (checked once)."""
    checked = checked or schema.check(cfg, "train")
    trainer = checked.trainer
    place = placed(checked) if world is None else placement(world.device, trainer.precision)  # cuda:LOCAL_RANK
    seed_everything(checked.seed, trainer.deterministic)
    refuse_if_too_large(count_on_meta(cfg), place.device.type == "cpu")
    data, augmentation = build_data(cfg, checked)
    model = build_model(cfg, data.in_channels, data.num_classes)
    start_stem(model, checked.model, data)
    if place.device.type == "cpu":
        refuse_activations_too_large(model, data_shape(cfg), trainer.batch_size)
    optimizer_node = {key: value for key, value in OmegaConf.to_container(cfg.optimizer, resolve=True).items()
                      if key not in GROUPING_KEYS}
    optimizer = build_optimizer(instantiate(optimizer_node), model, checked.optimizer)
    batches = data.batches(trainer.batch_size, trainer.eval_batch_size, place.device, augmentation,
                           checked.seed, channels_last=trainer.channels_last,
                           shard=world.shard if world is not None else (0, 1))
    return Training(trainer, place, model, optimizer, instantiate(cfg.scheduler), batches,
                    tta=checked.eval.tta.value, data=data, augmentation=augmentation)


def placed(checked: TrainConfig) -> Placement:
    """The checked config's device and precision, resolved (``auto``) and checked against each other
    and ``trainer.sync_bn``."""
    device = resolve_device(checked.trainer.device)
    check_sync_bn(checked.trainer.sync_bn, device)
    return placement(device, checked.trainer.precision)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and torch (all devices): each sweep job starts from its own seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic


def build_data(cfg: DictConfig, checked: TrainConfig) -> tuple[Any, AugmentationConfig]:
    """Loads ``cfg.dataset`` (its ``_target_`` loader) and splits off the validation set, as the
    checked config (``schema.check(cfg, "train")``) says.

    The data is an ``ImageData`` or a file-backed set that quacks like one (``FolderData``), which
    brings its own validation folder and cannot be split.
    """
    loader_cfg = {key: value for key, value in cfg.dataset.items() if key not in DATASET_SETTINGS}
    if "root" in loader_cfg:
        loader_cfg["root"] = Path(str(loader_cfg["root"])).expanduser()
    data = instantiate(loader_cfg)
    check_shape(cfg, data)
    batch_size, val_size = checked.trainer.batch_size, checked.dataset.val_size
    if batch_size > len(data.train):
        raise ConfigError(f"trainer.batch_size={batch_size} is larger than the {len(data.train):,} "
                          f"training images of {data.name}: use at most {len(data.train)}")
    if isinstance(data, ImageData):  # image folders bring their val/ folder (their schema keeps val_size 0)
        data = split_validation(data, val_size, checked.seed)
    return data, checked.dataset.augmentation


def data_shape(cfg: DictConfig) -> dict[str, int]:
    """``dataset.shape``: channels, image_size and num_classes, known without loading the data."""
    shape = OmegaConf.to_container(cfg.dataset.shape, resolve=True)
    return {key: int(shape[key]) for key in ("channels", "image_size", "num_classes")}


def check_shape(cfg: DictConfig, data: ImageData) -> None:
    """The loaded data must match what ``dataset.shape`` promised (``mgnet info`` relies on it)."""
    expected = data_shape(cfg)
    found = {"channels": data.in_channels, "image_size": data.image_size,
             "num_classes": data.num_classes}
    if expected != found:
        raise ConfigError(f"dataset.shape={expected} but the loaded data has {found}: "
                          "fix dataset.shape in the dataset's YAML")


def instantiate(config: Any, **kwargs: Any) -> Any:
    """The object a config node (checked by its schema) names, built with what the schema knows:
    the nested nodes the schemas name code at (``schema.code_nodes``: a stem, a block, the smoother)
    built first, each alone, then the node itself, non-recursively; the user's errors (MgnetError)
    come through unwrapped."""
    node = config if isinstance(config, dict) else OmegaConf.to_container(config, resolve=True)
    nested = {key: instantiate(value) for key, value in node.items()
              if key in schema.code_nodes() and isinstance(value, dict)}
    own = {key: value for key, value in node.items() if key not in nested}
    try:
        return hydra.utils.instantiate(own, _recursive_=False, _convert_="all", **nested, **kwargs)
    except hydra.errors.InstantiationException as error:
        if isinstance(error.__cause__, MgnetError):
            raise error.__cause__ from None
        raise


def model_node(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.model`` without the keys read once the data is loaded (``start_stem``)."""
    node = OmegaConf.to_container(cfg.model, resolve=True)
    return {key: value for key, value in node.items() if key not in STEM_KEYS}


def start_stem(model: nn.Module, settings: StemInitConfig, data: Any) -> None:
    """``model.stem_init`` and ``model.stem_frozen``: the stem whitened from the first training
    images (as the training batches normalise them) and/or frozen, before the first step."""
    if settings.stem_init == StemInit.whiten:
        if not isinstance(data, ImageData):
            raise ConfigError("model.stem_init=whiten needs a data set held in memory (cifar10, cifar100, "
                              "mnist, fashion_mnist, synthetic): image folders stream their files")
        images = data.train.images[:SAMPLE_IMAGES].float() / 255
        mean, std = (torch.tensor(values).view(1, -1, 1, 1) for values in (data.mean, data.std))
        whiten_stem(model, (images - mean) / std, frozen=settings.stem_frozen)
    elif settings.stem_frozen:
        freeze_stem(model)


def build_model(cfg: DictConfig, in_channels: int, num_classes: int) -> nn.Module:
    """Instantiates ``cfg.model`` (MgNet reads ``cfg.smoother`` through its ``smoother`` key) and
    checks that its levels fit the data set's images (``dataset.shape``)."""
    model = instantiate(model_node(cfg), in_channels=in_channels, num_classes=num_classes)
    if isinstance(model, MgNet):
        model.resolutions(in_channels, data_shape(cfg)["image_size"])
    return model


def count_on_meta(cfg: DictConfig) -> int:
    """The parameters of the model ``cfg`` describes, built on the meta device (no memory)."""
    shape = data_shape(cfg)
    with torch.device("meta"):
        model = instantiate(model_node(cfg), in_channels=shape["channels"], num_classes=shape["num_classes"])
    return sum(parameter.numel() for parameter in model.parameters())


def refuse_if_too_large(parameters: int, on_cpu: bool, activations: int = 0, batch_size: int = 0) -> None:
    """A model this process cannot hold to train is refused in one line before it is built
    (``mgnet_cli.memory``): on the CPU its weights, gradients and momentum and ``activations``
    bytes for a batch; for a GPU the weights, which the host builds before moving them."""
    activations = activations if on_cpu else 0
    weights = memory.weight_bytes(parameters, memory.COPIES_OF_WEIGHTS if on_cpu else 1)
    what = f" ({parameters:,} parameters: {memory.size(weights)}"
    what += " with their gradients and momentum" if on_cpu else " of weights, built on the host"
    what += f"; activations for a batch of {batch_size}: {memory.size(activations)})" if activations else ")"
    if reason := memory.shortfall(weights + activations, what):
        smaller_batch = ", or a smaller trainer.batch_size" if activations else ""
        raise ConfigError(f"the model {reason}: use fewer or narrower levels{smaller_batch}")


def refuse_activations_too_large(model: nn.Module, shape: dict[str, int], batch_size: int) -> None:
    """``refuse_if_too_large`` with a batch's activations, their shapes read from a forward pass of
    one image (the weights are known to fit: checked before building)."""
    facts = summary(model, shape["channels"], shape["image_size"], flops=False)
    refuse_if_too_large(facts["parameters"], True, memory.activation_bytes(facts, batch_size), batch_size)


def trains_on_cpu(device: str) -> bool:
    """Whether ``trainer.device`` (unresolved: ``auto``, ``cpu``, ``cuda:N``) means the CPU here."""
    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())


def plain(cfg: DictConfig, resolve: bool = True) -> dict[str, Any]:
    """The config as plain data, choices as strings (for checkpoints and results)."""
    return OmegaConf.to_container(cfg, resolve=resolve, throw_on_missing=False, enum_to_str=True)


def flat_hyperparameters(cfg: DictConfig, choices: dict[str, str]) -> dict[str, int | float | str | bool]:
    """The config as ``{"model.channels": 64, "smoother": "chebyshev", ...}`` for TensorBoard's
    HParams tab: group choices plus every leaf (lists as strings), without paths and Hydra keys."""
    flat: dict[str, int | float | str | bool] = {
        group: str(option) for group, option in choices.items()
        if option is not None and not group.startswith("hydra")
    }

    def visit(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_") and key not in ("root", "resume"):
                    visit(f"{prefix}{key}.", value)
        elif node is not None:
            flat[prefix[:-1]] = node if isinstance(node, (int, float, str, bool)) else str(node)

    visit("", plain(cfg))
    return flat
