"""Schemas of the model and smoother groups (MgNet, the ResNet baselines, the smoothers)."""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mgnet_cli import shipped
from mgnet_cli.schema import rules


# --- model --------------------------------------------------------------------------------------
@dataclass
class StemConfig:
    """Image -> first grid's data (``mgnet_cli/model/stems.py``)."""
    _target_: str = rules.setting("mgnet_cli.model.stems.cifar_stem", "cifar_stem: 3x3 conv+BN+ReLU, level 1 at "
                                  "the image's resolution; imagenet_stem: 7x7/2 conv+BN+ReLU, 3x3/2 max-pool "
                                  "(224 -> 56)")
    _partial_: bool = rules.partial("the channels are")
    norm_activation: bool = rules.setting(True, "false: conv only (a pre-activation block's BN-ReLU follows)")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.model.stems.cifar_stem", "mgnet_cli.model.stems.imagenet_stem",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the channels are passed in)")


class StemInit(rules.Choice):
    """How the stem's convolution starts: PyTorch's default (Kaiming-uniform) or whitened from the
    training images' patches (``mgnet_cli/model/whitening.py``)."""
    default = "default"
    whiten = "whiten"


@dataclass
class StemInitConfig:
    """The keys every model has for its stem's start (read by ``cli/build.py`` once the data is
    loaded, not by the model's constructor)."""
    stem_init: StemInit = rules.setting(StemInit.default, "default: PyTorch's init; whiten: the stem's filters "
                                        "whiten the k x k patches of 5,000 training images (+/- pairs of "
                                        "the covariance's leading eigenvectors, as airbench94)")
    stem_frozen: bool = rules.setting(False, "true: the stem's convolution is not trained (airbench94 "
                                             "freezes its whitened stem)")


@dataclass
class MgNetConfig(StemInitConfig):
    """MgNet (``configs/model/mgnet.yaml``); its smoother is the ``smoother`` group."""
    _target_: str = rules.target("mgnet_cli.model.mgnet.MgNet")
    smoothing_steps: list[int] = rules.setting([2, 2, 2, 2], "nu_l per level; levels = its length")
    channels: Any = rules.typed_as(int | list[int], 256, "width of u: an int, or one per level")
    channels_f: Any = rules.typed_as(int | list[int] | None, None, "width of f: null (= channels), an int, "
                                                                   "or one per level")
    smoother: Any = rules.typed_as(Literal["${smoother}"], "${smoother}", "the smoother group, always")
    stem: StemConfig = field(default_factory=StemConfig)  # theta, image -> f^1 (mgnet_cli/model/stems.py)
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.model.mgnet.MgNet",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        levels = len(rules.integers(self, "smoothing_steps", maximum=1000))
        rules.per_level(self, "channels", levels)
        if self.channels_f is not None:
            rules.per_level(self, "channels_f", levels)


@dataclass
class BlockConfig:
    """A residual block: BasicBlock (conv-BN-ReLU-conv-BN + shortcut, then ReLU) or PreActBlock."""
    _target_: str = rules.target("mgnet_cli.model.baselines.BasicBlock")
    _partial_: bool = rules.partial("the channels are")
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.model.baselines.BasicBlock", "mgnet_cli.model.baselines.PreActBlock",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (the channels are passed in)")


@dataclass
class ResNetConfig(StemInitConfig):
    """The ResNet baselines (``configs/model/resnet18.yaml``, ``preact_resnet18.yaml``)."""
    _target_: str = rules.target("mgnet_cli.model.baselines.ResNet")
    block: BlockConfig = field(default_factory=BlockConfig)
    layers: list[int] = rules.setting([2, 2, 2, 2], "blocks per stage (ResNet-34: [3, 4, 6, 3])")
    widths: list[int] = rules.setting([64, 128, 256, 512], "channels per stage; each stage after the first "
                                                           "halves the resolution")
    final_norm_activation: bool = rules.setting(False, "true: BN-ReLU after the last block (pre-activation "
                                                       "blocks)")
    stem: StemConfig = field(default_factory=StemConfig)
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.model.baselines.ResNet",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        stages = len(rules.integers(self, "layers", maximum=1000))
        rules.integers(self, "widths", length=stages)


# --- smoother -----------------------------------------------------------------------------------
@dataclass
class SmootherConfig:
    """A network smoother with the keys every one has (``configs/smoother/*.yaml`` extending
    ``/schema/smoother/base``: ResNet's ``u <- u + sigma(B * sigma(f - A u))`` and any new one);
    the code it may call is what those files name."""
    _target_: str = rules.target("mgnet_cli.model.smoothers.resnet.ResNetSmoother")
    _partial_: bool = rules.partial("each level's widths and steps are")
    b_per_step: bool = rules.setting(False, "false: one B per level (the paper's 8.2M model); true: one B "
                                            "per step")
    TARGETS = shipped.Targets("smoother", "base")  # what the shipped options name (a new one: its YAML)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.is_true(self, "_partial_", "must stay true (each level passes its widths and steps)")


@dataclass
class DenseNetSmootherConfig(SmootherConfig):
    """Multi-step residual correction (``configs/smoother/densenet.yaml``): one B per step."""
    _target_: str = "mgnet_cli.model.smoothers.densenet.DenseNetSmoother"
    b_per_step: bool = True
    TARGETS = shipped.Targets("smoother", "densenet")

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.is_true(self, "b_per_step", "densenet needs true: B^i reads i residuals, so steps "
                                          "cannot share it")


@dataclass
class ChebyshevSmootherConfig(SmootherConfig):
    """Two-step (LM-ResNet) smoother with a learned k per step (``configs/smoother/chebyshev.yaml``)."""
    _target_: str = "mgnet_cli.model.smoothers.chebyshev.ChebyshevSmoother"
    k_init: float = rules.setting(0.0, "initial k of every step; k = 0 is the ResNet smoother")
    TARGETS = shipped.Targets("smoother", "chebyshev")

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.number(self, "k_init", -1.0, 1.0, low_open=True, high_open=True)
