"""Learned-part files (``mgnet solve``'s learned smoother, prolongation, stencil-aware smoother):
weights dense and finite, and the record copied into results.json checked by type and range at
load, so that a bad value is refused before the solve and never loses its results."""

import json

import pytest
import torch

from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.learned_prolongation import LearnedProlongation
from mgnet_cli.pde.learned_smoother import LearnedKernels
from mgnet_cli.schema.solve import LearnedProlongationConfig, LearnedSmootherConfig, SolverConfig, StencilAwareConfig
from mgnet_cli.pde.learning import LearningResult
from mgnet_cli.pde.prolongation_learning import load_prolongation, save_prolongation
from mgnet_cli.pde.smoother_learning import load_learned, save_learned
from mgnet_cli.pde.solve import Multigrid
from mgnet_cli.pde.stencil_smoother import StencilKernelNet
from mgnet_cli.pde.stencil_smoother_learning import load_stencil_smoother, save_stencil_smoother
from tests.helpers import mgnet_solve, one_line_error

MULTIGRID = Multigrid(SolverConfig(coarsest_n=3))


def smoother_file(path, change=lambda state: None):
    """A learned-smoother file as ``save_learned`` writes it (damped Jacobi's kernel), then ``change``d."""
    save_learned(path, LearningResult(LearnedKernels(), LearnedSmootherConfig(train_sizes=[15]), [0.5], [(1, 0.3)], time_s=1.0),
                 MULTIGRID)
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


RECORDS = {  # a crafted record -> what the one line says
    "a tensor setting": (lambda s: s["settings"].__setitem__("steps", torch.ones(2)),
                         "settings steps is not a non-negative integer"),
    "a NaN in the cycle": (lambda s: s["cycle"].__setitem__("omega", float("nan")), "cycle is not a dict of numbers"),
    "an unknown setting": (lambda s: s["settings"].__setitem__("callback", "os.system"), "settings is not a dict of"),
    "a grid too large": (lambda s: s["settings"].__setitem__("train_sizes", [10**6]), "train_sizes is not a list of grid"),
    "a bool as a count": (lambda s: s["cycle"].__setitem__("pre_smooth", True), "pre_smooth, post_smooth or coarsest_n"),
    "a cycle shape of code": (lambda s: s["cycle"].__setitem__("shape", "os.system"), "its shape not one of v, w"),
    "infinite losses": (lambda s: s.__setitem__("losses", [float("inf")]), "losses is not a list of finite numbers"),
    "settings a list": (lambda s: s.__setitem__("settings", [1, 2]), "settings is not a dict"),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_a_learned_smoother_record_is_checked_at_load(tmp_path, name):
    change, message = RECORDS[name]
    load_learned(smoother_file(tmp_path / "honest.pt"))  # the honest file loads
    path = smoother_file(tmp_path / "crafted.pt", change)
    with pytest.raises(MgnetError) as refused:
        load_learned(path)
    assert f"{path} holds a damaged record of its training: " in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize("sizes, kernels", [([15, 15], 2), ([-1], 1), ([True], 1), ((15,), 1)])
def test_kernel_sizes_must_be_distinct_grid_sizes(tmp_path, sizes, kernels):
    path = smoother_file(tmp_path / "k.pt", lambda s: s.update(sizes=sizes, kernels=[torch.zeros(3, 3)] * kernels))
    with pytest.raises(MgnetError, match="holds no usable kernels: sizes must be distinct grid sizes"):
        load_learned(path)


def test_sparse_kernels_are_refused(tmp_path):
    path = smoother_file(tmp_path / "k.pt", lambda s: s.__setitem__("kernels", [torch.eye(3).to_sparse()]))
    with pytest.raises(MgnetError, match="kernels must be finite floating-point numbers"):
        load_learned(path)


def prolongation_file(path, change=lambda state: None, settings=LearnedProlongationConfig(train_sizes=[15], hidden=4)):
    result = LearningResult(LearnedProlongation(hidden=4), settings, [0.5], [(1, 0.3)])
    save_prolongation(path, result, MULTIGRID)
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda s: s["settings"].__setitem__("fields", ["lognormal", "os.system"]), "fields is not one of lognormal"),
    (lambda s: s["settings"].__setitem__("base", 3), "base is not one of black_box, bilinear"),
    (lambda s: s.__setitem__("hidden", True), "hidden=True"),
    (lambda s: s["weights"].__setitem__("net.0.bias", s["weights"]["net.0.bias"].to_sparse()), "not a dense one"),
    (lambda s: s["weights"]["net.0.bias"].fill_(float("nan")), "net.0.bias holds NaN"),
])
def test_a_learned_prolongation_file_is_checked_whole(tmp_path, change, message):
    load_prolongation(prolongation_file(tmp_path / "honest.pt"))
    with pytest.raises(MgnetError, match=message.replace("(", r"\(")):
        load_prolongation(prolongation_file(tmp_path / "crafted.pt", change))


def test_a_stencil_aware_file_whose_fields_are_not_kinds_is_refused_before_they_are_used(tmp_path):
    result = LearningResult(StencilKernelNet(hidden=4), StencilAwareConfig(train_sizes=[15], hidden=4))
    path = tmp_path / "s.pt"
    save_stencil_smoother(path, result, MULTIGRID)
    state = torch.load(path, weights_only=True)
    state["settings"]["fields"] = 5  # was iterated as the kinds of the check problems
    torch.save(state, path)
    with pytest.raises(MgnetError, match="settings fields is not a list of 1 to 64 entries"):
        load_stencil_smoother(path, MULTIGRID)


def test_a_crafted_record_never_loses_a_solve(tmp_path):
    """The settings go into results.json after the solve: a tensor among them is refused first."""
    path = smoother_file(tmp_path / "crafted.pt", lambda s: s["settings"].__setitem__("seed", torch.zeros(1)))
    run = tmp_path / "run"
    done = mgnet_solve("solver/smoother=learned", f"solver.smoother.learning.checkpoint={path}", "problem.n=15",
                       "solver.coarsest_n=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert "settings seed is not a non-negative integer" in one_line_error(done, "solve")
    assert not (run / "results.json").exists()
    honest = smoother_file(tmp_path / "honest.pt")
    done = mgnet_solve("solver/smoother=learned", f"solver.smoother.learning.checkpoint={honest}", "problem.n=15",
                       "solver.coarsest_n=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "results.json").read_text())["learned_smoother"]["settings"]["train_sizes"] == [15]


@pytest.mark.parametrize("make, settings_type, largest", [
    (lambda hidden: LearnedProlongation(hidden=hidden), LearnedProlongationConfig, 4096),
    (lambda hidden: StencilKernelNet(hidden=hidden), StencilAwareConfig, 1024),
])
def test_every_width_the_schema_trains_is_a_width_its_file_loads(make, settings_type, largest):
    """A part trained at the widest hidden its schema allows reads back from its state; one wider is
    refused by the schema and by the loader alike (the bound written once, in the schema)."""
    assert settings_type.LARGEST_HIDDEN == largest
    settings_type(hidden=largest)  # allowed to train
    widest = make(largest)
    assert type(widest).from_state(widest.state()).hidden == largest
    with pytest.raises(ValueError, match="hidden"):
        settings_type(hidden=largest + 1)
    state = widest.state() | {"hidden": largest + 1}
    with pytest.raises(ValueError, match=f"expected 1..{largest}"):
        type(widest).from_state(state)
