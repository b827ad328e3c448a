"""MgNet as MGNET.md writes it: parameter counts, the equations, products computed once."""

import functools

import pytest
import torch
from torch import nn

from mgnet_cli.cli.build import build_model, data_shape
from mgnet_cli.model.layers import DataFeatureMap
from mgnet_cli.model.mgnet import MgNet
from mgnet_cli.model.smoothers.chebyshev import ChebyshevSmoother
from mgnet_cli.model.smoothers.densenet import DenseNetSmoother
from mgnet_cli.model.smoothers.resnet import ResNetSmoother
from mgnet_cli.model.summary import count

PAPER = ["model.channels=256", "model.smoothing_steps=[2,2,2,2]", "smoother=resnet"]


@pytest.mark.parametrize("dataset, b_per_step, expected", [
    ("cifar10", False, 8_278_794), ("cifar10", True, 10_638_090),
    ("cifar100", False, 8_301_924), ("cifar100", True, 10_661_220),
])
def test_parameter_counts_match_the_authors_model(compose_config, dataset, b_per_step, expected):
    cfg = compose_config(f"dataset={dataset}", *PAPER, f"smoother.b_per_step={b_per_step}", tiny=False)
    shape = data_shape(cfg)
    assert count(build_model(cfg, shape["channels"], shape["num_classes"])) == expected


def tiny(smoother=ResNetSmoother, steps=(2, 2, 2), channels=(4, 6, 8), **kwargs) -> MgNet:
    torch.manual_seed(0)
    return MgNet(3, 5, list(steps), list(channels), functools.partial(smoother, **kwargs))


def randomise_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def literal_forward(model: MgNet, images: torch.Tensor) -> torch.Tensor:
    """MGNET.md's backslash cycle written out literally, every product formed where it appears."""
    f = model.stem(images)
    levels = list(model.cycle.levels)
    u = torch.zeros(f.shape[0], levels[0].A.in_channels, *f.shape[2:])
    for index, level in enumerate(levels):
        smoother = level.smoother
        for step in range(smoother.steps):
            residual = f - level.A(u)
            B = smoother.B[step % len(smoother.B)]
            u = u + smoother.sigma_correction[step](B(smoother.sigma_residual[step](residual)))
        if index < len(levels) - 1:
            u_coarse = level.Pi(u)
            f = level.R(f - level.A(u)) + levels[index + 1].A(u_coarse)
            u = u_coarse
    return model.head(u.mean(dim=(2, 3)))


@pytest.mark.parametrize("b_per_step", [False, True])
def test_forward_equals_the_equations_of_the_paper(b_per_step):
    model = tiny(b_per_step=b_per_step).eval()
    randomise_batchnorm(model)
    images = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(images), literal_forward(model, images), rtol=1e-5, atol=1e-5)


def test_each_product_is_computed_once():
    """A literal version forms A^1 * 0 and every coarse A u^{l+1,0} twice: J products more."""
    steps = (2, 3, 1, 2)
    model = tiny(steps=steps, channels=(4, 4, 4, 4))
    calls = []
    for level in model.cycle.levels:
        level.A.register_forward_hook(lambda *args: calls.append(1))
    model(torch.randn(2, 3, 16, 16))
    levels = len(steps)
    literal = sum(steps) + 2 * (levels - 1)
    assert len(calls) == literal - levels


def test_restriction_halves_the_grid():
    model = tiny(steps=(1, 1, 1, 1), channels=(4, 4, 4, 4))
    sizes = []
    for level in model.cycle.levels:
        level.smoother.register_forward_hook(lambda module, args, out: sizes.append(tuple(out.shape[2:])))
    model(torch.randn(2, 3, 32, 32))
    assert sizes == [(32, 32), (16, 16), (8, 8), (4, 4)]


def identity_conv(conv: nn.Conv2d, scale: float) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        for channel in range(conv.out_channels):
            conv.weight[channel, channel, 1, 1] = scale


@pytest.mark.parametrize("omega", [0.3, 0.5, 1.5])
def test_linear_smoother_is_a_richardson_iteration(omega):
    """sigma = identity, A = I, B = omega I: every step scales the residual by (1 - omega)."""
    smoother = ResNetSmoother(3, 3, steps=4, b_per_step=False, norm_activation=lambda c: nn.Identity())
    A = DataFeatureMap(3, 3)
    identity_conv(A, 1.0)
    identity_conv(smoother.B[0], omega)
    f = torch.randn(2, 3, 8, 8)
    u = torch.randn(2, 3, 8, 8)
    residual = f - A(u)
    with torch.no_grad():
        smoothed = smoother(u, f, residual, A)
    ratio = (f - A(smoothed)).norm() / residual.norm()
    assert ratio.item() == pytest.approx(abs(1 - omega) ** 4, rel=1e-4)


def test_chebyshev_with_zero_k_is_the_resnet_smoother_and_k_learns():
    resnet, chebyshev = tiny(ResNetSmoother), tiny(ChebyshevSmoother)
    chebyshev.load_state_dict(resnet.state_dict(), strict=False)  # all but k, which starts at 0
    images = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(chebyshev(images), resnet(images))
    chebyshev(images).square().sum().backward()
    gradients = [level.smoother.k.grad for level in chebyshev.cycle.levels]
    assert all(g.shape == (1,) and g.abs().item() > 0 for g in gradients)
    with torch.no_grad():
        for level in chebyshev.cycle.levels:
            level.smoother.k.fill_(0.5)
    assert not torch.allclose(chebyshev(images), resnet(images))


def test_densenet_step_reads_all_earlier_residuals():
    model = tiny(DenseNetSmoother, steps=(3, 2, 1), channels=(4, 6, 8))
    smoother = model.cycle.levels[0].smoother
    assert [B.in_channels for B in smoother.B] == [4, 8, 12]
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_densenet_refuses_a_shared_b():
    with pytest.raises(ValueError, match="b_per_step"):
        tiny(DenseNetSmoother, b_per_step=False)


@pytest.mark.parametrize("channels, channels_f", [(8, None), ([4, 8, 16], None), (8, [2, 4, 6])])
def test_widths_per_level(channels, channels_f):
    model = MgNet(3, 10, [1, 1, 1], channels, functools.partial(ResNetSmoother), channels_f)
    widths_u = [channels] * 3 if isinstance(channels, int) else channels
    widths_f = widths_u if channels_f is None else channels_f
    assert [level.A.in_channels for level in model.cycle.levels] == widths_u
    assert [level.A.out_channels for level in model.cycle.levels] == widths_f
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": [4, 8]}, r"widths \[4, 8\]: .* \(3 levels\)"),
    ({"channels": 0}, "widths 0"),
    ({"smoothing_steps": []}, r"smoothing_steps \[\]"),
    ({"channels_f": [1, 2, 3, 4]}, r"widths \[1, 2, 3, 4\]"),
])
def test_bad_shapes_are_refused(kwargs, message):
    """The constructor's own invariants (the config's keys and ranges are the schema's: tests/schema)."""
    arguments = {"smoothing_steps": [1, 1, 1], "channels": 4, "smoother": ResNetSmoother} | kwargs
    with pytest.raises(ValueError, match=message):
        MgNet(3, 10, **arguments)
