"""Stems: the CIFAR stem keeps MgNet as it was; the ImageNet stem puts level 1 at 56x56."""

import functools

import torch

from mgnet_cli.model.mgnet import MgNet
from mgnet_cli.model.smoothers.resnet import ResNetSmoother
from mgnet_cli.model.stems import cifar_stem, imagenet_stem
from mgnet_cli.model.summary import summary


def tiny_mgnet(**kwargs) -> MgNet:
    return MgNet(3, 10, [1, 1, 1, 1], 4, functools.partial(ResNetSmoother), **kwargs)


def test_default_stem_is_sigma_of_a_3x3_conv_with_the_old_parameter_names():
    model = tiny_mgnet()
    assert [name for name in model.state_dict() if name.startswith("stem.")] == [
        "stem.0.weight", "stem.1.0.weight", "stem.1.0.bias", "stem.1.0.running_mean",
        "stem.1.0.running_var", "stem.1.0.num_batches_tracked"]  # checkpoints of earlier runs load
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)


def test_stem_output_sizes():
    images = torch.randn(2, 3, 224, 224)
    assert cifar_stem(3, 8)(images).shape == (2, 8, 224, 224)
    assert imagenet_stem(3, 8)(images).shape == (2, 8, 56, 56)
    assert imagenet_stem(3, 8)(torch.randn(1, 3, 64, 64)).shape == (1, 8, 16, 16)
    bare = cifar_stem(3, 8, norm_activation=False)
    assert isinstance(bare, torch.nn.Conv2d) and bare(images[:1, :, :8, :8]).min() < 0


def test_imagenet_stem_runs_the_levels_at_56_28_14_7():
    facts = summary(tiny_mgnet(stem=imagenet_stem), 3, 224)
    assert facts["stem"]["resolution"] == 56
    assert [row["resolution"] for row in facts["levels"]] == [56, 28, 14, 7]
    assert facts["stem"]["parameters"] == 7 * 7 * 3 * 4 + 2 * 4  # conv + BatchNorm
