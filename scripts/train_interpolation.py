"""Trains the learned AMG interpolation (mgnet_cli/amg/interpolation_learning.py) and prints what it
buys: two-grid and V-cycle convergence factors, learned against classical, on held-out problems of
the training sizes, on larger unseen grids and on families it never saw (docs/amg.md, "Learned
interpolation").

    PYTHONPATH=. python scripts/train_interpolation.py --save learned_interpolation.pt
    PYTHONPATH=. python scripts/train_interpolation.py --weights learned_interpolation.pt  # measure only

(``mgnet solve problem=matrix problem.amg.interpolation=learned`` learns the same network by the same
keys, under ``problem.amg.learning``, when no weights file is given.)

Every factor is of the error with a zero right-hand side from a random start: the two-grid cycle's
by power iterations with an exact coarse solve (``two_grid_factor``), the V(1,1) cycle's (Gauss-Seidel,
``problem.amg``'s defaults, no CG) as the mean reduction over the last half of 30 cycles. One thread.
"""

import argparse
import logging
import sys
import tempfile
import typing
from dataclasses import MISSING, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch

from mgnet_cli.amg.interpolation_learning import (HELD_OUT_SEED, classical_parts, family_matrix, learn_interpolation,
                                                  save_interpolation, two_grid_factor)
from mgnet_cli.amg.learned_interpolation import learned_interpolation, load_interpolation
from mgnet_cli.amg.settings import AmgSettings, SetupSettings
from mgnet_cli.amg.solver import setup
from mgnet_cli.pde.solve import asymptotic_factor
from mgnet_cli.schema import rules
from mgnet_cli.schema.solve import InterpolationFamily, InterpolationLearningConfig

log = logging.getLogger("train_interpolation")
CYCLES = 30


def arguments() -> tuple[argparse.Namespace, InterpolationLearningConfig]:
    """The command line and the training keys it gives (each --<key> of ``InterpolationLearningConfig``,
    its default and help the schema's; a value out of range: one line, exit 2)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for setting in fields(InterpolationLearningConfig):
        default = setting.default_factory() if setting.default is MISSING else setting.default
        listed = isinstance(default, list)
        parser.add_argument(f"--{setting.name}", type=typing.get_args(setting.type)[0] if listed else setting.type,
                            default=default, nargs="+" if listed else None, help=setting.metadata["help"])
    parser.add_argument("--weights", type=Path, help="measure this weights file instead of training")
    parser.add_argument("--save", type=Path, help="write the trained network here")
    parser.add_argument("--sizes-measured", type=int, nargs="+", default=[31, 63, 127])
    parser.add_argument("--families-measured", type=InterpolationFamily, nargs="+", default=list(InterpolationFamily))
    args = parser.parse_args()
    try:
        settings = InterpolationLearningConfig(**{setting.name: getattr(args, setting.name)
                                                  for setting in fields(InterpolationLearningConfig)})
    except rules.Invalid as error:
        parser.error(f"--{error}")
    return args, settings


def v_cycle_factor(A, settings: AmgSettings, interpolate=None) -> tuple[float, int]:
    """The V-cycle's asymptotic factor on ``A u = 0`` from a random start, and its levels."""
    cycle, hierarchy = setup(A, settings, interpolate=interpolate)
    u = torch.from_numpy(np.random.default_rng(0).standard_normal(A.shape[0]))
    f = torch.zeros_like(u)
    norms = [torch.linalg.vector_norm(u).item()]
    with torch.inference_mode():
        for _ in range(CYCLES):
            u = cycle(u, f)
            norms.append(torch.linalg.vector_norm(u).item())
            if norms[-1] < 1e-200:
                break
    return asymptotic_factor(norms), len(hierarchy.A)


def measure(family: str, n: int, net) -> dict[str, float]:
    A = family_matrix(str(family), n, HELD_OUT_SEED + n)
    S, is_c, P = classical_parts(A, SetupSettings())
    learned = learned_interpolation(net, A, S, is_c, SetupSettings().truncation)
    classical_v, levels = v_cycle_factor(A, AmgSettings(krylov="none"))
    learned_v, _ = v_cycle_factor(A, AmgSettings(krylov="none", interpolation="learned"),
                                  partial(learned_interpolation, net))
    return {"two-grid classical": two_grid_factor(A, P), "two-grid learned": two_grid_factor(A, learned),
            "V classical": classical_v, "V learned": learned_v, "levels": levels}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    torch.set_num_threads(1)
    args, settings = arguments()
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights
        if weights is None:
            result = learn_interpolation(settings)
            tail = max(1, len(result.losses) // 10)
            log.info("trained %d steps in %.0f s; loss (an estimate of the two-grid factor) first %.4f, last tenth %.4f",
                     settings.steps, result.time_s, result.losses[0], sum(result.losses[-tail:]) / tail)
            weights = args.save or Path(scratch) / "learned_interpolation.pt"
            save_interpolation(weights, result)
            log.info("weights: %s", weights)
        net, state = load_interpolation(weights)
        trained_on = state.get("settings", {})
        log.info("trained on %s, n = %s", ", ".join(trained_on.get("families", [])),
                 ", ".join(map(str, trained_on.get("train_sizes", []))))
        print("| problem | n | levels | two-grid classical | two-grid learned | V(1,1) classical | V(1,1) learned |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for family in args.families_measured:
            for n in args.sizes_measured:
                row = measure(family, n, net)
                print(f"| {family} | {n} | {row['levels']} | {row['two-grid classical']:.3f} | "
                      f"{row['two-grid learned']:.3f} | {row['V classical']:.3f} | {row['V learned']:.3f} |",
                      flush=True)


if __name__ == "__main__":
    main()
