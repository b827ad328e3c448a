"""mgnet's training speed against the authors' MgNet, side by side in one run (issue 24, point 3).

The authors' model file is GPL-licensed and is not part of this repository: point ``--authors`` at
your copy of their ``mgnet.py`` (github.com/XuTeam/MgNet_Code). Both models are the same network,
MgNet[2,2,2,2] at width 64 with one B per level (521,418 parameters on CIFAR-10, checked), trained
with SGD (lr 0.1, momentum 0.9, weight decay 5e-4) and cross-entropy at batch 128 in fp32, on the
same batches; theirs as written (NCHW) and in channels-last, the faster counted. Rounds interleave
the three, and every figure is the best round, so the ratio compares work done under the same
conditions.

    .venv/bin/python scripts/bench_authors.py --authors ~/MgNet_Code/mgnet.py --threads 2 --wait-idle 5
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Bench, compose_config, machine, settle  # noqa: E402  (scripts/bench.py)

WIDTH, STEPS, BATCH = 64, [2, 2, 2, 2], 128
PARAMETERS = 521_418  # MgNet[2,2,2,2]-64, one B per level, CIFAR-10 (docs/results.md, mgnet info)


def authors_model(path: Path) -> nn.Module:
    """Their ``MgNet`` built as their CIFAR-10 command line builds it, at our width and steps."""
    spec = importlib.util.spec_from_file_location("authors_mgnet", path)
    if spec is None or spec.loader is None:
        sys.exit(f"--authors {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = SimpleNamespace(num_ite=STEPS, num_channel_u=WIDTH, num_channel_f=WIDTH, wise_B=False, dataset="cifar10")
    model = module.MgNet(args, num_classes=10)
    count = sum(p.numel() for p in model.parameters())
    if count != PARAMETERS:
        sys.exit(f"--authors {path}: their model has {count:,} parameters, expected {PARAMETERS:,}")
    return model


class Theirs:
    """Their model and a plain training step (as their training script does it)."""

    def __init__(self, model: nn.Module, batches: list, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(memory_format=fmt).train()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.batches = [(images.contiguous(memory_format=fmt), labels) for images, labels in batches]

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(images), labels)
        loss.backward()
        self.optimizer.step()

    def run(self) -> float:
        """Seconds per step, over the batches."""
        start = time.perf_counter()
        for images, labels in self.batches:
            self.step(images, labels)
        return (time.perf_counter() - start) / len(self.batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", type=Path, required=True, help="the authors' mgnet.py (not shipped)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: mgnet's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round and model")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="start each round only after the machine was idle this long")
    args = parser.parse_args()
    if not args.authors.is_file():
        sys.exit(f"--authors {args.authors}: no such file (their mgnet.py is not part of this repository)")
    overrides = [f"model.channels={WIDTH}", f"model.smoothing_steps=[{','.join(map(str, STEPS))}]",
                 "trainer.device=cpu", "trainer.precision=fp32", f"trainer.batch_size={BATCH}"]
    if args.threads:
        overrides.append(f"trainer.threads={args.threads}")
    ours = Bench(compose_config(overrides, args.steps, BATCH), args.steps)
    if args.threads:
        torch.set_num_threads(args.threads)  # for both models, whatever the build chose
    if sum(p.numel() for p in ours.model.parameters()) != PARAMETERS:
        sys.exit("mgnet's model does not have the authors' parameter count")
    plain = [(images.float().contiguous(), labels) for images, labels in ours.ready]
    theirs = {"theirs as written (NCHW)": Theirs(authors_model(args.authors), plain, channels_last=False),
              "theirs in channels-last": Theirs(authors_model(args.authors), plain, channels_last=True)}
    best = {"mgnet (defaults: channels-last)": float("inf"), **{name: float("inf") for name in theirs}}
    for _ in range(args.rounds):
        if args.wait_idle:
            settle(args.wait_idle)
        best["mgnet (defaults: channels-last)"] = min(best["mgnet (defaults: channels-last)"],
                                                      ours.train(ours.ready) / ours.steps)
        for name, model in theirs.items():
            best[name] = min(best[name], model.run())
    print(f"{machine(torch.device('cpu'))}; torch {torch.__version__}; fp32, batch {BATCH}, "
          f"MgNet{STEPS}-{WIDTH} ({PARAMETERS:,} parameters); best of {args.rounds} rounds of {args.steps} steps\n")
    print("| model | training images/s |\n| --- | ---: |")
    for name, seconds in best.items():
        print(f"| {name} | {BATCH / seconds:.1f} |")
    their_best = min(seconds for name, seconds in best.items() if name.startswith("theirs"))
    print(f"\nmgnet / the faster of theirs: **{their_best / best['mgnet (defaults: channels-last)']:.2f}x** (target >= 2.0)")


if __name__ == "__main__":
    main()
