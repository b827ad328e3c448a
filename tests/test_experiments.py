"""Every preset in configs/experiment/: it composes, builds the model its header comment promises,
and trains a step once shrunk; ``mgnet info experiment=mgnet_imagenet`` prints its level table."""

import subprocess
import sys
from pathlib import Path

import hydra.utils
import pytest

from mgnet_cli.cli.build import build_model, build_training, data_shape
from mgnet_cli.model.summary import count
from mgnet_cli.train.loop import fit
from tests.conftest import CONFIGS, options

PRESETS = options("experiment")
STEP = ["dataset=synthetic", "dataset.num_train=24", "dataset.num_test=8", "trainer.device=cpu",
        "trainer.epochs=1", "trainer.batch_size=8", "trainer.eval_batch_size=8",
        "trainer.limit_train_batches=1", "trainer.limit_eval_batches=1", "trainer.checkpoints=false"]
SHRINK = {  # the model keys that make each family tiny
    "mgnet_cli.model.mgnet.MgNet": ["model.channels=8", "model.smoothing_steps=[1,1]"],
    "mgnet_cli.model.baselines.ResNet": ["model.widths=[8,16]", "model.layers=[1,1]"],
}
PAPER = {  # the paper's figures each preset reproduces (docs/MGNET.md)
    "mgnet_cifar10": "96.00%", "mgnet_cifar100": "79.94%", "resnet18_cifar10": "95.28%",
    "resnet18_cifar100": "77.54%", "mgnet_imagenet": "78.59%",
}


NO_FIGURE = {  # presets the paper reports no accuracy for, and what their header says instead
    "mgnet_cifar10_per_step_b": "no accuracy for this variant", "mgnet_cifar100_per_step_b": "no accuracy for this variant",
    "preact_resnet18_cifar10": "report no figure for it", "preact_resnet18_cifar100": "report no figure for it",
}


def header(preset: str) -> str:
    lines = (CONFIGS / "experiment" / f"{preset}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_", f"{preset}.yaml must start with # @package _global_"
    return "\n".join(line for line in lines if line.startswith("#"))


def test_the_paper_presets_exist():
    assert set(PAPER) | {"mgnet_cifar10_per_step_b", "mgnet_cifar100_per_step_b",
                         "preact_resnet18_cifar10", "preact_resnet18_cifar100"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_the_model_its_header_promises(compose_config, preset):
    cfg = compose_config(f"experiment={preset}", tiny=False)
    shape = data_shape(cfg)
    parameters = count(build_model(cfg, shape["channels"], shape["num_classes"]))
    text = header(preset)
    assert f"{parameters:,}" in text, f"{preset}.yaml's header should state {parameters:,} parameters"
    assert f"experiment={preset}" in text  # the reproduction command
    if preset in PAPER:
        assert PAPER[preset] in text, f"{preset}.yaml's header should quote the paper's {PAPER[preset]}"
    else:
        assert NO_FIGURE[preset] in text, f"{preset}.yaml's header should say why it quotes no figure"


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_a_step_shrunk(compose_config, tmp_path, preset):
    target = compose_config(f"experiment={preset}", tiny=False).model._target_
    image_size = 64 if "imagenet" in preset else 16  # the ImageNet stem divides by 4
    cfg = compose_config(f"experiment={preset}", *STEP, f"dataset.image_size={image_size}",
                         *SHRINK[target], tiny=False)
    t = build_training(cfg)
    results = fit(t.model, t.optimizer, t.schedule, t.batches, t.settings, tmp_path)
    assert results["status"] == "completed" and results["epochs"] == 1
    assert 0.0 <= results["final_test_acc"] <= 1.0 and results["parameters"] == count(t.model)


@pytest.mark.parametrize("preset", [p for p in PRESETS if "cifar" in p])
def test_cifar_presets_train_as_the_authors_did(compose_config, preset):
    cfg = compose_config(f"experiment={preset}", tiny=False)
    optimizer = cfg.optimizer
    assert optimizer._target_ == "torch.optim.SGD" and not optimizer.nesterov
    assert (optimizer.lr, optimizer.momentum, optimizer.weight_decay) == (0.1, 0.9, 5e-4)
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.dataset.val_size) == (300, 128, 0)
    assert dict(cfg.dataset.augmentation) == {"crop_padding": 4, "flip": True}
    schedule = hydra.utils.instantiate(cfg.scheduler)
    for epoch in range(1, 301):  # the authors' code: lr = 0.1 * 0.1 ** (epoch // 50), epochs from 1
        assert optimizer.lr * schedule(epoch - 1 + 0.5) == pytest.approx(0.1 * 0.1 ** (epoch // 50))
    assert optimizer.lr * schedule(149) == pytest.approx(1e-4)  # header: 1e-4 from epoch 150


def test_info_prints_the_imagenet_level_table(tmp_path):
    script = Path(sys.executable).parent / "mgnet"
    done = subprocess.run([str(script), "info", "experiment=mgnet_imagenet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "MgNet on 3x224x224 images, 1000 classes"
    rows = [line.split() for line in lines if line.split()[0] in ("stem", "1", "2", "3", "4")]
    assert [row[:5] for row in rows[1:]] == [  # level, resolution, u ch, f ch, steps
        ["1", "56x56", "128", "128", "3"], ["2", "28x28", "256", "256", "4"],
        ["3", "14x14", "512", "512", "6"], ["4", "7x7", "1024", "1024", "3"]]
    assert rows[0][:3] == ["stem", "56x56", "-"]
    assert "parameters: 71,270,504" in lines  # the paper: 71.3M


@pytest.mark.parametrize("preset", [p for p in PRESETS if "imagenet" not in p])
@pytest.mark.parametrize("group, option", [("optimizer", "adamw"), ("scheduler", "cosine"),
                                           ("scheduler", "constant"), ("trainer", "fast")])
def test_any_group_can_be_swapped_on_top_of_a_preset(compose_config, preset, group, option):
    """Presets select their groups in the defaults list and pin only their own values."""
    cfg = compose_config(f"experiment={preset}", f"{group}={option}", tiny=False)
    own = compose_config(f"{group}={option}", tiny=False)[group]
    assert cfg[group] == own  # the swapped group is exactly its own option
    assert cfg.model == compose_config(f"experiment={preset}", tiny=False).model  # the preset's model stays


def test_a_preset_with_another_optimizer_trains_from_the_command_line(tmp_path):
    script = Path(sys.executable).parent / "mgnet"
    done = subprocess.run([str(script), "info", "experiment=mgnet_cifar10", "optimizer=adamw", "scheduler=cosine"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "parameters: 8,278,794" in done.stdout, done.stderr
