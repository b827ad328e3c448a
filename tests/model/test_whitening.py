"""The whitening-initialised stem (``model.stem_init=whiten``, ``model.stem_frozen``): its filters
whiten the patches they were computed from, on MgNet's and the baselines' stems, and training
leaves a frozen one as it was."""

import pytest
import torch
from torch import nn

from mgnet_cli.cli.build import build_training
from mgnet_cli.model.baselines import BasicBlock, ResNet
from mgnet_cli.model.mgnet import MgNet
from mgnet_cli.model.stems import imagenet_stem
from mgnet_cli.model.whitening import EPS, patches, stem_convolution, whiten_stem, whitening_filters
from mgnet_cli.train.epoch import TrainStep


def smooth_images(count: int = 200, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Images with strongly correlated neighbouring pixels and channels (blurred, mixed noise), as
    natural images are: their patch covariance has eigenvalues spread over decades."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 3, size + 4, size + 4, generator=generator)
    blurred = nn.functional.avg_pool2d(noise, 5, stride=1)  # (count, 3, size, size)
    mixing = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.3], [0.0, 0.0, 0.2]])
    return 5 * torch.einsum("dc,nchw->ndhw", mixing, blurred)  # about unit variance, as normalised images


def output_covariance(convolution: nn.Conv2d, images: torch.Tensor) -> torch.Tensor:
    """Covariance (channels x channels) of the convolution's outputs at every valid position: the
    filters applied to each patch."""
    rows = patches(images, tuple(convolution.kernel_size)).double()
    outputs = rows @ convolution.weight.detach().double().flatten(1).T
    outputs = outputs - outputs.mean(dim=0)
    return outputs.T @ outputs / len(outputs)


def test_the_whitened_channels_have_near_identity_covariance_on_the_patches():
    images = smooth_images()
    model = MgNet(3, 10, smoothing_steps=[1, 1], channels=32)
    assert whiten_stem(model, images) == 32  # 16 eigenvectors, +/- each
    _, eigenvalues = whitening_filters(images, (3, 3), 16)
    covariance = output_covariance(stem_convolution(model), images)
    expected = torch.diag(eigenvalues.double() / (eigenvalues.double() + EPS))
    assert torch.allclose(covariance[:16, :16], expected, atol=1e-4)  # decorrelated, each of variance ~1
    assert eigenvalues[0] / eigenvalues[-1] > 100  # ... although the patches' variances span decades
    assert torch.allclose(torch.diagonal(covariance[:6, :6]), torch.ones(6, dtype=torch.float64), atol=0.02)
    assert torch.allclose(covariance[16:, 16:], covariance[:16, :16], atol=1e-5)  # -v has v's statistics
    assert torch.allclose(covariance[:16, 16:], -covariance[:16, :16], atol=1e-5)


def test_more_channels_than_directions_keep_their_init_beyond_them():
    images = smooth_images(count=50)
    model = MgNet(3, 10, smoothing_steps=[1, 1], channels=64)
    before = stem_convolution(model).weight.detach().clone()
    assert whiten_stem(model, images) == 54  # a 3x3x3 patch has 27 directions
    after = stem_convolution(model).weight
    assert torch.equal(after[54:], before[54:]) and not torch.equal(after[:54], before[:54])


@pytest.mark.parametrize("stem, kernel", [(None, 3), (imagenet_stem, 7)])
def test_the_baselines_stems_whiten_too(stem, kernel):
    images = smooth_images(count=20, size=24)
    model = ResNet(3, 10, BasicBlock, layers=[1], widths=[16], **({"stem": stem} if stem else {}))
    convolution = stem_convolution(model)
    assert tuple(convolution.kernel_size) == (kernel, kernel)
    assert whiten_stem(model, images) == 16
    covariance = output_covariance(convolution, images)[:8, :8]
    assert torch.allclose(covariance, torch.diag(torch.diagonal(covariance)), atol=1e-4)


def test_a_frozen_stem_does_not_train_and_a_whitened_one_does(compose_config):
    for frozen in (True, False):
        t = build_training(compose_config("model.stem_init=whiten", f"model.stem_frozen={str(frozen).lower()}"))
        convolution = stem_convolution(t.model)
        images = t.data.train.images[:t.data.train.images.shape[0]].float() / 255
        mean, std = (torch.tensor(values).view(1, -1, 1, 1) for values in (t.data.mean, t.data.std))
        filters, _ = whitening_filters((images - mean) / std, (3, 3), convolution.out_channels // 2)
        assert torch.allclose(convolution.weight, filters)  # what build_training set: every training image's patches
        before = convolution.weight.detach().clone()
        scheduler = torch.optim.lr_scheduler.LambdaLR(t.optimizer, lambda step: 1.0)
        step = TrainStep(t.model, t.optimizer, scheduler, t.trainer, t.place)
        step(*next(iter(t.batches.train)))
        assert torch.equal(convolution.weight, before) == frozen


def test_a_frozen_default_stem_keeps_its_init(compose_config):
    t = build_training(compose_config("model.stem_frozen=true"))
    assert not stem_convolution(t.model).weight.requires_grad
    assert all(p.requires_grad for name, p in t.model.named_parameters() if not name.startswith("stem.0."))
