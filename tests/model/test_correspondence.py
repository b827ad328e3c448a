"""docs/MGNET.md: with the resnet smoother, one smoothing step written for the residual,
``r^i = r^{i-1} - A * sigma(B * sigma(r^{i-1}))``, is a pre-activation basic block whose first
convolution is B and whose second is -A (the same A on every step of a level)."""

import pytest
import torch
from torch import nn

from mgnet_cli.model.baselines import PreActBlock
from mgnet_cli.model.layers import DataFeatureMap
from mgnet_cli.model.smoothers.resnet import ResNetSmoother

CHANNELS = 6


def randomise(module: nn.Module) -> None:
    """Random weights, and BatchNorms whose affine maps and running statistics are not identities."""
    torch.manual_seed(1)
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            nn.init.normal_(sub.weight, std=0.2)
        if isinstance(sub, nn.BatchNorm2d):
            sub.weight.data.uniform_(0.5, 1.5)
            sub.bias.data.uniform_(-0.5, 0.5)
            sub.running_mean.uniform_(-0.5, 0.5)
            sub.running_var.uniform_(0.5, 2.0)


def block_for_step(smoother: ResNetSmoother, A: nn.Conv2d, step: int) -> PreActBlock:
    """The pre-activation block with the smoother's step-``step`` weights: conv1 = B, conv2 = -A."""
    block = PreActBlock(CHANNELS, CHANNELS)
    with torch.no_grad():
        block.conv1.weight.copy_(smoother.B[step % len(smoother.B)].weight)
        block.conv2.weight.copy_(-A.weight)
    block.sigma1.load_state_dict(smoother.sigma_residual[step].state_dict())
    block.sigma2.load_state_dict(smoother.sigma_correction[step].state_dict())
    return block


@pytest.mark.parametrize("b_per_step", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_smoothing_steps_on_the_residual_are_preact_blocks(b_per_step, training):
    steps = 3
    smoother = ResNetSmoother(CHANNELS, CHANNELS, steps, b_per_step=b_per_step)
    A = DataFeatureMap(CHANNELS, CHANNELS)
    randomise(nn.ModuleList([smoother, A]))
    blocks = [block_for_step(smoother, A, step) for step in range(steps)]
    for module in (smoother, *blocks):
        module.train(training)  # in training mode BatchNorm normalises with the batch's statistics

    f, u = torch.randn(4, CHANNELS, 8, 8), torch.randn(4, CHANNELS, 8, 8)
    residual = f - A(u)
    with torch.no_grad():
        smoothed = smoother(u, f, residual, A)  # u^{steps}
        through_blocks = residual
        for block in blocks:
            through_blocks = block(through_blocks)  # r^{i} = r^{i-1} - A sigma(B sigma(r^{i-1}))
        expected = f - A(smoothed)
    assert (through_blocks - residual).abs().max() > 0.1  # the steps do change the residual
    torch.testing.assert_close(through_blocks, expected, rtol=1e-4, atol=1e-4)


def test_the_sign_of_the_second_convolution_matters():
    """With +A in place of -A the block no longer follows the smoother: the test above can fail."""
    smoother = ResNetSmoother(CHANNELS, CHANNELS, 1)
    A = DataFeatureMap(CHANNELS, CHANNELS)
    randomise(nn.ModuleList([smoother, A]))
    smoother.eval()
    block = block_for_step(smoother, A, 0).eval()
    with torch.no_grad():
        block.conv2.weight.neg_()
        f, u = torch.randn(2, CHANNELS, 8, 8), torch.randn(2, CHANNELS, 8, 8)
        residual = f - A(u)
        expected = f - A(smoother(u, f, residual, A))
        assert not torch.allclose(block(residual), expected, atol=1e-3)
