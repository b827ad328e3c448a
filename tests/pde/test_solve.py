"""The shared multigrid cycle as a Poisson solver reaches the factors of docs/MGNET.md."""

from functools import partial

import pytest
import torch

from mgnet_cli import schema
from mgnet_cli.cli import config_dir
from mgnet_cli.cli.solve_settings import multigrid_of
from mgnet_cli.cli.solve_outcome import outcome
from mgnet_cli.cycle_shape import CycleShape
from mgnet_cli.pde.hierarchy import PROLONGATIONS, solve_stencil
from mgnet_cli.pde.poisson import Laplacian, right_hand_side
from mgnet_cli.pde.problems import finest_stencil
from mgnet_cli.schema.solve import Coefficient, DiffusionProblemConfig, Dtype, SolverConfig
from mgnet_cli.pde.smoothers import ChebyshevPolynomial, DampedJacobi, RedBlackGaussSeidel
from mgnet_cli.pde.solve import (ROUND_OFF_MARGIN, STALL_CYCLES, Multigrid, asymptotic_factor, build_cycle,
                                 iterate, solve_poisson, stuck)

SMOOTHER_CONFIGS = config_dir() / "solver" / "smoother"

# docs/MGNET.md: asymptotic residual reduction per cycle, any n from 63 to 511
MGNET_FACTORS = [(0.8, 1, 0.35), (0.8, 2, 0.17), (2 / 3, 1, 0.44), (2 / 3, 2, 0.21)]


def factor(n: int, smoother: str = "jacobi", steps: int = 1, omega: float = 0.8,
           cycle: str = "v") -> float:
    factory = {"jacobi": partial(DampedJacobi, omega=omega), "gauss_seidel_rb": RedBlackGaussSeidel,
               "chebyshev": ChebyshevPolynomial}[smoother]
    solver = SolverConfig(cycle=cycle, pre_smooth=steps, post_smooth=steps, tol=1e-10, max_cycles=60)
    result = solve_poisson(n, "random", Multigrid(solver, factory))
    assert result.converged
    return result.convergence_factor


@pytest.mark.parametrize(("omega", "steps", "expected"), MGNET_FACTORS)
def test_jacobi_reaches_the_mgnet_factor_at_two_sizes(omega, steps, expected):
    small, large = factor(63, steps=steps, omega=omega), factor(255, steps=steps, omega=omega)
    assert small == pytest.approx(expected, abs=0.03)
    assert large == pytest.approx(expected, abs=0.03)
    assert large - small < 0.02  # grid-independent: the point of multigrid


@pytest.mark.parametrize("steps", [1, 2])
def test_better_smoothers_beat_jacobi(steps):
    jacobi = factor(127, "jacobi", steps)
    gauss_seidel = factor(127, "gauss_seidel_rb", steps)
    assert gauss_seidel < 0.12 if steps == 1 else gauss_seidel < 0.07
    assert gauss_seidel < 0.6 * jacobi
    if steps == 2:  # a degree-2 Chebyshev polynomial beats two Jacobi steps
        assert factor(127, "chebyshev", steps) < jacobi - 0.015


@pytest.mark.parametrize("smoother", sorted(path.stem for path in SMOOTHER_CONFIGS.glob("*.yaml")))
@pytest.mark.parametrize("cycle", list(CycleShape))
def test_one_cycle_of_every_smoother_and_shape_reduces_the_residual(compose_config, smoother, cycle):
    """Every YAML of configs/solver/smoother/, composed and built as mgnet solve builds it."""
    cfg = compose_config(f"solver/smoother={smoother}", config_name="solve", tiny=False)
    factory = multigrid_of(schema.check(cfg, "solve").solver).smoother
    result = solve_poisson(31, "random", Multigrid(SolverConfig(cycle=cycle, coarsest_n=3, max_cycles=1), factory))
    assert result.cycles == 1
    assert result.relative_residuals[1] < (0.5 if cycle == "backslash" else 0.2)


def test_the_f_cycle_converges_between_the_v_and_the_w_cycle():
    """Poisson n = 63, V(1,1), measured on 2026-12-04: red-black Gauss-Seidel V 0.1027, F 0.06481,
    W 0.06481; Jacobi (0.8) V 0.3553, F 0.34705, W 0.34705. On Poisson the F-cycle reaches the
    W-cycle's factor (to 1e-5) at fewer visits of the coarse levels."""
    for smoother, v_factor in (("gauss_seidel_rb", 0.103), ("jacobi", 0.355)):
        v, f, w = (factor(63, smoother, cycle=cycle) for cycle in "vfw")
        assert v == pytest.approx(v_factor, abs=0.005)
        assert w - 1e-4 <= f < v - 0.005


class CountingSmoother(torch.nn.Module):
    """A level's smoother that counts its calls."""

    def __init__(self, smoother: torch.nn.Module) -> None:
        super().__init__()
        self.smoother, self.calls = smoother, 0

    def forward(self, u, f, residual, A):
        self.calls += 1
        return self.smoother(u, f, residual, A)


@pytest.mark.parametrize(("cycle", "visits"), [("v", [1, 1, 1, 1, 1]), ("f", [1, 2, 3, 4, 4]),
                                               ("w", [1, 2, 4, 8, 8])])
def test_each_shape_visits_level_k_as_its_definition_says(cycle, visits):
    """Five levels (63 to 3): the V-cycle visits each once, the F-cycle level k k + 1 times, the
    W-cycle 2^k times; the exact coarsest solve runs once per visit of the level above it."""
    built, sizes = build_cycle(63, Multigrid(SolverConfig(cycle=cycle, coarsest_n=3)), torch.float64, "cpu")
    for level in built.levels:
        level.smoother = CountingSmoother(level.smoother)
    with torch.inference_mode():
        built(None, right_hand_side("random", 63, torch.float64, "cpu", 0))
    assert sizes == [63, 31, 15, 7, 3]
    assert [level.smoother.calls for level in built.levels] == visits


@pytest.mark.parametrize("n", [3, 15])
def test_on_one_or_two_levels_the_f_and_w_cycles_are_the_v_cycle(n):
    """One level: the direct solve; two: one correction by the exact coarse solve, whatever the shape."""
    f = right_hand_side("random", n, torch.float64, "cpu", 0)
    solved = {}
    for cycle in "vfw":
        built, sizes = build_cycle(n, Multigrid(SolverConfig(cycle=cycle, coarsest_n=7)), torch.float64, "cpu")
        with torch.inference_mode():
            solved[cycle] = built(None, f)
    assert len(sizes) == (1 if n == 3 else 2)
    assert torch.equal(solved["f"], solved["v"]) and torch.equal(solved["w"], solved["v"])
    if n == 3:  # the direct solve: the residual is round-off
        assert torch.linalg.vector_norm(f - Laplacian(1 / 4)(solved["v"])) < 1e-12 * torch.linalg.vector_norm(f)


def test_the_cycle_is_the_networks_class():
    """One cycle for both sides: the solver's is an instance of the very class MgNet's body is."""
    from mgnet_cli.model.mgnet import MgNet

    network = MgNet(smoothing_steps=[1, 1], channels=4)
    cycle, sizes = build_cycle(63, Multigrid(SolverConfig(coarsest_n=7)), torch.float64, "cpu")
    assert type(cycle) is type(network.cycle) and sizes == [63, 31, 15, 7]
    assert {type(level) for level in cycle.levels} == {type(level) for level in network.cycle.levels}


def dense_laplacian(n: int) -> torch.Tensor:
    """-Δ_h as an n^2 x n^2 matrix, built independently of the stencil code (a Kronecker sum)."""
    h = 1.0 / (n + 1)
    ones = torch.ones(n - 1, dtype=torch.float64)
    second = (2 * torch.eye(n, dtype=torch.float64) - torch.diag(ones, 1) - torch.diag(ones, -1)) / h**2
    identity = torch.eye(n, dtype=torch.float64)
    return torch.kron(identity, second) + torch.kron(second, identity)


def test_solution_agrees_with_a_direct_solve():
    n = 31
    result = solve_poisson(n, "random", Multigrid(SolverConfig(coarsest_n=3, tol=1e-10)), seed=5)
    matrix, f = dense_laplacian(n), right_hand_side("random", n, seed=5).flatten()
    exact = torch.linalg.solve(matrix, f)
    u = result.solution.flatten()
    assert result.converged
    assert torch.linalg.vector_norm(f - matrix @ u) <= 1e-10 * torch.linalg.vector_norm(f)
    assert torch.linalg.vector_norm(u - exact) <= 1e-9 * torch.linalg.vector_norm(exact)


def test_sine_error_falls_as_h_squared():
    errors = [solve_poisson(n, "sine", Multigrid(SolverConfig(tol=1e-12))).error_max for n in (31, 63, 127)]
    assert errors[0] < 1e-3
    for coarse, fine in zip(errors, errors[1:]):
        assert coarse / fine == pytest.approx(4.0, abs=0.05)


def test_float32_stops_at_its_round_off_floor_with_the_same_factor():
    result = solve_poisson(127, "random", Multigrid(SolverConfig(tol=1e-12, dtype="float32")))
    assert result.status == "round_off" and result.solution.dtype == torch.float32
    assert 1e-8 < result.relative_residuals[-1] < 1e-4
    assert result.relative_residuals[-1] <= ROUND_OFF_MARGIN * result.round_off_floor
    assert result.convergence_factor == pytest.approx(0.35, abs=0.05)
    assert "raise solver.tol or use solver.dtype=float64" in outcome(result, 1e-12, "float32")


@pytest.mark.parametrize("dtype", list(Dtype))
@pytest.mark.parametrize("rhs", ["random", "sine"])
def test_the_round_off_floor_estimate_is_where_the_residual_stops(dtype, rhs):
    """eps ||A|| ||u|| / ||f|| follows the floor from 2e-15 to 3e-5 (sine: the condition
    number of A, 1.7e3; random: 54), a few times above it (a tol far below any floor)."""
    result = solve_poisson(63, rhs, Multigrid(SolverConfig(tol=1e-30, max_cycles=60, dtype=dtype)))
    lowest = min(result.relative_residuals)
    assert result.status == "round_off"
    assert 0.05 * result.round_off_floor < lowest < 0.5 * result.round_off_floor


def test_the_readme_jumps_example_diverges_and_says_so_not_round_off():
    """README's ``problem.coefficient=jumps solver.prolongation=black_box`` (damped Jacobi): the
    residual turns up at 0.254 and grows by 1.3 a cycle; it used to be called the round-off floor."""
    f = right_hand_side("random", 255, seed=0)
    stencil = finest_stencil(DiffusionProblemConfig(n=255, coefficient=Coefficient.jumps, contrast=1000.0))
    result = solve_stencil(stencil, f, Multigrid(), PROLONGATIONS["black_box"])
    assert result.status == "diverged" and result.cycles == 7 + STALL_CYCLES
    assert min(result.relative_residuals) == pytest.approx(0.254, abs=0.002)
    assert result.convergence_factor > 1.0 and result.round_off_floor < 1e-10
    said = outcome(result, 1e-8, "float64")
    assert said.startswith("the solve diverged: relative residual 0.433 after 12 cycles")
    assert "round-off" not in said


def test_a_cycle_that_changes_nothing_stalls_far_above_round_off():
    f = right_hand_side("random", 31, seed=0)
    A = Laplacian(1.0 / 32)
    u, norms, status = iterate(lambda u, f, residual: torch.zeros_like(f), A, f, tol=1e-8, max_cycles=50)
    assert status == "stalled" and len(norms) == 1 + STALL_CYCLES


def test_stuck_tells_a_stall_from_a_rise():
    assert stuck([1.0, 0.5, 0.6, 0.55, 0.58, 0.57]) is None  # four cycles without a new low
    assert stuck([1.0, 0.5, 0.6, 0.55, 0.58, 0.57, 0.56]) == "stalled"
    assert stuck([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]) == "diverged"


def test_max_cycles_says_how_many_more_cycles_it_needs():
    short = solve_poisson(127, "random", Multigrid(SolverConfig(tol=1e-8, max_cycles=6)))
    said = outcome(short, 1e-8, "float64")
    assert short.status == "max_cycles" and "raise solver.max_cycles" in said
    more = int(said.split("about ")[1].split(" more")[0])
    full = solve_poisson(127, "random", Multigrid(SolverConfig(tol=1e-8, max_cycles=60)))
    assert full.converged and abs(full.cycles - (6 + more)) <= 1


def test_asymptotic_factor_reads_the_second_half():
    assert asymptotic_factor([1.0, 0.5, 0.1, 0.01, 0.001]) == pytest.approx(0.1)
    assert asymptotic_factor([1.0]) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    solver = Multigrid(SolverConfig(tol=1e-10))
    on_gpu, on_cpu = solve_poisson(63, "sine", solver, device="cuda"), solve_poisson(63, "sine", solver)
    assert on_gpu.solution.device.type == "cuda" and on_gpu.cycles == on_cpu.cycles
    assert on_gpu.error_max == pytest.approx(on_cpu.error_max, rel=1e-6)
