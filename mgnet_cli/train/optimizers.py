"""The optimizer's parameter groups: weights, normalisation weights and biases, each with its own
weight decay and learning rate (``optimizer.norm_bias_decay``, ``optimizer.bias_lr_scale``).

Fast recipes (airbench94, the "bag of tricks" ResNets) take weight decay off BatchNorm's scales and
shifts and off biases, which decay only shrinks toward a scale the next BatchNorm undoes, and some
give biases a larger learning rate. The defaults (decay on everything, one learning rate) make one
group, the optimizer the authors' code builds, so checkpoints of earlier runs resume as they were.
"""

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from mgnet_cli.schema.train import ParameterGroupsConfig

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)  # BatchNorm*, SyncBatchNorm, Instance*, ...
GROUPING_KEYS = tuple(field.name for field in fields(ParameterGroupsConfig))  # read here, not by torch.optim


def split_parameters(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The parameters as ``weights`` (convolutions, linear maps, learned scalars), ``norms``
    (normalisation layers' scales) and ``biases`` (every bias, normalisation shifts too), each in
    the model's order; a parameter shared between modules is counted once. Frozen ones are kept
    (they get no gradient, so no step): freezing does not change what a checkpoint holds."""
    parts: dict[str, list[nn.Parameter]] = {"weights": [], "norms": [], "biases": []}
    for path, parameter in model.named_parameters():  # each parameter once, under its first module
        owner, _, name = path.rpartition(".")
        norm = isinstance(model.get_submodule(owner), NORMS)
        parts["biases" if name == "bias" else "norms" if norm else "weights"].append(parameter)
    return parts


def parameter_groups(model: nn.Module, lr: float, weight_decay: float,
                     grouping: ParameterGroupsConfig) -> list[dict[str, Any]] | list[nn.Parameter]:
    """The groups ``torch.optim`` takes: the weights first (``lr``, ``weight_decay``: the group
    whose learning rate the log shows), then normalisation scales (decay x ``norm_bias_decay``)
    and biases (lr x ``bias_lr_scale``, the decay per step, lr x decay, as for the scales); empty
    groups left out. At the defaults, the model's parameters as one group."""
    factor, scale = grouping.decay_factor(), float(grouping.bias_lr_scale)
    if factor == 1.0 and scale == 1.0:
        return list(model.parameters())
    parts = split_parameters(model)
    groups = [{"params": parts["weights"], "lr": lr, "weight_decay": weight_decay},
              {"params": parts["norms"], "lr": lr, "weight_decay": weight_decay * factor},
              {"params": parts["biases"], "lr": lr * scale, "weight_decay": weight_decay * factor / scale}]
    return [group for group in groups if group["params"]]


def build_optimizer(make: Callable[..., torch.optim.Optimizer], model: nn.Module,
                    settings: Any) -> torch.optim.Optimizer:
    """``make(parameters)`` (the ``optimizer`` option partially applied, ``GROUPING_KEYS`` left
    out) on ``model``'s parameter groups, as the checked option ``settings`` (an ``SGDConfig``,
    ``AdamWConfig``: lr, weight_decay and the grouping keys) say."""
    return make(parameter_groups(model, settings.lr, settings.weight_decay, settings))
