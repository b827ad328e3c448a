"""airbench94's training options carried over to every model: lookahead (``trainer.lookahead_*``),
flip-and-translate test-time augmentation (``eval.tta=flip_translate``), the triangular schedule
(``scheduler=triangular``) and alternating flips (``dataset.augmentation.flip_alternating``)."""

import dataclasses
import json
import os
import signal

import pytest
import torch
from torch import nn

from mgnet_cli.cli.build import build_training
from mgnet_cli.schema.train import TTA
from mgnet_cli.train.checkpoint import load_checkpoint
from mgnet_cli.train.checkpoint_parts import parts_fault
from mgnet_cli.train.evaluation import predict
from mgnet_cli.train.guards import Interrupted
from mgnet_cli.train.lookahead import Lookahead
from mgnet_cli.train.loop import fit
from mgnet_cli.train.schedules import Triangular
from tests.conftest import TINY
from tests.helpers import cli, copy_run


# --- lookahead ----------------------------------------------------------------------------------
def test_lookahead_pulls_the_weights_to_the_slow_copy_every_k_steps():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    lookahead = Lookahead(model, steps=2, alpha=0.8, total=4)
    assert lookahead.decay(0) == 0.0 and lookahead.decay(4) == pytest.approx(0.8)
    assert lookahead.decay(2) == pytest.approx(0.8 / 8)  # (2/4)^3 of alpha
    with torch.no_grad():
        model.weight.fill_(3.0)  # a step moved the weights
    lookahead(1)
    assert torch.all(model.weight == 3.0)  # no pull between the k-th steps
    lookahead(2)
    pulled = 0.1 * 1.0 + 0.9 * 3.0  # decay 0.1: the slow copy keeps a tenth
    assert torch.allclose(model.weight, torch.full((1, 2), pulled))
    with torch.no_grad():
        model.weight.fill_(5.0)
    lookahead(4)  # the last step: the weights become the slow copy (decay 1)
    assert torch.allclose(model.weight, torch.full((1, 2), pulled))


def test_lookahead_averages_batchnorm_statistics_but_not_its_step_count():
    model = nn.BatchNorm1d(3)
    lookahead = Lookahead(model, steps=1, alpha=0.5, total=2)
    assert set(lookahead.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)) + 4.0
    model(x)  # running mean 0.1 x.mean(0), from 0
    lookahead(1)  # decay 0.5 (1/2)^3: the slow copy (still the initial 0) keeps 1/16 of the pull
    assert torch.allclose(model.running_mean, (1 - 1 / 16) * 0.1 * x.mean(0), rtol=1e-6)
    assert model.num_batches_tracked == 1  # a step count is not averaged


def test_a_run_with_lookahead_ends_on_its_slow_weights_and_resumes_as_one_unbroken_run(compose_config, tmp_path):
    """The slow copy is checkpointed: a run stopped by SIGTERM after its first epoch (2 steps: the
    first pull comes at step 3) and resumed ends on the weights of the run that was never stopped."""
    cfg = compose_config("trainer.lookahead_steps=3", "trainer.lookahead_alpha=0.9", "trainer.deterministic=true",
                         "trainer.threads=1", "trainer.epochs=2")
    whole = build_training(cfg)
    fit(whole, tmp_path / "whole", {"config": {}})
    part = build_training(cfg)
    plain, sent = part.schedule, []

    def stopping(epoch: float) -> float:  # the schedule, and a SIGTERM once epoch 1's steps are done
        if epoch >= 1.0 and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        return plain(epoch)

    with pytest.raises(Interrupted):
        fit(dataclasses.replace(part, schedule=stopping), tmp_path / "part", {"config": {}})
    stopped = load_checkpoint(tmp_path / "part" / "last.pt")
    assert stopped["epoch"] == 1 and set(stopped["lookahead"]) < set(stopped["model"])
    assert not torch.equal(stopped["lookahead"]["head.weight"], stopped["model"]["head.weight"])  # no pull yet
    resumed = build_training(cfg)
    fit(resumed, tmp_path / "part", {"config": {}}, resume=stopped)
    state, slow = whole.model.state_dict(), load_checkpoint(tmp_path / "whole" / "last.pt")["lookahead"]
    for name, tensor in resumed.model.state_dict().items():
        assert torch.equal(state[name], tensor), name
        if tensor.is_floating_point():  # after the last step the weights are the slow copy
            assert torch.equal(slow[name], tensor), name
    assert not torch.equal(stopped["lookahead"]["head.weight"], slow["head.weight"])


def test_a_damaged_lookahead_in_a_checkpoint_is_named(tmp_path):
    cli("train", *TINY, "trainer.lookahead_steps=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert parts_fault(state) is None
    name = next(iter(state["lookahead"]))
    state["lookahead"][name] = torch.zeros(7)
    assert parts_fault(state).startswith(f"lookahead: {name} has shape (7,)")
    del state["lookahead"][name]
    assert parts_fault(state) == "lookahead: does not hold the model's floating-point weights and statistics"


# --- test-time augmentation ---------------------------------------------------------------------
def test_flip_translate_weighs_the_mirrored_image_half_and_each_one_pixel_shift_a_quarter():
    images = torch.randn(2, 3, 8, 8)
    pixels = lambda x: x.flatten(1)  # a "model" whose logits are its input: predict shows its views
    mirrored = lambda x: 0.5 * (x + x.flip(-1))
    down_right, up_left = images.roll((1, 1), dims=(-2, -1)), images.roll((-1, -1), dims=(-2, -1))
    expected = 0.5 * mirrored(images) + 0.25 * mirrored(down_right) + 0.25 * mirrored(up_left)
    got = predict(pixels, images, TTA.flip_translate).view_as(images)
    inner = (..., slice(2, -2), slice(2, -2))  # away from the border (reflected there, rolled here)
    assert torch.allclose(got[inner], expected[inner])
    assert torch.allclose(predict(pixels, images, TTA.flip).view_as(images), mirrored(images))


def test_eval_with_flip_translate_writes_its_own_file(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    cli("eval", f"checkpoint={run}", "tta=flip_translate", cwd=tmp_path)
    scores = json.loads((run / "eval" / "best_test_tta-flip_translate.json").read_text())
    assert scores["tta"] == "flip_translate" and scores["images"] == 32


def test_training_evaluates_with_flip_translate(compose_config, tmp_path):
    t = build_training(compose_config("eval.tta=flip_translate"))
    assert t.tta == "flip_translate"
    assert 0.0 <= fit(t, tmp_path)["final_test_acc"] <= 1.0


# --- the triangular schedule --------------------------------------------------------------------
def test_the_triangular_schedule_rises_to_its_peak_then_falls_to_its_end():
    schedule = Triangular(epochs=10, peak_at=0.25, start_fraction=0.2, final_fraction=0.05)
    assert schedule(0) == pytest.approx(0.2) and schedule(2.5) == pytest.approx(1.0)
    assert schedule(1.25) == pytest.approx(0.6) and schedule(10) == pytest.approx(0.05)
    assert schedule(6.25) == pytest.approx(0.525) and schedule(12) == pytest.approx(0.05)


def test_scheduler_triangular_spans_the_run(compose_config):
    t = build_training(compose_config("scheduler=triangular", "trainer.epochs=4"))
    assert t.schedule.epochs == 4 and t.schedule(4) == pytest.approx(0.07) and t.schedule(0.92) == pytest.approx(1.0)


# --- alternating flips ----------------------------------------------------------------------------
def test_training_tells_the_batches_each_epoch_so_alternating_flips_alternate(compose_config, tmp_path):
    """``fit`` sets the epoch before each one's batches (the loader's own test shows what the parity
    does): three epochs mirror each image in the first and third or in the second only."""
    cfg = compose_config("dataset.augmentation.flip=true", "dataset.augmentation.flip_alternating=true",
                         "trainer.epochs=3")
    training = build_training(cfg)
    loader = training.batches.train
    seen = []
    original = loader.set_epoch
    loader.set_epoch = lambda epoch: (seen.append(epoch), original(epoch))  # the real method, recorded
    fit(training, tmp_path / "run")
    assert seen == [1, 2, 3] and loader.epoch == 3
    assert 0 < int(loader.first_flips.sum()) < len(loader.first_flips)


def test_image_folders_refuse_alternating_flips_in_one_line(tmp_path):
    from mgnet_cli.data.imagefolder import FolderData
    from mgnet_cli.errors import ConfigError
    from mgnet_cli.schema.data import AugmentationConfig

    fields = {field.name: None for field in dataclasses.fields(FolderData)}
    folder = FolderData(**fields | {"name": "folder", "classes": ("a", "b"), "image_size": 32, "crop_scale": (0.35, 1.0)})
    with pytest.raises(ConfigError, match="flip_alternating=true: imagefolder's workers draw a new flip every epoch"):
        folder.transform(AugmentationConfig(flip=True, flip_alternating=True))
