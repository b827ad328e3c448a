"""Learning the stencil-aware smoother, saving it, loading it, and refusing one that diverges.

The training is the learned prolongation's (``FieldTask`` in prolongation_learning.py, learning.py's
loop): unrolled Galerkin V cycles on random problems, here with the network inside the smoother and a
fixed prolongation rule. A network is used only if its cycle contracts: after training, and again
after loading, the factor on held-out problems of every kind it was trained on must be below 1
(``CHECK_N`` after loading), else MgnetError and nothing is saved or used. Once trained it is in
eval mode, where each level checks its taps lower the energy (stencil_smoother.py).
"""

import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.hierarchy import PROLONGATIONS, ProlongationRule
from mgnet_cli.pde.learning import LearningResult, MakeOptimizer, Part, cycle_record, learn, load_part, save_part
from mgnet_cli.pde.prolongation_learning import FieldTask, held_out_factors
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.pde.stencil_smoother import StencilAwareSmoother, StencilKernelNet
from mgnet_cli.schema.solve import StencilAwareConfig

CHECK_N = 31  # the grid a loaded network is checked on


def with_net(multigrid: Multigrid, net: StencilKernelNet) -> Multigrid:
    """``multigrid`` with the stencil-aware smoother and this network."""
    return replace(multigrid, smoother=partial(StencilAwareSmoother, net=net))


def galerkin_rule(multigrid: Multigrid) -> ProlongationRule:
    """The fixed rule the smoother is learned and checked with: ``multigrid``'s, Black Box if learned."""
    return PROLONGATIONS.get(str(multigrid.config.prolongation), PROLONGATIONS["black_box"])


def refuse_divergent(factors: dict[str, float], where: str) -> None:
    """MgnetError unless every factor is finite and below 1."""
    bad = {kind: value for kind, value in factors.items() if not (math.isfinite(value) and value < 1)}
    if bad:
        shown = ", ".join(f"{kind} {value:.3g}" for kind, value in bad.items())
        raise MgnetError(f"the stencil-aware smoother does not converge {where} (factor {shown}): "
                         "nothing saved or used; lower solver.smoother.learning.optimizer.lr or its steps")


def learn_stencil_smoother(settings: StencilAwareConfig, multigrid: Multigrid, make_optimizer: MakeOptimizer,
                           schedule: Callable[[int], float], run_dir: Path | None = None,
                           device: torch.device | str = "cpu") -> LearningResult:
    """Trains a ``StencilKernelNet`` for ``multigrid``'s cycle with its ``galerkin_rule``, on the CPU
    (the grids are tiny; ``device``: where the solve runs); refused if its held-out factors are not
    all below 1."""
    torch.manual_seed(settings.seed)
    net, rule = StencilKernelNet(settings.hidden), galerkin_rule(multigrid)
    multigrid = with_net(multigrid, net)
    result = learn(FieldTask(net, settings, multigrid, rule, "stencil-aware smoother"), settings, make_optimizer,
                   schedule, run_dir)
    net.eval()  # from here on guarded, as when loaded
    n = 2 * max(settings.train_sizes) + 1
    result.held_out = held_out_factors(rule, multigrid, n, settings.seed + 1, [str(kind) for kind in settings.fields])
    refuse_divergent(result.held_out, f"on the held-out problems (n={n})")
    return result


def save_stencil_smoother(path: Path, result: LearningResult, multigrid: Multigrid) -> None:
    """The network's weights and the record of its training, weights-only."""
    save_part(path, result, cycle_record(multigrid, prolongation=str(multigrid.config.prolongation)))


def load_stencil_smoother(path: Path, multigrid: Multigrid) -> tuple[StencilKernelNet, dict[str, Any]]:
    """The network of a ``save_stencil_smoother`` checkpoint, checked to converge in ``multigrid``'s
    cycle (its ``galerkin_rule``) on ``CHECK_N`` held-out problems of the kinds it was trained on, and
    the checkpoint's other entries."""
    net, state = load_part(path, StencilKernelNet.from_state, StencilAwareConfig, "stencil-aware smoother")
    kinds = state.get("settings", {}).get("fields") or [str(kind) for kind in StencilAwareConfig().fields]
    with torch.inference_mode():
        factors = held_out_factors(galerkin_rule(multigrid), with_net(multigrid, net), CHECK_N, seed=1, kinds=kinds)
    refuse_divergent(factors, f"on the check grid n={CHECK_N} ({path})")
    return net, state


PART = Part(StencilAwareSmoother.__name__, "solver.smoother.learning", "stencil_aware_smoother",
            load=load_stencil_smoother, learn=learn_stencil_smoother, save=save_stencil_smoother, use=with_net)
