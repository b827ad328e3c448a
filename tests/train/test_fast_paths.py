"""Every speed switch computes what the plain fp32 NCHW eager path computes (to float tolerance):
channels-last, bf16 autocast, torch.compile and flip test-time augmentation. No timings here."""

import copy
import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mgnet_cli import schema
from mgnet_cli.cli.build import build_data, build_model, build_training, placed
from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.train import TrainerConfig
from mgnet_cli.train.checkpoint import load_checkpoint
from mgnet_cli.train.fast import Placement, auto_precision, cpu_flags, placement, prepare_model
from mgnet_cli.train.epoch import TrainStep, train_epoch
from mgnet_cli.train.evaluation import evaluate_split
from mgnet_cli.train.loop import fit
from mgnet_cli.train.schedules import Constant
from tests.conftest import CONFIGS
from tests.helpers import fit_config

CPU = torch.device("cpu")
SMALL = ["trainer.channels_last=false",  # the plain path; a test's overrides come after and win
         "model.smoothing_steps=[2,1]", "trainer.batch_size=16", "dataset.augmentation.crop_padding=2",
         "dataset.augmentation.flip=true"]
# Losses: fp32 paths differ only in summation order (oneDNN's NHWC kernels, the NHWC BatchNorm);
# bf16 keeps 8 bits of mantissa. Weights after two steps: a ReLU whose input sits within float
# noise of 0 may switch, which moves single gradient entries, so they get a looser bound.
LOSS = {"fp32": 1e-5, "bf16": 2e-2}
TOLERANCE = {"fp32": {"rtol": 1e-3, "atol": 1e-3}, "bf16": {"rtol": 2e-2, "atol": 5e-3}}


def setup(compose_config, *overrides):
    """(training, batches, model) of the tiny config; the model's weights are the same every call."""
    t = build_training(compose_config(*SMALL, *overrides))
    return t, t.batches, t.model


def settings(cfg):
    """(the checked config, its device and precision) as ``mgnet train`` resolves them."""
    checked = schema.check(cfg, "train")
    return checked, placed(checked)


def train_steps(model, batches, steps=2, precision="fp32", compile=False, channels_last=False):
    """Metrics of ``steps`` SGD steps of ``model`` (moved and compiled as ``fit`` does)."""
    forward = prepare_model(model, CPU, channels_last, compile)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step = TrainStep(forward, optimizer, scheduler, TrainerConfig(channels_last=channels_last),
                     Placement(CPU, precision))
    return train_epoch(step, batches.train, "test", steps).metrics()


def assert_same_parameters(model, reference, precision="fp32"):
    for (name, mine), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        if mine.is_floating_point():
            torch.testing.assert_close(mine, theirs, **TOLERANCE[precision], msg=name)


def test_settings_read_the_switches(compose_config):
    checked, place = settings(compose_config("trainer.precision=bf16", "trainer.channels_last=true",
                                             "trainer.compile=true", "eval.tta=flip"))
    assert (place.precision, checked.trainer.channels_last, checked.trainer.compile, checked.eval.tta) == (
        "bf16", True, True, "flip")
    default, place = settings(compose_config(tiny=False))  # channels-last is on by default: it pays everywhere
    auto = auto_precision(place.device)  # bf16 or fp32, as this machine's hardware has it
    trainer = default.trainer
    assert (place.precision, place.why, trainer.channels_last, trainer.compile, default.eval.tta) == (
        *auto, True, False, "none")
    plain, _ = settings(compose_config(*SMALL))
    assert plain.trainer.channels_last is False


def test_the_fast_trainer_preset_turns_every_switch_on(compose_config):
    fast, place = settings(compose_config("trainer=fast", tiny=False))
    trainer = fast.trainer
    assert (place.precision, trainer.channels_last, trainer.compile, trainer.epochs, trainer.batch_size) == (
        "bf16", True, True, 300, 128)


@pytest.mark.parametrize("flags, precision, why", [
    ({"avx2", "fma"}, "fp32", "auto: the CPU has neither AMX-BF16 nor AVX-512 BF16 (bf16 would be emulated)"),
    ({"avx512f", "avx512_bf16"}, "bf16", "auto: the CPU has AVX-512 BF16"),
    ({"amx_tile", "amx_bf16", "avx512_bf16"}, "bf16", "auto: the CPU has AMX-BF16 and AVX-512 BF16"),
])  # fmt: skip
def test_auto_is_bf16_on_cpus_with_bf16_instructions_only(flags, precision, why):
    assert auto_precision(CPU, flags=lambda: flags) == (precision, why)


@pytest.mark.skipif(torch.version.hip is not None, reason="every ROCm GPU has bf16 matrix cores")
@pytest.mark.parametrize("capability, precision", [((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_is_bf16_on_gpus_with_bf16_tensor_cores_only(capability, precision):
    chosen, why = auto_precision(torch.device("cuda"), cuda_capability=lambda device: capability)
    assert chosen == precision and f"compute capability {capability[0]}.{capability[1]}" in why


def test_cpu_flags_are_read_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_auto_is_resolved_once_and_an_asked_precision_is_kept():
    auto = placement(CPU, "auto")
    assert (auto.precision, auto.why) == auto_precision(CPU)
    assert (placement(CPU, "fp32").precision, placement(CPU, "fp32").why) == ("fp32", "")
    assert placement(CPU, "bf16").precision == "bf16"


def test_smoke_pins_fp32_so_tests_compute_the_same_numbers_everywhere(compose_config):
    assert settings(compose_config())[1].precision == "fp32"


def test_the_start_line_says_which_precision_auto_chose_and_why(compose_config, tmp_path, caplog):
    cfg = compose_config("trainer.precision=auto", "trainer.limit_train_batches=1")
    with caplog.at_level("INFO", logger="mgnet_cli.train.loop"):
        fit_config(cfg, tmp_path)
    precision, why = auto_precision(CPU)
    start = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training "))
    assert f"on cpu ({precision} ({why})" in start


def test_the_loss_gradients_and_optimizer_state_stay_fp32_under_bf16(compose_config):
    _, batches, model = setup(compose_config)
    forward = prepare_model(model, CPU, channels_last=False, compile=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step = TrainStep(forward, optimizer, scheduler, TrainerConfig(label_smoothing=0.1), Placement(CPU, "bf16"))
    loss, logits, _ = step(*next(iter(batches.train)))
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32  # cross-entropy in fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(grad.dtype == torch.float32 for grad in grads)
    assert all(state["momentum_buffer"].dtype == torch.float32 for state in optimizer.state.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is refused on CPU-only machines")
def test_fp16_without_cuda_is_a_config_error(compose_config):
    """(Unknown precisions and TTA modes are refused by the schema: tests/schema.)"""
    with pytest.raises(ConfigError, match="fp16 runs on CUDA only"):
        settings(compose_config("trainer.precision=fp16"))


@pytest.mark.parametrize("fast", [
    {"channels_last": True},
    {"precision": "bf16"},
    {"precision": "bf16", "channels_last": True},
], ids=lambda fast: "+".join(f"{key}={value}" for key, value in fast.items()))
def test_fast_training_steps_match_the_plain_path(compose_config, fast):
    _, batches, reference = setup(compose_config)
    plain = train_steps(reference, batches)
    # the same weights and batches again (NHWC batches when channels_last: the pipeline makes them)
    _, batches, model = setup(compose_config, *(f"trainer.{key}={value}" for key, value in fast.items()))
    ours = train_steps(model, batches, **fast)
    precision = fast.get("precision", "fp32")
    assert ours["loss"] == pytest.approx(plain["loss"], rel=LOSS[precision])
    assert ours["acc"] == pytest.approx(plain["acc"], abs=0.1)
    assert_same_parameters(model, reference, precision)


def test_batchnorm_stays_fp32_under_bf16_autocast(compose_config):
    _, batches, model = setup(compose_config)
    _, plain_batches, reference = setup(compose_config)
    train_steps(model, batches, precision="bf16")
    train_steps(reference, plain_batches)
    norms = [(m, r) for m, r in zip(model.modules(), reference.modules()) if isinstance(m, nn.BatchNorm2d)]
    assert norms
    for module, plain in norms:
        for tensor in (module.weight, module.bias, module.weight.grad, module.running_mean,
                       module.running_var):
            assert tensor.dtype == torch.float32
        # statistics accumulated in fp32 from bf16 activations: close to those of the fp32 run
        torch.testing.assert_close(module.running_var, plain.running_var, **TOLERANCE["bf16"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror(compose_config):
    _, batches, model = setup(compose_config)
    model.eval()
    with torch.no_grad():
        images, labels = next(iter(batches.evaluations["test"]))
        logits = 0.5 * (model(images) + model(images.flip(-1)))
    expected = F.cross_entropy(logits, labels).item()
    flip = evaluate_split(model, batches.evaluations["test"], limit=1, tta="flip").metrics
    none = evaluate_split(model, batches.evaluations["test"], limit=1).metrics
    assert flip["loss"] == pytest.approx(expected, rel=1e-5)
    assert flip["loss"] != none["loss"]  # the noise is not mirror-symmetric: TTA changes something
    bf16 = evaluate_split(model, batches.evaluations["test"], limit=1, tta="flip", precision="bf16",
                          channels_last=True).metrics
    assert bf16["loss"] == pytest.approx(expected, rel=LOSS["bf16"])


def test_compiled_model_evaluates_like_the_eager_one(compose_config):
    """One cheap compiled check (a one-level model's inference graph); training graphs are slow."""
    _, batches, model = setup(compose_config, "model.smoothing_steps=[1]")
    compiled = prepare_model(copy.deepcopy(model), CPU, channels_last=False, compile=True)
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)
    source = batches.evaluations["test"]
    ours, plain = evaluate_split(compiled, source, limit=1).metrics, evaluate_split(model, source, limit=1).metrics
    assert ours["loss"] == pytest.approx(plain["loss"], rel=LOSS["fp32"])


def test_traced_training_steps_match_the_plain_path(compose_config, monkeypatch):
    """The compiled path's graphs (Dynamo's capture, AOTAutograd's forward and backward), run
    without Inductor's code generation: quick enough for every test run. Inductor itself: below."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    compiled_steps_match_the_plain_path(compose_config)


@pytest.mark.slow  # Inductor compiles for a minute on 2 cores: python -m pytest -m slow
def test_compiled_training_steps_match_the_plain_path(compose_config):
    compiled_steps_match_the_plain_path(compose_config)


def compiled_steps_match_the_plain_path(compose_config) -> None:
    torch._dynamo.reset()
    _, batches, reference = setup(compose_config)
    plain = train_steps(reference, batches)
    _, batches, model = setup(compose_config, "trainer.channels_last=true")
    compiled = train_steps(model, batches, compile=True, channels_last=True)
    assert compiled["loss"] == pytest.approx(plain["loss"], rel=LOSS["fp32"])
    assert_same_parameters(model, reference)


def fit_with_every_switch(compose_config, tmp_path):
    training, _, model = setup(compose_config, "trainer.precision=bf16", "trainer.channels_last=true",
                               "trainer.compile=true", "eval.tta=flip")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    results = fit(dataclasses.replace(training, optimizer=optimizer, schedule=Constant()), tmp_path, {"config": {}})
    return model, results


def test_fit_with_every_switch_saves_a_plain_checkpoint(compose_config, tmp_path, monkeypatch):
    # Dynamo's wrapper (what adds `_orig_mod.` to state-dict keys) without Inductor's C++ build
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    model, results = fit_with_every_switch(compose_config, tmp_path)
    assert results["status"] == "completed" and 0 <= results["final_test_acc"] <= 1
    state = load_checkpoint(tmp_path / "last.pt")["model"]
    assert not any(key.startswith("_orig_mod.") for key in state)
    fresh = copy.deepcopy(model)
    fresh.load_state_dict(state, strict=True)


@pytest.mark.slow
def test_fit_compiled_by_inductor_saves_a_plain_checkpoint(compose_config, tmp_path):
    _, results = fit_with_every_switch(compose_config, tmp_path)
    assert results["status"] == "completed"
    assert not any(key.startswith("_orig_mod.") for key in load_checkpoint(tmp_path / "last.pt")["model"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_steps_match_fp32(compose_config, precision):
    cuda = torch.device("cuda")
    cfg = compose_config(*SMALL)
    checked = schema.check(cfg, "train")
    seed = checked.seed
    data, augmentation = build_data(cfg, checked)
    torch.manual_seed(0)
    model = build_model(cfg, data.in_channels, data.num_classes)
    reference = copy.deepcopy(model)
    results = []
    for net, prec in ((reference, "fp32"), (model, precision)):
        batches = data.batches(16, 64, cuda, augmentation, seed, channels_last=True)
        forward = prepare_model(net, cuda, channels_last=True, compile=False)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        step = TrainStep(forward, optimizer, scheduler, TrainerConfig(channels_last=True), Placement(cuda, prec))
        results.append(train_epoch(step, batches.train, "test", 2).metrics())
    assert results[1]["loss"] == pytest.approx(results[0]["loss"], rel=LOSS["bf16"])
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("preset", sorted((CONFIGS / "experiment").glob("*.yaml")), ids=lambda path: path.stem)
def test_every_preset_states_its_precision(compose_config, preset):
    """In a comment: a value in the preset would override a trainer option swapped on top of it."""
    assert "# Precision: the trainer's auto" in preset.read_text()
    _, place = settings(compose_config(f"experiment={preset.stem}", tiny=False))
    assert place.precision == auto_precision(place.device)[0]
