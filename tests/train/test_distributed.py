"""Data-parallel training: the ranks' parts of each batch make up a single process's batch, the
evaluation sums count every image once, and two gloo processes take the same step as one.

The two-process tests run real ``torch.distributed`` (gloo on the CPU) in processes started with
``torch.multiprocessing.spawn``; ``tests/cli/test_distributed_cli.py`` runs the command under torchrun.
"""

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import SequentialSampler

from mgnet_cli.cli.build import build_model
from mgnet_cli.data.batches import BatchLoader, Batching, ImageSet
from mgnet_cli.data.imagefolder import RankBatches
from mgnet_cli.data.synthetic import load_synthetic
from mgnet_cli.errors import ConfigError
from mgnet_cli.schema.data import AugmentationConfig
from mgnet_cli.train.distributed import Distributed, StepAgreement, check_batch_sizes, check_sync_bn, sync_batchnorm
from mgnet_cli.train.guards import LossWatch, StopSignal
from mgnet_cli.train.epoch import TrainStep, summed, train_epoch
from mgnet_cli.train.evaluation import evaluate_split

CPU = torch.device("cpu")
IDENTITY = {"mean": (0.0,) * 3, "std": (1 / 255,) * 3}
DATA = {"num_train": 64, "num_test": 33, "num_classes": 10, "image_size": 32, "channels": 3, "seed": 0}  # what both ranks load


def image_set(count: int) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 8, 8), generator=generator, dtype=torch.uint8)
    return ImageSet(images, torch.arange(count))  # label = index: every image can be traced


def rank_loaders(data: ImageSet, batch_size: int, world: int, **options) -> list[BatchLoader]:
    """One loader per rank, each with its own generator seeded alike (as every rank seeds it)."""
    return [BatchLoader(data, Batching(batch_size, device=CPU, shard=(rank, world), **IDENTITY, **options),
                        torch.Generator().manual_seed(3))
            for rank in range(world)]


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("count", [48, 53])  # 53: a final partial batch of 5 (kept for 1 and 2 ranks)
def test_the_ranks_parts_make_up_the_single_process_batches(world, count):
    options = {"shuffle": True, "augmentation": AugmentationConfig(crop_padding=2, flip=True)}
    single = list(rank_loaders(image_set(count), 12, 1, **options)[0])
    loaders = rank_loaders(image_set(count), 12, world, **options)
    parts = [list(loader) for loader in loaders]
    assert {len(loader) for loader in loaders} == {len(p) for p in parts}  # same steps on every rank
    kept = len(single) if count % 12 // world >= 2 or count % 12 == 0 else len(single) - 1
    assert len(parts[0]) == kept
    for step, (images, labels) in enumerate(single[:kept]):
        assert torch.equal(torch.cat([p[step][1] for p in parts]), labels)
        assert torch.equal(torch.cat([p[step][0] for p in parts]), images)  # same crops and flips


@pytest.mark.parametrize("count, batch_size, world", [(11, 4, 3), (9, 4, 3), (33, 64, 2), (1, 4, 2)])
def test_evaluation_parts_hold_every_image_once(count, batch_size, world):
    """The uneven tail: parts differ by one image at most, and a rank with none skips the batch."""
    loaders = rank_loaders(image_set(count), batch_size, world, shuffle=False, min_images=0)
    seen = torch.cat([labels for loader in loaders for _, labels in loader])
    assert sorted(seen.tolist()) == list(range(count))
    assert [len(loader) for loader in loaders] == [len(list(loader)) for loader in loaders]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_folder_batches_follow_the_same_rules(world):
    """RankBatches (the DataLoader path of image folders) splits like BatchLoader."""
    for min_images, count in ((2, 26), (0, 11)):
        folder = [list(RankBatches(SequentialSampler(range(count)), 6, (rank, world), min_images))
                  for rank in range(world)]
        memory = [[labels.tolist() for _, labels in loader]
                  for loader in rank_loaders(image_set(count), 6, world, shuffle=False,
                                             min_images=min_images)]
        assert folder == memory


def test_batch_sizes_and_sync_bn_are_checked():
    world = Distributed(1, 4, 1, CPU)
    with pytest.raises(ConfigError, match="batch_size=30 is the global batch, split across 4 ranks"):
        check_batch_sizes(world, 30, 512)
    with pytest.raises(ConfigError, match="eval_batch_size=2 .* at least 4"):
        check_batch_sizes(world, 32, 2)
    with pytest.raises(ConfigError, match="sync_bn=true needs CUDA.*gloo"):
        check_sync_bn(True, CPU)
    with pytest.raises(ConfigError, match="sync_bn"):
        sync_batchnorm(torch.nn.BatchNorm2d(3), world, True)


# Two gloo processes --------------------------------------------------------------------------

def tiny_model(config: dict) -> torch.nn.Module:
    """The real config's MgNet, shrunk (conftest's TINY), initialised alike in every process."""
    torch.manual_seed(0)
    return build_model(OmegaConf.create(config), 3, 10)


def two_ranks(rank: int, folder: str, config: dict) -> None:
    """One rank: the first batch's loss before any update (BatchNorm in eval mode), one DDP step
    with its train-mode loss, the test-set evaluation, the weight check (also after rank 1 alone
    changes a weight) and what the ranks agree on; saved for the test."""
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    try:
        world = Distributed(rank, 2, rank, CPU)
        model = tiny_model(config)
        batches = load_synthetic(**DATA).batches(16, 8, CPU, None, seed=0, shard=world.shard)
        first = next(iter(batches.train))
        batches.generator.manual_seed(0)  # the epoch below starts from the same order again
        eval_loss = evaluate_split(model, [first], world=world).metrics["loss"]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        step = TrainStep(world.data_parallel(model), optimizer, scheduler, world=world)
        progress = train_epoch(step, batches.train, "step", limit=1)
        world.broadcast_buffers(model)  # as fit does before evaluating
        test = evaluate_split(model, batches.evaluations["test"], world=world).metrics
        report = {"eval_loss": eval_loss, "train_loss": summed(progress, world).metrics()["loss"],
                  "test": test, "in_sync": world.sync_report(model),
                  "weights": {name: tensor.clone() for name, tensor in model.state_dict().items()}}
        with torch.no_grad():
            next(model.parameters()).add_(0.25 if rank == 1 else 0.0)
        report["out_of_sync"] = world.sync_report(model)
        signal, watch = StopSignal(), LossWatch(CPU)  # a signal seen by rank 1, a NaN by rank 0
        signal.received = 15 if rank == 1 else None
        watch.first_bad = torch.tensor(7 if rank == 0 else -1)
        agreement = StepAgreement(world, signal, watch)
        agreement.agree()
        report["agreed"] = (agreement(), agreement.received, int(watch.first_bad))
        torch.save(report, Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.process  # starts two processes (each imports torch): the full run's, not the quick run's
def test_two_gloo_ranks_take_the_single_process_step(compose_config, tmp_path):
    """Two processes, global batch 16 (8 per rank), against one process with the same seed.

    How the first-step losses are compared: before any update, with BatchNorm in eval mode (its
    running statistics, not the batch's), each image's loss does not depend on which rank sees it,
    so the mean over the ranks of the 16 images must equal the single-process loss (to float
    rounding). In train mode each rank normalises its 8 images by their own statistics (no
    SyncBatchNorm on the CPU), so the DDP step is compared with one process that computes the two
    halves' losses and gradients separately and averages them, as DDP does: the losses and the
    weights after the step must agree (to float rounding), and both ranks hold bitwise the same
    weights.
    """
    config = OmegaConf.to_container(compose_config(), resolve=True)
    mp.spawn(two_ranks, args=(str(tmp_path), config), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]

    model = tiny_model(config)
    data = load_synthetic(**DATA)
    single = data.batches(16, 8, CPU, None, seed=0)
    images, labels = next(iter(single.train))
    assert ranks[0]["eval_loss"] == ranks[1]["eval_loss"]
    assert ranks[0]["eval_loss"] == pytest.approx(evaluate_split(model, [(images, labels)]).metrics["loss"], rel=1e-6)

    # the DDP step, by hand: each half's loss (train-mode BatchNorm on its own 8 images), averaged
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    halves = [F.cross_entropy(model(images[part]), labels[part]) for part in (slice(0, 8), slice(8, 16))]
    loss = sum(halves) / 2
    loss.backward()
    optimizer.step()
    assert ranks[0]["train_loss"] == pytest.approx(loss.item(), rel=1e-6)
    for report in ranks:
        assert report["in_sync"] == {"ranks_in_sync": True, "max_rank_difference": 0.0}
        assert report["out_of_sync"] == {"ranks_in_sync": False,
                                         "max_rank_difference": pytest.approx(0.25, abs=1e-6)}
        assert report["agreed"] == (True, 15, 7)  # both stop, at the same step, for the same NaN
    for name, tensor in model.state_dict().items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):  # BatchNorm's
            # statistics: rank 0's come from its half only, the reference saw both halves
            torch.testing.assert_close(ranks[0]["weights"][name], tensor, rtol=1e-5, atol=1e-6)
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name]), name

    # evaluation of the 33 test images (17 + 16) after the step equals one process's
    model.load_state_dict(ranks[0]["weights"])
    expected = evaluate_split(model, data.batches(16, 8, CPU, None, seed=0).evaluations["test"]).metrics
    assert ranks[0]["test"] == ranks[1]["test"] == pytest.approx(expected, rel=1e-6)
