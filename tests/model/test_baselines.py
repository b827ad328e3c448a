"""The ResNet baselines: the parameter counts of the paper's comparison, shapes, stages, errors."""

import functools

import pytest
import torch

from mgnet_cli.cli.build import build_model, data_shape
from mgnet_cli.model.baselines import BasicBlock, PreActBlock, ResNet
from mgnet_cli.model.stems import imagenet_stem
from mgnet_cli.model.summary import count, summary


@pytest.mark.parametrize("model, dataset, expected", [
    ("resnet18", "cifar10", 11_173_962), ("resnet18", "cifar100", 11_220_132),
    ("preact_resnet18", "cifar10", 11_172_170), ("preact_resnet18", "cifar100", 11_218_340),
])
def test_parameter_counts_of_the_cifar_resnet18s(compose_config, model, dataset, expected):
    cfg = compose_config(f"model={model}", f"dataset={dataset}", tiny=False)
    shape = data_shape(cfg)
    assert count(build_model(cfg, shape["channels"], shape["num_classes"])) == expected


def test_resnet18_has_the_cifar_layout(compose_config):
    cfg = compose_config("model=resnet18", tiny=False)
    model = build_model(cfg, 3, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (1, 1)  # 3x3 stem, stride 1
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert sum(c.kernel_size == (1, 1) for c in convs) == 3  # projections into stages 2-4
    assert [len(stage) for stage in model.stages] == [2, 2, 2, 2]


@pytest.mark.parametrize("block", [BasicBlock, PreActBlock])
def test_stages_halve_the_resolution_and_the_head_classifies(block):
    model = ResNet(3, 5, block, layers=[1, 2, 1], widths=[4, 8, 16])
    facts = summary(model, 3, 16)
    assert [(row["resolution"], row["channels"], row["blocks"]) for row in facts["stages"]] == [
        (16, 4, 1), (8, 8, 2), (4, 16, 1)]
    rows = [facts["stem"], *facts["stages"], facts["head"]]
    assert sum(row["parameters"] for row in rows) == facts["parameters"] == count(model)
    assert sum(row["gflops"] for row in rows) == pytest.approx(facts["gflops_per_image"])
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_imagenet_stem_quarters_a_baseline_too():
    model = ResNet(3, 7, BasicBlock, layers=[1, 1], widths=[4, 8], stem=imagenet_stem)
    assert [row["resolution"] for row in summary(model, 3, 64)["stages"]] == [16, 8]
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_preact_block_projects_the_activated_input():
    """Where the shape changes, the shortcut reads BN-ReLU(x), so a negative x cannot leak through."""
    block = PreActBlock(2, 4, stride=2).eval()
    x = -torch.rand(1, 2, 8, 8) - 1.0  # ReLU(BN(x)) = 0 with BN's identity init in eval mode
    assert torch.count_nonzero(block(x)) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": [2, 2], "widths": [4]}, r"layers \[2, 2\], widths \[4\]"),
    ({"layers": [2, 0], "widths": [4, 8]}, r"layers \[2, 0\]"),
    ({"layers": [1], "widths": [-4]}, r"widths \[-4\]"),
])
def test_bad_shapes_are_refused(kwargs, message):
    """The constructor's own invariants (the config's keys and ranges are the schema's: tests/schema)."""
    with pytest.raises(ValueError, match=message):
        ResNet(3, 10, functools.partial(BasicBlock), **kwargs)
