"""FLOP counting, the one that ``mgnet info`` and scripts/bench.py share: a convolution's
multiply-adds, its backward pass, and the summary's total equal to one image's forward pass."""

import functools

import pytest
import torch
from torch import nn

from mgnet_cli.model.mgnet import MgNet
from mgnet_cli.model.smoothers.resnet import ResNetSmoother
from mgnet_cli.model.summary import flop_count, image_flops, summary

CIN, COUT, SIZE = 3, 16, 32
CONV_FLOPS = 2 * CIN * COUT * 3 * 3 * SIZE * SIZE  # a multiply-add per tap, input and output channel, pixel


def test_a_convolution_counts_its_multiply_adds_and_keeps_the_mode():
    model = nn.Sequential(nn.Conv2d(CIN, COUT, 3, padding=1, bias=False)).train()
    assert image_flops(model, CIN, SIZE) == CONV_FLOPS
    assert model.training  # counted in evaluation mode, handed back as it came


@pytest.mark.parametrize("input_grad, passes", [(False, 2), (True, 3)])  # + grad of the weight (and input)
def test_a_training_step_counts_each_backward_product(input_grad, passes):
    conv = nn.Conv2d(CIN, COUT, 3, padding=1, bias=False)
    x = torch.randn(2, CIN, SIZE, SIZE, requires_grad=input_grad)
    assert flop_count(lambda: conv(x).sum().backward()).get_total_flops() == passes * 2 * CONV_FLOPS


def test_the_summary_total_is_one_images_forward_pass():
    model = MgNet(3, 10, [1, 1], 4, functools.partial(ResNetSmoother))
    forward = image_flops(model, 3, 16)
    assert forward > 0 and summary(model, 3, 16)["gflops_per_image"] == forward / 1e9
