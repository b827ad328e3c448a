"""Every option of every config group (configs/<group>/*.yaml) composes, passes its schema and,
where it needs no data files, builds: a new option is tested the day its YAML appears."""

import math

import pytest
import torch
from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli.build import build_training
from tests.conftest import options

# trainer=smoke with the default trainer's epochs: nothing here trains, and a cosine schedule's
# warm-up (5 epochs) must be shorter than the run
SMALL = ["dataset=synthetic", "dataset.num_train=256", "dataset.num_test=16", "trainer=smoke", "trainer.epochs=300"]
TRAIN_OPTIONS = [(group, option) for group in schema.TRAIN_GROUPS for option in options(group)]
SOLVE_OPTIONS = [(group, option) for group in ("problem", "solver/smoother") for option in options(group)]
NEEDS_FILES = {"cifar10", "cifar100", "fashion_mnist", "mnist", "imagefolder"}  # datasets read from disk


def test_the_options_are_enumerated():
    assert {group for group, _ in TRAIN_OPTIONS} == set(schema.TRAIN_GROUPS)
    assert ("smoother", "chebyshev") in TRAIN_OPTIONS and ("solver/smoother", "jacobi") in SOLVE_OPTIONS


@pytest.mark.parametrize("group, option", TRAIN_OPTIONS)
def test_every_training_option_composes_passes_its_schema_and_builds(compose_config, group, option):
    if group == "dataset":  # the option's own keys, then a small synthetic set
        base = [*SMALL[3:], *(SMALL[1:3] if option == "synthetic" else [])]
        base += ["dataset.root=/nonexistent"] if option == "imagefolder" else []
    else:  # a trainer other than smoke keeps the full model: shrunk here (TINY's sizes)
        base = [*SMALL, *(["model.channels=8", "model.smoothing_steps=[1,1]"] if group == "trainer" else [])]
    cfg = compose_config(*base, f"{group}={option}", tiny=False)
    checked = schema.check(schema.typed(OmegaConf.to_container(cfg), "train"), "train")
    assert isinstance(getattr(checked, group), tuple(schema.GROUPS[group].values()))  # its group's schema
    if group == "dataset" and option in NEEDS_FILES:
        return  # its loaders are tested on generated files (tests/data)
    training = build_training(cfg)
    images, labels = next(iter(training.batches.train))
    training.model.train()
    logits = training.model(images)
    assert logits.shape == (len(labels), training.data.num_classes)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    training.optimizer.step()  # the group's optimizer steps the group's model
    assert all(math.isfinite(training.schedule(t)) for t in (0.0, 0.5, 1.0))


@pytest.mark.parametrize("group, option", SOLVE_OPTIONS)
def test_every_solver_option_composes_and_passes_its_schema(compose_config, group, option):
    cfg = compose_config(f"{group}={option}", config_name="solve", tiny=False)
    checked = schema.check(schema.typed(OmegaConf.to_container(cfg), "solve"), "solve")
    node = checked.problem if group == "problem" else checked.solver.smoother
    assert isinstance(node, tuple(schema.GROUPS[group].values()))  # its group's schema, not a loose dict
