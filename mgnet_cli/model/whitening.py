"""A whitening-initialised stem (``model.stem_init=whiten``), as airbench94 starts its network.

The stem's convolution (``theta``, k x k) is set, before the first step, from the covariance of the
k x k patches of a sample of training images: its filters are the covariance's leading eigenvectors
``v_i``, each scaled by ``1 / sqrt(lambda_i + eps)``, in pairs ``+v_i / -v_i`` (the ReLU after the
stem keeps one sign of each, so the pair keeps both). On those patches the first half of the
filters' outputs have covariance ``diag(lambda_i / (lambda_i + eps))``, close to the identity:
the first grid's data starts decorrelated, and the slowest directions of the image statistics
(smooth colour gradients) no longer dominate the early steps. ``model.stem_frozen`` keeps it so.
Channels beyond ``2 x C k^2`` (more than the patches have directions) keep their default init.
"""

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

EPS = 5e-4  # added to each eigenvalue: caps the gain of the near-empty directions (airbench94's)
SAMPLE_IMAGES = 5000  # training images whose patches are counted (airbench94: 5,000 of CIFAR-10)


def stem_convolution(model: nn.Module) -> nn.Conv2d:
    """The first convolution of ``model.stem`` (MgNet's theta, a ResNet's first conv)."""
    stem = getattr(model, "stem", None)
    convolution = next((module for module in stem.modules() if isinstance(module, nn.Conv2d)), None) \
        if isinstance(stem, nn.Module) else None
    if convolution is None:
        raise ValueError(f"{type(model).__name__} has no stem convolution to whiten")
    return convolution


def patches(images: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N (H-kh+1) (W-kw+1), C kh kw): every k x k patch (stride 1, no padding) as a
    row, laid out as a convolution's filter (channel, row, column)."""
    columns = nn.functional.unfold(images.float(), kernel)  # (N, C kh kw, positions)
    return columns.transpose(1, 2).reshape(-1, columns.shape[1])


def whitening_filters(images: torch.Tensor, kernel: tuple[int, int], pairs: int,
                      eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(filters, eigenvalues)``: the ``2 pairs`` filters ``[+V / sqrt(lambda + eps); -V / ...]``
    ((2 pairs, C, kh, kw)) of the ``pairs`` leading eigenvectors of the patch covariance, and their
    eigenvalues (descending)."""
    rows = patches(images, kernel).double()
    rows = rows - rows.mean(dim=0)
    covariance = rows.T @ rows / len(rows)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0)[:pairs], eigenvectors.flip(1)[:, :pairs]
    scaled = (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + eps)).T  # (pairs, C kh kw)
    return torch.cat([scaled, -scaled]).reshape(2 * pairs, images.shape[1], *kernel).float(), eigenvalues.float()


@torch.no_grad()
def whiten_stem(model: nn.Module, images: torch.Tensor, frozen: bool = False, eps: float = EPS) -> int:
    """Sets the stem convolution's filters from ``images`` ((N, C, H, W), normalised as training
    sees them); returns how many output channels were whitened (the rest keep their init).
    ``frozen``: the convolution's weight gets no gradient from then on."""
    convolution = stem_convolution(model)
    if convolution.groups != 1 or convolution.in_channels != images.shape[1]:
        raise ValueError(f"the stem convolution reads {convolution.in_channels} channels in "
                         f"{convolution.groups} groups; the images have {images.shape[1]}")
    kernel = tuple(convolution.kernel_size)
    directions = images.shape[1] * kernel[0] * kernel[1]
    pairs = min(convolution.out_channels // 2, directions)
    filters, eigenvalues = whitening_filters(images, kernel, pairs, eps)
    convolution.weight[:2 * pairs] = filters.to(convolution.weight)
    if convolution.bias is not None:
        convolution.bias[:2 * pairs] = 0.0
    convolution.weight.requires_grad_(not frozen)
    log.info("stem whitened from the %dx%d patches of %d training images: %d of %d channels "
             "(eigenvalues %.3g .. %.3g)%s", *kernel, len(images), 2 * pairs, convolution.out_channels,
             eigenvalues[0], eigenvalues[-1], ", frozen" if frozen else "")
    return 2 * pairs


def freeze_stem(model: nn.Module) -> None:
    """The stem convolution's weight gets no gradient (``model.stem_frozen`` with the default init)."""
    stem_convolution(model).weight.requires_grad_(False)
