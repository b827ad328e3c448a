"""A small MgNet learns the real CIFAR-10 subset on the CPU (5,000 training images, 2,000 test):
above chance after two epochs (33.7 % test accuracy on this machine, chance is 10 %), and its
training loss falls from the first epoch to the second."""

import pytest

from tests.helpers import fit_config as train


# slow (9 s of the quick run's ~200): its two halves are quick tests, reading the real subset
# (tests/data/test_cifar.py::test_real_cifar10_subset) and fit learning images well above chance
# (tests/train/test_loop.py::test_fit_learns_the_synthetic_data); `-m slow` runs it whole
@pytest.mark.slow
def test_small_mgnet_learns_real_cifar10(compose_config, shared_data, tmp_path):
    cfg = compose_config(
        "dataset=cifar10", f"dataset.root={shared_data}", "dataset.download=false",
        "model.channels=[8,16,32]", "model.smoothing_steps=[1,1,1]", "trainer=default",
        "trainer.epochs=2", "trainer.batch_size=64", "trainer.device=cpu", "trainer.checkpoints=false",
        "scheduler=cosine", "scheduler.warmup_epochs=0.3", "optimizer.lr=0.05", tiny=False,
    )
    _, results = train(cfg, tmp_path)
    history = results["history"]
    assert results["best_test_acc"] > 0.25, history  # chance is 0.10
    assert history[-1]["train_loss"] < history[0]["train_loss"]
