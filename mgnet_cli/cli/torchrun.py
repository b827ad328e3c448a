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

    Hydra gives every process its own ``hydra.run.dir`` when the folder's name has the time (to the
    microsecond): rank 0's time goes to every rank, in the pattern of the command line or the
    config (a resume still resolves to the resumed run's folder). Ranks > 0 write no ``.hydra``
    record and no log file, and log warnings and errors only.
    """
    import re
    from datetime import datetime

    import torch.distributed as dist
    from omegaconf import OmegaConf

    from mgnet_cli.train.distributed import broadcast_object

    given = [arg.partition("=")[2].strip("'\"") for arg in argv if arg.startswith("hydra.run.dir=")]
    configured = OmegaConf.to_container(OmegaConf.load(config_dir() / "train.yaml").hydra, resolve=False)
    pattern = given[-1] if given else configured["run"]["dir"]
    extra = []
    if "${now:" in pattern:  # the same command line on every rank: all take this branch
        now = broadcast_object(datetime.now())
        folder = re.sub(r"\$\{now:([^}]*)\}", lambda match: now.strftime(match.group(1)), pattern)
        extra.append(f"hydra.run.dir='{folder}'")
    if dist.get_rank() > 0:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=stdout",
                  "hydra.job_logging.root.level=WARNING"]
    return extra
