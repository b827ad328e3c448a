"""Schemas of the dataset group: one per loader, with the shape ``mgnet info`` reads unloaded."""

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from mgnet_cli.schema import rules


class Labels(rules.Choice):
    """CIFAR-100's labels: 100 fine classes or 20 coarse superclasses."""
    fine = "fine"
    coarse = "coarse"


CIFAR100_CLASSES = {Labels.fine.value: 100, Labels.coarse.value: 20}  # classes of each kind of labels


# --- dataset ------------------------------------------------------------------------------------
@dataclass
class AugmentationConfig:
    """Random training-time augmentation, drawn independently for every image (the batch
    pipeline, ``mgnet_cli/data/batches.py``, takes this object as it is)."""
    crop_padding: int = rules.setting(0, "random crop after zero-padding this many pixels per side")
    flip: bool = rules.setting(False, "random horizontal flip")
    flip_alternating: bool = rules.setting(False, "with flip: each image is mirrored in every other epoch, from a "
                                                  "random first choice per image (airbench94's alternating flip), "
                                                  "instead of a new coin every epoch")

    def __post_init__(self) -> None:
        rules.count(self, "crop_padding", minimum=0, maximum=64)
        if self.flip_alternating:
            rules.is_true(self, "flip", "flip_alternating=true alternates flips: set flip=true too")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


@dataclass
class ShapeConfig:
    """What a data set's images are, known without loading it (``mgnet info``)."""
    channels: int = rules.setting(3, "channels of an image")
    image_size: int = rules.setting(32, "side of an image, pixels")
    num_classes: int = rules.setting(10, "classes the model tells apart")

    LARGEST_CLASSES: ClassVar[int] = 100_000  # an image folder's too

    def __post_init__(self) -> None:
        rules.count(self, "channels", maximum=64)
        rules.count(self, "image_size", maximum=8192)
        rules.count(self, "num_classes", minimum=2, maximum=self.LARGEST_CLASSES)


@dataclass
class CifarShapeConfig(ShapeConfig):
    """CIFAR-100's shape: its class count follows ``dataset.labels``."""
    classes_per_labels: dict[str, int] = rules.setting(CIFAR100_CLASSES, "num_classes of each dataset.labels "
                                                                         "(fixed)")

    def __post_init__(self) -> None:
        if self.classes_per_labels != CIFAR100_CLASSES:
            raise rules.Invalid("classes_per_labels", self.classes_per_labels,
                                f"CIFAR-100 has {{{', '.join(f'{k}: {n}' for k, n in CIFAR100_CLASSES.items())}}}: "
                                "leave it as it is")
        super().__post_init__()


@dataclass
class FileDatasetConfig:
    """A data set in its standard files under ``root`` (CIFAR-10, MNIST, Fashion-MNIST)."""
    _target_: str = rules.target(MISSING)
    root: str = rules.setting("data", "the folder the files are read from (and downloaded into)")
    download: bool = rules.setting(True, "download the files when absent")
    shape: ShapeConfig = field(default_factory=ShapeConfig)  # known without loading (mgnet info)
    val_size: int = rules.setting(0, "training images held out for validation; 0 = the paper's protocol")
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)

    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.data.cifar.load_cifar10", "mgnet_cli.data.mnist.load_mnist",
                                          "mgnet_cli.data.mnist.load_fashion_mnist")

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.text(self, "root")
        rules.count(self, "val_size", minimum=0, maximum=10**8)


@dataclass
class Cifar100Config(FileDatasetConfig):
    _target_: str = "mgnet_cli.data.cifar.load_cifar100"
    labels: Labels = rules.setting(Labels.fine, "100 fine classes or 20 coarse superclasses")
    shape: CifarShapeConfig = field(default_factory=CifarShapeConfig)

    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.data.cifar.load_cifar100",)


@dataclass
class SyntheticConfig:
    """Generated images (``configs/dataset/synthetic.yaml``)."""
    _target_: str = rules.target("mgnet_cli.data.synthetic.load_synthetic")
    num_train: int = rules.setting(512, "training images generated")
    num_test: int = rules.setting(256, "test images generated")
    num_classes: int = rules.setting(10, "classes (each a pattern of its own)")
    image_size: int = rules.setting(32, "side of an image, pixels")
    channels: int = rules.setting(3, "channels of an image")
    seed: int = rules.setting(0, "seed of the generated images")
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    val_size: int = rules.setting(0, "training images held out for validation")
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.data.synthetic.load_synthetic",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.count(self, "num_train", maximum=10**6)
        rules.count(self, "num_test", maximum=10**6)
        rules.count(self, "num_classes", minimum=2, maximum=1000)
        rules.count(self, "image_size", minimum=4, maximum=512)
        rules.count(self, "channels", maximum=16)
        rules.seed(self, "seed")
        rules.count(self, "val_size", minimum=0, maximum=self.num_train - 1)


@dataclass
class ImageFolderConfig:
    """``root/train/<class>/`` and ``root/val/<class>/`` images (``configs/dataset/imagefolder.yaml``)."""
    _target_: str = rules.target("mgnet_cli.data.imagefolder.load_imagefolder")
    root: str = rules.setting("data/imagenet", "the folder holding train/ and val/")
    num_classes: int = rules.setting(1000, "class folders under train/ (checked when loading)")
    image_size: int = rules.setting(224, "side of the crops the model sees")
    resize: int = rules.setting(256, "evaluation: shorter side resized to this, then centre crop image_size")
    crop_scale: list[float] | None = rules.setting([0.08, 1.0], "training: random-resized crop of this area "
                                                                "fraction; null = evaluation crop")
    mean: list[float] = rules.setting([0.485, 0.456, 0.406], "per channel, subtracted (ImageNet statistics, "
                                                             "pixels in [0, 1])")
    std: list[float] = rules.setting([0.229, 0.224, 0.225], "per channel, divided by (ImageNet statistics)")
    num_workers: int = rules.setting(4, "decoding workers (the option's: ${trainer.num_workers})")
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    val_size: int = rules.setting(0, "must stay 0: the val/ folder is the held-out set")
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    TARGETS: ClassVar[tuple[str, ...]] = ("mgnet_cli.data.imagefolder.load_imagefolder",)

    def __post_init__(self) -> None:
        rules.one_of(self, "_target_", self.TARGETS)
        rules.text(self, "root")
        rules.count(self, "num_classes", minimum=2, maximum=ShapeConfig.LARGEST_CLASSES)
        rules.count(self, "image_size", minimum=8, maximum=4096)
        rules.count(self, "resize", minimum=self.image_size, maximum=8192)
        scale = self.crop_scale
        if scale is not None and not (len(scale) == 2 and all(map(rules.is_number, scale))
                                      and 0 < scale[0] <= scale[1] <= 1):
            raise rules.Invalid("crop_scale", list(scale), "give [low, high] with 0 < low <= high <= 1, or null")
        for key in ("mean", "std"):  # per channel: RGB images
            values = getattr(self, key)
            if len(values) != 3 or not all(map(rules.is_number, values)) or (
                    key == "std" and min(values) <= 0):
                raise rules.Invalid(key, list(values), "give 3 finite numbers (one per channel)"
                                    + (", each > 0" if key == "std" else ""))
        rules.count(self, "num_workers", minimum=0, maximum=1024)
        rules.count(self, "val_size", minimum=0, maximum=10**8)
        if self.val_size:
            raise rules.Invalid("val_size", self.val_size, "must stay 0: image folders evaluate on their val/ "
                                                           "folder and cannot split off training images")


