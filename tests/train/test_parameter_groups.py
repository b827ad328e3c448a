"""The optimizer's parameter groups (``optimizer.norm_bias_decay``, ``optimizer.bias_lr_scale``):
which parameters land where, what one step does to each, and a resume that keeps them."""

import json

import pytest
import torch
from torch import nn

from mgnet_cli.cli.build import build_training
from mgnet_cli.schema.train import SGDConfig
from mgnet_cli.train.checkpoint import load_checkpoint
from mgnet_cli.train.optimizers import parameter_groups, split_parameters
from tests.conftest import TINY
from tests.helpers import cli


def test_defaults_make_one_group_of_every_parameter(compose_config):
    t = build_training(compose_config())
    (group,) = t.optimizer.param_groups
    assert len(group["params"]) == len(list(t.model.parameters()))
    assert (group["lr"], group["weight_decay"]) == (0.1, 5e-4)


def test_batchnorm_and_biases_are_split_from_the_weights(compose_config):
    t = build_training(compose_config("optimizer.norm_bias_decay=false", "optimizer.bias_lr_scale=64"))
    parts = split_parameters(t.model)
    norms = [module for module in t.model.modules() if isinstance(module, nn.BatchNorm2d)]
    assert {id(p) for p in parts["norms"]} == {id(norm.weight) for norm in norms}
    biases = {id(norm.bias) for norm in norms} | {id(t.model.head.bias)}  # MgNet's head is its one biased layer
    assert {id(p) for p in parts["biases"]} == biases
    assert all(p.dim() == 4 for p in parts["weights"][:-1]) and parts["weights"][-1] is t.model.head.weight
    weights, scales, shifts = t.optimizer.param_groups
    assert (weights["lr"], weights["weight_decay"]) == (0.1, 5e-4)
    assert (scales["lr"], scales["weight_decay"]) == (0.1, 0.0)
    assert (shifts["lr"], shifts["weight_decay"]) == (pytest.approx(6.4), 0.0)
    assert sum(len(group["params"]) for group in t.optimizer.param_groups) == len(list(t.model.parameters()))


def test_a_factor_scales_the_decay_and_the_bias_decay_step_stays_lr_times_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4))
    groups = parameter_groups(model, 0.2, 1e-3, SGDConfig(norm_bias_decay=0.5, bias_lr_scale=8.0))
    weights, scales, shifts = groups
    assert [len(group["params"]) for group in groups] == [1, 1, 2]  # conv weight; BN weight; conv and BN bias
    assert scales["weight_decay"] == pytest.approx(5e-4)
    assert shifts["lr"] * shifts["weight_decay"] == pytest.approx(0.2 * 5e-4)  # lr x decay of the scales


def test_one_sgd_step_moves_each_group_as_its_settings_say():
    """Zero gradients: the step is the decay alone, p <- p (1 - lr decay); biases with scale s and
    no decay do not move, weights shrink by lr x decay."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[1].bias.fill_(1.0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(parameter_groups(model, 0.5, 0.1, SGDConfig(norm_bias_decay=0.2, bias_lr_scale=4.0)))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    after = dict(model.named_parameters())
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.5 * 0.1))
    assert torch.allclose(after["1.weight"], before["1.weight"] * (1 - 0.5 * 0.1 * 0.2))
    for bias in ("0.bias", "1.bias"):  # lr 2.0, decay 0.005: the same 0.01 per step as the scales
        assert torch.allclose(after[bias], before[bias] * (1 - 0.5 * 0.1 * 0.2))


@pytest.mark.parametrize("bad, rule", [("optimizer.norm_bias_decay=-1", "norm_bias_decay=-1: give a finite number"),
                                       ("optimizer.bias_lr_scale=0", "bias_lr_scale=0.0: give a finite number")])
def test_out_of_range_grouping_is_refused_in_one_line(tmp_path, bad, rule):
    result = cli("train", *TINY, bad, cwd=tmp_path, check=False)
    assert result.returncode != 0 and rule in result.stderr and "Traceback" not in result.stderr


def test_adamw_takes_the_same_keys(compose_config):
    t = build_training(compose_config("optimizer=adamw", "optimizer.norm_bias_decay=false"))
    assert isinstance(t.optimizer, torch.optim.AdamW)
    assert [group["weight_decay"] for group in t.optimizer.param_groups] == [0.05, 0.0, 0.0]


def test_a_resumed_run_keeps_its_groups_and_ends_where_one_unbroken_run_does(tmp_path):
    grouped = ("optimizer.norm_bias_decay=false", "optimizer.bias_lr_scale=16", "trainer.deterministic=true",
               "trainer.threads=1")
    cli("train", *TINY, *grouped, "trainer.epochs=2", f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    cli("train", *TINY, *grouped, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'part'}", cwd=tmp_path)
    cli("train", f"resume={tmp_path / 'part'}", "trainer.epochs=2", cwd=tmp_path)
    whole, part = (load_checkpoint(tmp_path / name / "last.pt") for name in ("whole", "part"))
    assert len(part["optimizer"]["param_groups"]) == 3
    assert [g["lr"] for g in part["optimizer"]["param_groups"]] == [g["lr"] for g in whole["optimizer"]["param_groups"]]
    for name, tensor in whole["model"].items():
        assert torch.equal(part["model"][name], tensor), name
    history = [json.loads((tmp_path / name / "results.json").read_text())["history"] for name in ("whole", "part")]
    assert [epoch["test_loss"] for epoch in history[0]] == [epoch["test_loss"] for epoch in history[1]]
