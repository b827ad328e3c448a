"""``mgnet train`` under torchrun: the ranks of one run share its folder, and only rank 0 writes."""

import os
import sys

from mgnet_cli.cli import config_dir


def launched_world_size() -> int:
    """How many processes torchrun started (1 without torchrun); read before importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank in a torchrun (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def refuse_outside_training(name: str, argv: list[str]) -> None:
    """Under torchrun only ``mgnet train`` (one run, not a sweep) makes sense: one line, exit 2."""
    problem = None
    if name != "train":
        problem = f"mgnet {name} runs in one process: start it without torchrun"
    elif any(arg in ("-m", "--multirun") for arg in argv):
        problem = ("a sweep (-m) cannot run under torchrun: launch one torchrun per job, or sweep "
                   "with one GPU per job (README: Multiple GPUs and clusters)")
    if problem:
        print(f"mgnet {name}: error: {problem}", file=sys.stderr)
        sys.exit(2)


def rank_overrides(argv: list[str]) -> list[str]:
    """What makes the ranks of one torchrun one run: the same folder, written by rank 0 only.

    Each process resolving ``hydra.run.dir`` itself would give every rank its own folder (the
    folder's name has the time, to the microsecond): rank 0 composes the command line's config,
    resolves its ``hydra.run.dir`` (a resume: the resumed run's folder) and every rank runs in that
    folder. Ranks > 0 write no ``.hydra`` record and no log file, and log warnings and errors only.
    """
    import torch.distributed as dist

    from mgnet_cli.train.distributed import broadcast_object
    from mgnet_cli.train.guards import hydra_quoted

    folder = broadcast_object(run_folder(argv) if dist.get_rank() == 0 else None)
    extra = [f"hydra.run.dir={hydra_quoted(folder)}"]
    if dist.get_rank() > 0:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=stdout",
                  "hydra.job_logging.root.level=WARNING"]
    return extra


def run_folder(argv: list[str]) -> str:
    """``hydra.run.dir`` of ``mgnet train <argv>``, composed and resolved as Hydra will (now)."""
    from hydra import compose, initialize_config_dir

    from mgnet_cli.cli.preflight import overrides_of

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return str(compose("train", overrides=overrides_of(argv), return_hydra_config=True).hydra.run.dir)
