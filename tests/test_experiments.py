"""Every preset in configs/experiment/: it composes, builds the model its header comment promises,
and trains a step once shrunk; ``mgnet info experiment=mgnet_imagenet`` prints its level table."""

import functools
import json
import re

import hydra.utils
import pytest
import yaml
from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli import register_configs
from mgnet_cli.cli.build import build_model, build_training, data_shape
from mgnet_cli.cli.preflight import check_job
from mgnet_cli.errors import ConfigError
from mgnet_cli.model.summary import count
from mgnet_cli.schema import TRAIN_GROUPS
from mgnet_cli.train.loop import fit
from tests.conftest import CONFIGS, options
from tests.helpers import TINY, cli, one_line_error

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
    "mgnet_cifar10_fast": "(docs/results.md, \"The fast preset\")",  # its own measured figures instead
}
FAST = {"mgnet_cifar10_fast"}  # presets of a fast recipe, not of the authors' training


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
    results = fit(t, tmp_path)
    assert results["status"] == "completed" and results["epochs"] == 1
    assert 0.0 <= results["final_test_acc"] <= 1.0 and results["parameters"] == count(t.model)


@pytest.mark.parametrize("preset", [p for p in PRESETS if "cifar" in p and p not in FAST])
def test_cifar_presets_train_as_the_authors_did(compose_config, preset):
    cfg = compose_config(f"experiment={preset}", tiny=False)
    optimizer = cfg.optimizer
    assert optimizer._target_ == "torch.optim.SGD" and not optimizer.nesterov
    assert (optimizer.lr, optimizer.momentum, optimizer.weight_decay) == (0.1, 0.9, 5e-4)
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.dataset.val_size) == (300, 128, 0)
    assert dict(cfg.dataset.augmentation) == {"crop_padding": 4, "flip": True, "flip_alternating": False}
    schedule = hydra.utils.instantiate(cfg.scheduler)
    for epoch in range(1, 301):  # the authors' code: lr = 0.1 * 0.1 ** (epoch // 50), epochs from 1
        assert optimizer.lr * schedule(epoch - 1 + 0.5) == pytest.approx(0.1 * 0.1 ** (epoch // 50))
    assert optimizer.lr * schedule(149) == pytest.approx(1e-4)  # header: 1e-4 from epoch 150


def test_info_prints_the_imagenet_level_table(tmp_path):
    done = cli("info", "experiment=mgnet_imagenet", cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert lines[0] == "MgNet on 3x224x224 images, 1000 classes"
    rows = [line.split() for line in lines if line.split()[0] in ("stem", "1", "2", "3", "4")]
    assert [row[:5] for row in rows[1:]] == [  # level, resolution, u ch, f ch, steps
        ["1", "56x56", "128", "128", "3"], ["2", "28x28", "256", "256", "4"],
        ["3", "14x14", "512", "512", "6"], ["4", "7x7", "1024", "1024", "3"]]
    assert rows[0][:3] == ["stem", "56x56", "-"]
    assert "parameters: 71,270,504" in lines  # the paper: 71.3M


def preset_file(preset: str) -> dict:
    return yaml.safe_load((CONFIGS / "experiment" / f"{preset}.yaml").read_text())


def parents(preset: str) -> list[str]:
    """The presets ``preset`` extends (``mgnet_cifar10_per_step_b`` -> ``mgnet_cifar10``)."""
    return [d for d in preset_file(preset).get("defaults", []) if isinstance(d, str) and d != "_self_"]


def pins(preset: str) -> dict[str, tuple[object, str]]:
    """``group.key`` -> (value, the preset file that sets it), over the preset and those it extends."""
    found = {}
    for parent in parents(preset):
        found |= pins(parent)

    def visit(prefix: str, node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                visit(f"{prefix}{key}.", value)
        else:
            found[prefix[:-1]] = (node, preset)

    visit("", {key: value for key, value in preset_file(preset).items() if key != "defaults"})
    return found


def family(option: str) -> str:
    """The schema a model option extends: presets fix their model family."""
    return re.search(r"/schema/model/(\w+)@", (CONFIGS / "model" / f"{option}.yaml").read_text()).group(1)


def preset_model(preset: str) -> str:
    overrides = [d for d in preset_file(preset).get("defaults", []) if isinstance(d, dict)]
    models = [d["override /model"] for d in overrides if "override /model" in d]
    return models[0] if models else preset_model(parents(preset)[0])


def refused_because(preset: str, group: str, option: str) -> str | None:
    """The key README says a preset keeps from ``group=option``: its model family's keys, and
    mgnet_imagenet's step schedule (``scheduler.step_epochs``); None where the option swaps on top."""
    keys = [key for key in pins(preset) if key.startswith(f"{group}.")]
    if group == "model" and family(option) != family(preset_model(preset)):
        return keys[0]
    if group == "scheduler" and option != "step" and "scheduler.step_epochs" in keys:
        return "scheduler.step_epochs"
    return None


SWAPS = [(preset, group, option) for preset in PRESETS for group in TRAIN_GROUPS for option in options(group)]


@pytest.fixture(scope="module")
def hydra_initialised():
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        yield


@pytest.mark.parametrize("preset, group, option", SWAPS, ids=["-".join(swap) for swap in SWAPS])
def test_every_option_swaps_on_top_of_every_preset_or_is_refused_saying_why(hydra_initialised, preset,
                                                                             group, option):
    """Presets select their groups and pin only their own values: the swapped group is its own
    option with the preset's values on top; where README says a preset cannot take it, the whole
    reason, in one line (plus no hint)."""
    from hydra import compose

    overrides = [f"experiment={preset}", f"{group}={option}"]
    overrides += ["dataset.root=/nonexistent"] if option == "imagefolder" else []
    reason = refused_because(preset, group, option)
    if reason:
        with pytest.raises(ConfigError) as refused:
            check_job("train", overrides)
        setter = pins(preset)[reason][1]
        by_way = f" (by way of {setter})" if setter != preset else ""
        assert str(refused.value) == (
            f"experiment={preset}{by_way} sets {reason}, which {group}={option} does not have: this preset "
            f"cannot take {group}={option} (keep its {group}, or start from another preset; README, Presets "
            "and baselines)")
        return
    cfg = compose("train", overrides=overrides)
    schema.check(schema.typed(OmegaConf.to_container(cfg), "train"), "train")  # as check_job does
    swapped, own = flat(cfg[group]), own_option(group, option)
    pinned = {key: value for key, (value, _) in pins(preset).items()}
    assert swapped == {key: pinned.get(f"{group}.{key}", value) for key, value in own.items()}


@functools.cache
def own_option(group: str, option: str) -> dict[str, object]:
    """``group=option`` composed without a preset, flattened."""
    from hydra import compose

    extra = ["dataset.root=/nonexistent"] if option == "imagefolder" else []
    return flat(compose("train", overrides=[f"{group}={option}", *extra])[group])


def flat(node) -> dict[str, object]:
    """A composed group as ``key.sub`` -> value, interpolations left as written."""
    found = {}

    def visit(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}{key}.", item)
        else:
            found[prefix[:-1]] = value

    visit("", OmegaConf.to_container(node, resolve=False, enum_to_str=True))
    return found


def test_an_unknown_option_of_an_optional_group_is_refused_naming_the_choices(hydra_initialised):
    """``experiment`` and ``search`` are optional groups: Hydra drops an unknown option of one."""
    with pytest.raises(ConfigError, match=r"^experiment=mgnet_cifar: no such option\n  choose one of: "
                                          r"mgnet_cifar10, mgnet_cifar100, .*resnet18_cifar100$"):
        check_job("train", ["experiment=mgnet_cifar"])
    with pytest.raises(ConfigError, match=r"^search=optuner: no such option\n  choose one of: optuna$"):
        check_job("train", ["search=optuner"])


def test_an_unknown_preset_on_the_command_line_is_one_line(tmp_path):
    done = cli("train", "experiment=mgnet_cifar", *TINY, cwd=tmp_path, check=False)  # was: trained TINY
    assert one_line_error(done, "train").endswith("experiment=mgnet_cifar: no such option")
    assert not (tmp_path / "outputs").exists()


def test_a_preset_with_another_optimizer_trains_from_the_command_line(tmp_path):
    done = cli("info", "experiment=mgnet_cifar10", "optimizer=adamw", "scheduler=cosine", cwd=tmp_path)
    assert "parameters: 8,278,794" in done.stdout, done.stderr


def test_the_fast_preset_fits_airbench94s_budget_and_states_it(tmp_path):
    """``mgnet_cifar10_fast``: at most 0.24 GFLOPs per forward image (0.36 PFLOPs over 10 epochs of
    50,000 images at 3 x the forward), the figures its header states, and the recipe it names."""
    done = cli("info", "experiment=mgnet_cifar10_fast", "info.format=json", cwd=tmp_path)
    facts = json.loads(done.stdout)
    gflops = facts["gflops_per_image"]
    assert gflops <= 0.24
    text = header("mgnet_cifar10_fast")
    assert f"{gflops:.3f} GFLOPs per forward image" in text and "Precision: the trainer's auto" in text
    assert f"{3 * gflops * 50_000 * 10 / 1e6:.2f} PFLOPs (airbench94: 0.36)" in text


def test_the_fast_preset_pins_airbench94s_recipe(compose_config):
    cfg = compose_config("experiment=mgnet_cifar10_fast", tiny=False)
    checked = schema.check(cfg, "train")
    assert (checked.model.stem_init, checked.model.stem_frozen) == ("whiten", True)
    assert (checked.optimizer.norm_bias_decay, checked.trainer.label_smoothing) == (False, 0.2)
    assert (checked.trainer.epochs, checked.trainer.lookahead_steps, checked.eval.tta) == (10, 5, "flip_translate")
    assert cfg.scheduler._target_ == "mgnet_cli.train.schedules.Triangular" and checked.trainer.precision == "auto"
