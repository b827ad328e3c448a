"""``mgnet solve solver.smoother=learned``: learns a tiny smoother, saves it, reloads it."""

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mgnet_cli import schema
from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.solve_settings import PARTS, learned_smoother, load_or_learn, multigrid_of, training_settings
from mgnet_cli.pde.learning import measure_size
from mgnet_cli.cli.preflight import check_overrides
from mgnet_cli.errors import ConfigError, MgnetError
from tests.helpers import mgnet_solve

# One thread in both runs: by default the free cores choose the count, and the count changes the order of a
# CPU reduction and so the last bits that the reload is compared on (CI failed on it under load).
TINY = ["solver/smoother=learned", "problem.n=63", "solver.device=cpu", "solver.threads=1",
        "solver.smoother.learning.train_sizes=[15]", "solver.smoother.learning.steps=10", "solver.smoother.learning.batch=4",
        "solver.smoother.learning.cycles=3", "solver.smoother.learning.measure_every=5",
        "solver.smoother.learning.optimizer.lr=0.05"]


def test_learns_writes_the_checkpoint_and_curves_then_reloads_it(tmp_path):
    first, second = tmp_path / "learn", tmp_path / "reload"
    done = mgnet_solve(*TINY, f"hydra.run.dir={first}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    learned = json.loads((first / "results.json").read_text())
    checkpoint = first / "learned_smoother.pt"
    assert learned["status"] == "converged" and learned["learned_smoother"]["learned_here"]
    assert learned["learned_smoother"]["checkpoint"] == str(checkpoint) and checkpoint.is_file()
    assert learned["convergence_factor"] < 0.3  # damped Jacobi, where it starts: 0.35
    assert "solver.smoother.learning.checkpoint=" in done.stderr + done.stdout  # says how to reuse it

    events = EventAccumulator(str(first))
    events.Reload()
    assert [event.step for event in events.Scalars("learned/loss")] == list(range(1, 11))
    factors = events.Scalars("learned/factor")  # measured on n = 31, never trained on
    assert [event.step for event in factors] == [0, 5, 10]
    assert factors[0].value == pytest.approx(0.35, abs=0.03) and factors[-1].value < 0.3
    assert {"learned/lr", "learned/batch_factor", "residual/relative"} <= set(events.Tags()["scalars"])

    done = mgnet_solve("solver/smoother=learned", "problem.n=63", "solver.device=cpu", "solver.threads=1",
                       f"solver.smoother.learning.checkpoint={checkpoint}", f"hydra.run.dir={second}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reloaded = json.loads((second / "results.json").read_text())
    assert not reloaded["learned_smoother"]["learned_here"]
    assert reloaded["learned_smoother"]["kernels"] == learned["learned_smoother"]["kernels"]
    assert reloaded["convergence_factor"] == pytest.approx(learned["convergence_factor"], rel=1e-12)
    assert not (second / "learned_smoother.pt").exists()


def test_a_bad_learned_value_exits_2_with_one_line(tmp_path):
    done = mgnet_solve("solver/smoother=learned", "solver.smoother.learning.train_sizes=[100]",
                       f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "solver.smoother.learning.train_sizes=[100]" in lines[0], done.stderr
    assert not (tmp_path / "run" / "learned_smoother.pt").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("solver.smoother.learning.shared=maybe", "solver.smoother.learning.shared=maybe: give true or false"),
    ("solver.smoother.learning.train_sizes=63", "solver.smoother.learning.train_sizes=63: give a value of type list"),
    ("solver.smoother.learning.train_sizes=[511]", "solver.smoother.learning.train_sizes=[511]: give a non-empty list of integers from 3 to 255"),
    ("solver.smoother.learning.steps=0", "solver.smoother.learning.steps=0: give an integer from 1"),
    ("solver.smoother.learning.cycles=two", "solver.smoother.learning.cycles=two: give an integer"),
    ("solver.smoother.learning.optimizer.lr=-1", "solver.smoother.learning.optimizer.lr=-1.0: give a finite number in (0, inf)"),
    ("solver.smoother.learning.optimizer._target_=torch.optim.Nothing", "solver.smoother.learning.optimizer._target_=torch.optim.Nothing: use one of"),
    ("solver.smoother.learning.scheduler.epochs=many", "solver.smoother.learning.scheduler.epochs=many: give an integer"),
])
def test_bad_learned_values_name_the_key(override, message):
    """The schema refuses them before anything is learned (tests/schema covers every key)."""
    register_configs()
    with pytest.raises(ConfigError) as refused:
        check_overrides(config_dir(), "solve", ["solver/smoother=learned", override])
    assert str(refused.value).startswith(message)


def learn_or_load(cfg, run_dir):
    """The learned smoother of a composed ``solve`` config, as ``mgnet solve`` loads or learns it."""
    solver = schema.check(cfg, "solve").solver
    multigrid = multigrid_of(solver)
    learning = solver.smoother.learning
    return load_or_learn(learned_smoother(multigrid), learning, learning.checkpoint, multigrid, run_dir,
                         torch.device("cpu"))


def test_training_grids_must_be_above_the_coarsest(compose_config, tmp_path):
    cfg = compose_config("solver/smoother=learned", "solver.smoother.learning.train_sizes=[7,31]", config_name="solve",
                         tiny=False)
    with pytest.raises(ConfigError, match="7 is not above solver.coarsest_n=7"):
        learn_or_load(cfg, tmp_path)
    assert not list(tmp_path.iterdir())  # refused before learning anything


def test_the_prolongations_training_grids_must_be_coarsened(compose_config, tmp_path):
    """The part found by its class in the registry, its key and what it does in the message."""
    cfg = compose_config("problem=diffusion", "solver.prolongation=learned", "solver.learned_prolongation.train_sizes=[7]",
                         config_name="solve", tiny=False)
    solver = schema.check(cfg, "solve").solver
    with pytest.raises(ConfigError, match=r"^solver.learned_prolongation.train_sizes=\[7\]: 7 is not above "
                                          r"solver.coarsest_n=7, so no level of it is coarsened$"):
        load_or_learn(PARTS["LearnedProlongation"], solver.learned_prolongation, None, multigrid_of(solver), tmp_path,
                      torch.device("cpu"))
    assert not list(tmp_path.iterdir())


def test_the_default_settings_are_valid_and_a_missing_checkpoint_is_named(compose_config, tmp_path):
    cfg = compose_config("solver/smoother=learned", config_name="solve", tiny=False)
    solver = schema.check(cfg, "solve").solver
    settings = training_settings(learned_smoother(multigrid_of(solver)), solver.smoother.learning, 7)
    assert settings.train_sizes == [31, 63] and settings.shared and measure_size(settings) == 127
    cfg = compose_config("solver/smoother=learned", f"solver.smoother.learning.checkpoint={tmp_path / 'no.pt'}",
                         config_name="solve", tiny=False)
    with pytest.raises(MgnetError, match="no.pt does not exist"):
        learn_or_load(cfg, tmp_path)


TINY_PROLONGATION = ["problem=diffusion", "problem.n=63", "solver.prolongation=learned", "solver.threads=1",
                     "solver/smoother=gauss_seidel_rb", "solver.learned_prolongation.train_sizes=[15]",
                     "solver.learned_prolongation.steps=3", "solver.learned_prolongation.measure_every=3"]


def test_learns_a_prolongation_saves_it_and_reloads_it(tmp_path):
    first, second = tmp_path / "learn", tmp_path / "reload"
    done = mgnet_solve(*TINY_PROLONGATION, f"hydra.run.dir={first}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    learned = json.loads((first / "results.json").read_text())
    checkpoint = first / "learned_prolongation.pt"
    assert learned["learned_prolongation"]["learned_here"] and checkpoint.is_file()
    assert learned["prolongation"] == "learned" and learned["status"] == "converged"
    assert [entry["step"] for entry in learned["learned_prolongation"]["factors"]] == [3]
    done = mgnet_solve(*TINY_PROLONGATION, f"solver.learned_prolongation.checkpoint={checkpoint}",
                       f"hydra.run.dir={second}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reloaded = json.loads((second / "results.json").read_text())
    assert not reloaded["learned_prolongation"]["learned_here"]
    assert reloaded["convergence_factor"] == pytest.approx(learned["convergence_factor"], rel=1e-12)


@pytest.mark.parametrize(("override", "message"), [
    ("solver.learned_prolongation.base=cubic", "solver.learned_prolongation.base=cubic: use one of"),
    ("solver.learned_prolongation.train_sizes=[7]", "solver.learned_prolongation.train_sizes=[7]"),
    ("solver.learned_prolongation.hidden=0", "solver.learned_prolongation.hidden=0"),
    ("solver.learned_prolongation.steps=0", "solver.learned_prolongation.steps=0"),
])
def test_a_bad_learned_prolongation_value_exits_2_with_one_line(tmp_path, override, message):
    done = mgnet_solve(*TINY_PROLONGATION, override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr


def test_a_checkpoint_that_is_not_a_prolongation_exits_2(tmp_path):
    from mgnet_cli.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.pt", {"kind": "learned_smoother", "weights": {}})
    done = mgnet_solve(*TINY_PROLONGATION, f"solver.learned_prolongation.checkpoint={tmp_path / 'other.pt'}",
                       f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "no usable learned prolongation" in lines[0], done.stderr


@pytest.fixture(scope="module")
def learned_file(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("learned") / "run"
    done = mgnet_solve("solver/smoother=learned", "solver.smoother.learning.steps=3", "solver.smoother.learning.measure_every=3",
                       "problem.n=63", f"hydra.run.dir={run}", cwd=run.parent)
    assert done.returncode == 0, done.stderr
    return run / "learned_smoother.pt"


def crafted_kernels(learned_file: Path, folder: Path, value: float) -> Path:
    state = torch.load(learned_file, weights_only=True)
    state["kernels"] = [kernel.clone().fill_(0.0).index_put_((torch.tensor(1), torch.tensor(1)),
                                                           torch.tensor(value, dtype=kernel.dtype))
                        for kernel in state["kernels"]]
    path = folder / "crafted.pt"
    torch.save(state, path)
    return path


def test_a_diverging_solve_says_so_and_exits_non_zero(learned_file, tmp_path):
    kernels = crafted_kernels(learned_file, tmp_path, 6.0)  # 6 D^-1: a smoother that amplifies
    run = tmp_path / "run"
    done = mgnet_solve("solver/smoother=learned", f"solver.smoother.learning.checkpoint={kernels}", "problem.n=63",
                       f"hydra.run.dir={run}", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "the solve diverged" in lines[0], done.stderr
    assert json.loads((run / "results.json").read_text())["status"] == "diverged"


def test_kernels_that_are_not_finite_are_refused(learned_file, tmp_path):
    kernels = crafted_kernels(learned_file, tmp_path, float("nan"))
    done = mgnet_solve("solver/smoother=learned", f"solver.smoother.learning.checkpoint={kernels}", "problem.n=63",
                       f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2 and "the kernels must be finite floating-point numbers" in done.stderr


def test_a_learned_smoother_that_blew_up_is_neither_saved_nor_used(tmp_path):
    run = tmp_path / "run"
    done = mgnet_solve("solver/smoother=learned", "solver.smoother.learning.steps=3", "solver.smoother.learning.measure_every=3",
                       "solver.smoother.learning.optimizer.lr=1e4", "solver.smoother.learning.scheduler.warmup_epochs=0",
                       "problem.n=63", f"hydra.run.dir={run}", cwd=tmp_path)
    assert done.returncode == 2 and "learning the smoother blew up" in done.stderr, done.stderr
    assert not (run / "learned_smoother.pt").exists() and not (run / "results.json").exists()
