"""``dataset=imagefolder`` on a tiny tree of generated JPEG and PNG files."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from mgnet_cli import schema
from mgnet_cli.cli.build import build_data, build_training
from mgnet_cli.data.imagefolder import FolderData, load_imagefolder
from mgnet_cli.errors import ConfigError, DataError
from mgnet_cli.schema import rules
from mgnet_cli.schema.data import AugmentationConfig, ImageFolderConfig
from mgnet_cli.train.loop import fit

RED, BLUE = (255, 0, 0), (0, 0, 255)
IMAGENET = {key: rules.default(ImageFolderConfig, key) for key in ("crop_scale", "mean", "std")}  # the option's
SMALL = {"image_size": 32, "resize": 40, "num_workers": 0, **IMAGENET}


def two_colour(width: int, height: int, split_column: int) -> Image.Image:
    """Red left of ``split_column``, blue from it on."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, split_column, height))
    return image


def make_tree(root: Path, train: dict[str, int], val: dict[str, int]) -> Path:
    """``root/{train,val}/<class>/<i>.{jpg,png}`` of assorted sizes and modes."""
    for split, counts in (("train", train), ("val", val)):
        for label, (name, number) in enumerate(sorted(counts.items())):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(number):
                image = two_colour(40 + 13 * index, 48 + 7 * label, 20)
                if index % 3 == 2:
                    image.convert("L").save(folder / f"{index}.png")  # greyscale PNG
                else:
                    image.save(folder / f"{index}.{'jpg' if index % 2 else 'JPEG'}", quality=95)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tiny", train={"dog": 3, "cat": 4, "emu": 2},
                     val={"cat": 2, "dog": 1, "emu": 1})


def test_classes_are_the_sorted_train_folders_and_val_uses_their_labels(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    assert data.classes == ("cat", "dog", "emu") and data.num_classes == 3
    assert (data.in_channels, data.image_size, data.val) == (3, 32, None)
    assert len(data.train) == 9 and len(data.test) == 4
    assert data.train.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert data.test.labels.tolist() == [0, 0, 1, 2]


def test_batches_have_the_crop_size_and_the_right_labels(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    batches = data.batches(5, 3, torch.device("cpu"), AugmentationConfig(flip=True), seed=0)
    train = list(batches.train)
    assert len(train) == len(batches.train) == 2
    assert [tuple(images.shape) for images, _ in train] == [(5, 3, 32, 32), (4, 3, 32, 32)]
    assert sorted(torch.cat([labels for _, labels in train]).tolist()) == data.train.labels.tolist()
    test = list(batches.evaluations["test"])
    assert [tuple(images.shape) for images, _ in test] == [(3, 3, 32, 32), (1, 3, 32, 32)]
    assert torch.cat([labels for _, labels in test]).tolist() == [0, 0, 1, 2]
    images = test[0][0]
    assert images.dtype == torch.float32 and images.min() < -1.5 and images.max() > 2.0  # normalised


def test_a_training_batch_of_one_is_dropped(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    batches = data.batches(8, 8, torch.device("cpu"), AugmentationConfig(), seed=0)  # 9 = 8 + 1
    assert len(batches.train) == 1 and len(list(batches.train)) == 1


def test_evaluation_resizes_the_shorter_side_then_crops_the_centre(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    crop = data.transform(None)(two_colour(80, 40, 30))  # centre crop: columns 24..55 of 80
    assert crop.shape == (3, 32, 32) and crop.dtype == torch.uint8
    red_columns = (crop[0, 16] > 128).sum().item()
    assert red_columns == 6  # a squashing resize would leave 12


def test_training_crops_are_random_resized_and_flipped(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    image = two_colour(90, 50, 30)
    torch.manual_seed(0)
    crops = [data.transform(AugmentationConfig(flip=True))(image) for _ in range(30)]
    assert {tuple(crop.shape) for crop in crops} == {(3, 32, 32)}
    red_on_the_left = [crop[0, 16, 0] > 128 for crop in crops]
    red_on_the_right = [crop[0, 16, -1] > 128 for crop in crops]
    assert any(red_on_the_right) and any(red_on_the_left)  # flipped and not
    assert len({crop[0].float().mean().item() for crop in crops}) > 10  # crops differ in place and size


def test_without_crop_scale_or_flip_training_sees_the_evaluation_crop(tree):
    data = load_imagefolder(tree, num_classes=3, **(SMALL | {"crop_scale": None}))
    image = two_colour(70, 45, 33)
    assert torch.equal(data.transform(AugmentationConfig(flip=False))(image), data.transform(None)(image))


def test_the_generator_replays_an_epoch_decoded_in_a_worker(tree):
    data = load_imagefolder(tree, num_classes=3, **(SMALL | {"num_workers": 1}))
    batches = data.batches(4, 4, torch.device("cpu"), AugmentationConfig(flip=True), seed=5)
    state = batches.generator.get_state()
    first = list(batches.train)
    batches.generator.set_state(state)
    again = list(batches.train)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    later = list(batches.train)  # the next epoch: another order and other crops
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, later))


def test_build_data_reads_the_yaml_and_passes_the_shape_check(compose_config, tree):
    cfg = compose_config("dataset=imagefolder", f"dataset.root={tree}", "dataset.num_classes=3",
                         "dataset.image_size=32", "dataset.resize=40", "trainer.num_workers=0",
                         "trainer.batch_size=4", tiny=False)
    data, augmentation = build_data(cfg, schema.check(cfg, "train"))
    assert isinstance(data, FolderData) and data.num_workers == 0
    assert augmentation == AugmentationConfig(crop_padding=0, flip=True)
    assert data.crop_scale == (0.08, 1.0) and data.mean == (0.485, 0.456, 0.406)
    with pytest.raises(ConfigError, match="val_size=10.*val/ folder"):
        schema.check(compose_config("dataset=imagefolder", f"dataset.root={tree}", "dataset.num_classes=3",
                                    "dataset.val_size=10", "trainer.batch_size=4", tiny=False), "train")


def test_crop_padding_is_refused(tree):
    data = load_imagefolder(tree, num_classes=3, **SMALL)
    with pytest.raises(ConfigError, match="crop_padding=4"):
        data.batches(4, 4, torch.device("cpu"), AugmentationConfig(crop_padding=4), seed=0)


def test_num_classes_must_match_the_folders(tree):
    with pytest.raises(ConfigError, match="has 3 class folders but dataset.num_classes=1000"):
        load_imagefolder(tree, num_classes=1000, **SMALL)


def loose_images(split: Path) -> None:
    """Images straight in ``split``, not in class folders."""
    shutil.rmtree(split)
    split.mkdir()
    two_colour(40, 40, 20).save(split / "0.jpg")


@pytest.mark.parametrize("breakage, message", [
    (lambda root: root.rename(root.with_name("elsewhere")), "tiny does not exist"),
    (lambda root: loose_images(root / "val"), "val has no class folders"),
    (lambda root: [p.unlink() for p in (root / "train" / "emu").iterdir()],
     "emu holds no .jpg, .jpeg or .png images"),
    (lambda root: (root / "val" / "yak").mkdir(), "class folders that train/ lacks: yak"),
    (lambda root: (root / "train").rename(root / "training"), "train is not a folder"),
])
def test_a_wrong_layout_names_the_folder_and_the_expected_one(tree, breakage, message):
    breakage(tree)
    with pytest.raises(DataError, match=message) as error:
        load_imagefolder(tree, num_classes=3, **SMALL)
    lines = str(error.value).splitlines()
    assert 1 <= len(lines) <= 3 and f"expected layout: {tree}/train/<class>/*.jpg" in lines[-1]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_undecodable_file_is_named_in_one_line(tree, workers):
    (tree / "val" / "dog" / "0.JPEG").write_bytes(b"not a jpeg")
    data = load_imagefolder(tree, num_classes=3, **(SMALL | {"num_workers": workers}))
    with pytest.raises(DataError, match=r"dog/0\.JPEG: cannot decode") as error:
        list(data.batches(4, 4, torch.device("cpu"), None, seed=0).evaluations["test"])
    assert "\n" not in str(error.value) and "Traceback" not in str(error.value)


def test_an_mgnet_with_the_imagenet_stem_trains_from_the_folders(compose_config, tree, tmp_path):
    cfg = compose_config(
        "dataset=imagefolder", f"dataset.root={tree}", "dataset.num_classes=3", "dataset.image_size=32",
        "dataset.resize=36", "trainer.num_workers=1", "trainer=smoke", "trainer.device=cpu",
        "trainer.batch_size=4", "trainer.eval_batch_size=4", "model.channels=4",
        "model.smoothing_steps=[1,1]", "model.stem._target_=mgnet_cli.model.stems.imagenet_stem",
        tiny=False)
    t = build_training(cfg)
    optimizer = torch.optim.SGD(t.model.parameters(), lr=0.1)
    results = fit(dataclasses.replace(t, optimizer=optimizer, schedule=lambda epoch: 1.0), tmp_path / "run")
    assert results["status"] == "completed" and results["history"][0]["train_loss"] > 0
    assert results["final_test_acc"] in {0.0, 0.25, 0.5, 0.75, 1.0}  # 4 val images, one batch
