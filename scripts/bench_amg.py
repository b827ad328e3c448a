"""PyAMG beside mgnet's Galerkin multigrid, on the same problems and fields, in one run.

    .venv/bin/python scripts/bench_amg.py                          # the table of docs/benchmarks.md
    .venv/bin/python scripts/bench_amg.py --learned PATH.pt        # a learned prolongation to reuse
    .venv/bin/python scripts/bench_amg.py --stencil-aware PATH.pt  # a stencil-aware smoother to reuse
    .venv/bin/python scripts/bench_amg.py --quick                  # small grids: a smoke run
    .venv/bin/python scripts/bench_amg.py --jumps-time --time-size 1023   # jumps to 1e-8: AMG options, anchors
    .venv/bin/python scripts/bench_amg.py --setup-sizes 255 511 1023 2047   # only the setup cost, hypre beside
    .venv/bin/python scripts/bench_amg.py --meshes                 # PyAMG's airfoil and knot meshes: every AMG
    .venv/bin/python scripts/bench_amg.py --goals --sizes 63 255 --per-level   # issue 23's goals: option sets, cost

Factors: V(1,1) from u = 0, standard-normal g, to a relative residual of 1e-10 (at most
``--max-cycles``), the geometric mean reduction over the second half of the cycles, as mgnet
solve reports it. PyAMG: ruge_stuben_solver (default; CF=('RS', {'second_pass': True})) and
smoothed_aggregation_solver with their default smoothers (symmetric Gauss-Seidel), V cycles.
mgnet AMG: mgnet_cli/amg on the same CSR matrix (its defaults: Ruge-Stueben with the second pass,
classical interpolation, V(1,1) with
Gauss-Seidel forward before and backward after the coarse correction), alone and in CG.
The stencil-aware smoother (stencil_smoother.py) is trained here with the default
``solver.smoother.learning`` settings (StencilAwareConfig) unless ``--stencil-aware`` gives a checkpoint. Times: n =
``--time-size`` to 1e-8, setup included (the learned parts' training is not; it is printed apart),
both sides on one CPU thread. Needs the ``[bench]`` extra (pyamg, scipy).
hypre BoomerAMG (PETSc's defaults, and HMIS coarsening with extended+i interpolation; as a cycle and
in CG) runs on the same matrix in Debian's Python (``/usr/bin/python3.11`` with ``python3-petsc4py``,
``PETSC_DIR`` as below unless set), through scripts/hypre_anchor.py, one process per matrix and one
thread (``OMP_NUM_THREADS=1``); where that Python or its petsc4py is absent, one note says so and the
hypre columns are left out.
"""

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import numpy as np
    import pyamg
    import scipy.sparse as sparse
except ImportError:
    print("bench_amg.py needs PyAMG and scipy: pip install 'mgnet[bench]'", file=sys.stderr)
    sys.exit(2)

import torch

from mgnet_cli.amg.matrices import stencil_matrix
from mgnet_cli.amg.settings import AmgSettings
from mgnet_cli.amg.setup import Hierarchy
from mgnet_cli.cycle import MultigridCycle
from mgnet_cli.pde.hierarchy import PROLONGATIONS, build_galerkin_cycle
from mgnet_cli.pde.krylov import conjugate_gradients
from mgnet_cli.pde.lines import ZebraLineGaussSeidel
from mgnet_cli.pde.poisson import right_hand_side
from mgnet_cli.pde.problems import finest_stencil
from mgnet_cli.schema.solve import (AnisotropicProblemConfig, Coefficient, DiffusionProblemConfig, PoissonProblemConfig,
                                     SolverConfig)
from mgnet_cli.pde.smoothers import RedBlackGaussSeidel
from mgnet_cli.pde.solve import Multigrid, asymptotic_factor
from mgnet_cli.pde.stencil_smoother_learning import with_net

log = logging.getLogger("bench_amg")
ANCHORS = ["PyAMG RS", "PyAMG RS 2nd pass", "PyAMG SA", "PyAMG RS 2nd pass, CG"]
PYAMG_ONE_COMMAND = "PyAMG's one command: pyamg.solve (SA, energy-minimising P, symmetric GS), CG"
MGNET_ONE_COMMAND = "mgnet's one command: mgnet solve problem=matrix (its defaults), CG"
AMG = ["mgnet AMG RS, GS", "mgnet AMG RS, GS, CG"]  # mgnet_cli/amg: the same CSR matrix as PyAMG's
HMIS_EXT_I = {"second_pass": False, "interpolation": "extended_i"}  # hypre's HMIS ext+i on one process
AMG_OPTION_SETS = {  # --jumps-time: mgnet AMG's option sets against the anchors (docs/amg.md's comparison)
    "mgnet AMG defaults: RS 2nd pass, classical, GS, CG": {},
    "mgnet AMG RS 2nd pass, ext+i, GS, CG": {"interpolation": "extended_i"},
    "mgnet AMG RS 1st pass (HMIS), ext+i, GS, CG": HMIS_EXT_I,
    "mgnet AMG PMIS, ext+i, GS, CG": {"splitting": "pmis", "interpolation": "extended_i"},
    "mgnet AMG aggregation, GS, CG": {"coarsening": "aggregation"},
    "mgnet AMG HMIS, ext+i, F(1,1) GS, CG": HMIS_EXT_I | {"cycle": "f"},
    "mgnet AMG HMIS, ext+i, F(2,2) l1-Jacobi, CG": HMIS_EXT_I | {"smoother": "l1_jacobi", "pre_smooth": 2,
                                                                   "post_smooth": 2, "cycle": "f"},
    "mgnet AMG RS 2nd pass, classical, F(2,2) GS, CG": {"pre_smooth": 2, "post_smooth": 2, "cycle": "f"},
}
GOAL_SETS = {  # --goals: issue 23's convergence goals (jumps, rotated), each set as a cycle and in CG, its cost beside
    "defaults: RS 2nd pass, classical, V(1,1) GS": {},
    "RS 2nd pass, ext+i, V(1,1) GS": {"interpolation": "extended_i"},
    "HMIS, ext+i, F(1,1) GS": AMG_OPTION_SETS["mgnet AMG HMIS, ext+i, F(1,1) GS, CG"],
    "HMIS, ext+i, F(1,1) symmetric GS": HMIS_EXT_I | {"smoother": "symmetric_gauss_seidel", "cycle": "f"},
    "HMIS, ext+i, F(2,2) l1-Jacobi": AMG_OPTION_SETS["mgnet AMG HMIS, ext+i, F(2,2) l1-Jacobi, CG"],
    "RS 2nd pass, classical, F(2,2) GS": AMG_OPTION_SETS["mgnet AMG RS 2nd pass, classical, F(2,2) GS, CG"],
    "RS 2nd pass, direct, F(1,1) GS": {"interpolation": "direct", "cycle": "f"},
    "RS 2nd pass, classical, W(2,2) GS": {"pre_smooth": 2, "post_smooth": 2, "cycle": "w"},
}
OURS = [("bilinear Galerkin, GS-RB", "bilinear", RedBlackGaussSeidel),
        ("Black Box, GS-RB", "black_box", RedBlackGaussSeidel),
        ("Black Box, line GS", "black_box", ZebraLineGaussSeidel),
        ("learned, GS-RB", "learned", RedBlackGaussSeidel),
        ("learned, line GS", "learned", ZebraLineGaussSeidel)]
STENCIL_AWARE = "Black Box, stencil-aware"  # its smoother is the network: added to OURS in main()
WITH_CG = "Black Box, line GS, CG"  # conjugate gradients, one symmetric cycle per iteration
HYPRE_PYTHON = Path("/usr/bin/python3.11")  # Debian's: apt-get install python3-petsc4py python3-scipy
PETSC_DIR = "/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real"
HYPRE_ANCHOR = Path(__file__).resolve().with_name("hypre_anchor.py")


@dataclass
class Run:
    """One solve: residual norms with the time (s, from the start of the setup) of each."""

    norms: list[float]
    times: list[float]
    setup_s: float

    def factor(self) -> float:
        return asymptotic_factor(self.norms)

    def time_to(self, tol: float) -> float | None:
        for norm, at in zip(self.norms, self.times):
            if norm <= tol * self.norms[0]:
                return at
        return None


def run_pyamg(name: str, A: sparse.csr_matrix, b: np.ndarray, tol: float, max_cycles: int) -> Run:
    start = time.perf_counter()
    accel = "cg" if name.endswith(", CG") else None
    if name == PYAMG_ONE_COMMAND:  # what pyamg.solve(A, b) builds for a symmetric matrix, and its CG
        hierarchy = pyamg.blackbox.solver(A, pyamg.blackbox.solver_configuration(A, verb=False))
    elif name == "PyAMG SA":
        hierarchy = pyamg.smoothed_aggregation_solver(A)
    elif name.startswith("PyAMG RS 2nd pass"):
        hierarchy = pyamg.ruge_stuben_solver(A, CF=("RS", {"second_pass": True}))
    else:
        hierarchy = pyamg.ruge_stuben_solver(A)
    setup = time.perf_counter() - start
    times = [setup]
    norms: list[float] = []
    hierarchy.solve(b, x0=np.zeros_like(b), tol=tol, maxiter=max_cycles, cycle="V", residuals=norms,
                    accel=accel, callback=lambda x: times.append(time.perf_counter() - start))
    return Run(norms, times[:len(norms)], setup)


def run_amg(name: str, A: sparse.csr_matrix, b: np.ndarray, tol: float, max_cycles: int,
            options: dict | None = None) -> Run:
    """mgnet's algebraic multigrid (amg/setup.py's defaults: Ruge-Stueben with the second pass,
    classical interpolation; V(1,1) with forward / backward Gauss-Seidel; ``options``: AmgSettings'
    keys that differ), as a cycle or in CG (``name`` ends with ", CG")."""
    from mgnet_cli.amg.settings import AmgSettings
    from mgnet_cli.amg.solver import setup as amg_setup

    f = torch.from_numpy(b)
    with torch.inference_mode():
        start = time.perf_counter()
        cycle, _ = amg_setup(A, AmgSettings(**(options or {})))
        return timed_cycles(cycle, f, tol, max_cycles, "cg" if name.endswith(", CG") else "none", start)


def anchor_environment() -> dict[str, str]:
    """The anchor's environment: PETSc's folder (``PETSC_DIR`` if set) and one OpenMP thread."""
    return {**os.environ, "PETSC_DIR": os.environ.get("PETSC_DIR", PETSC_DIR), "OMP_NUM_THREADS": "1"}


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def hypre_probe(python: Path = HYPRE_PYTHON) -> tuple[bool, str]:
    """(whether ``python`` runs scripts/hypre_anchor.py, a line: its versions, or the note why not)."""
    if not python.is_file():
        return False, (f"hypre skipped: {python} is absent (Debian: apt-get install python3-petsc4py "
                       f"python3-scipy)")
    try:
        done = subprocess.run([str(python), str(HYPRE_ANCHOR), "--versions"], env=anchor_environment(),
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"hypre skipped: {python} did not run: {error}"
    if done.returncode != 0:
        return False, f"hypre skipped: {python} cannot run the anchor ({last_line(done.stderr)})"
    found = json.loads(done.stdout)
    return True, f"hypre {found['hypre']} through PETSc {found['petsc']} (petsc4py {found['petsc4py']}), {python}"


def parse_anchor(text: str) -> dict[str, Run]:
    """scripts/hypre_anchor.py's JSON: one Run per solve, by name (``hypre BoomerAMG``, ``..., CG``)."""
    found = json.loads(text)
    return {name: Run([float(norm) for norm in run["norms"]], [float(at) for at in run["times"]],
                      float(run["setup_s"])) for name, run in found["runs"].items()}


def run_hypre(A: sparse.csr_matrix, b: np.ndarray, tol: float, max_cycles: int,
              python: Path = HYPRE_PYTHON) -> dict[str, Run]:
    """BoomerAMG's four solves of ``A x = b`` (scripts/hypre_anchor.py in ``python``): the matrix and
    right-hand side go through a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench_amg_") as folder:
        matrix, rhs = Path(folder) / "A.npz", Path(folder) / "b.npy"
        sparse.save_npz(matrix, A.tocsr())
        np.save(rhs, b)
        done = subprocess.run([str(python), str(HYPRE_ANCHOR), str(matrix), str(rhs), "--tol", str(tol),
                               "--max-its", str(max_cycles)], env=anchor_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"hypre_anchor.py failed: {last_line(done.stderr)}")
    return parse_anchor(done.stdout)


def timed_cycles(cycle: MultigridCycle, f: torch.Tensor, tol: float, max_cycles: int, krylov: str,
                 start: float, clock: Callable[[], float] = time.perf_counter) -> Run:
    """Cycles (or CG with the cycle, ``krylov="cg"``) from u = 0 until ``tol``, each cycle's time
    since ``start`` recorded; setup is the time until now (``clock``: wall, or ``time.process_time``)."""
    setup = clock() - start
    A, u, residual = cycle.levels[0].A, None, f
    norms, times = [torch.linalg.vector_norm(f).item()], [setup]
    if krylov == "cg":
        _, norms, _ = conjugate_gradients(cycle, A, f, tol, max_cycles,
                                          each=lambda: times.append(clock() - start))
        return Run(norms, times, setup)
    for _ in range(max_cycles):  # iterate() without its early stops: the same loop, timed per cycle
        u = cycle(u, f, residual)
        residual = A.residual(u, f)
        norms.append(torch.linalg.vector_norm(residual).item())
        times.append(clock() - start)
        if norms[-1] <= tol * norms[0] or not math.isfinite(norms[-1]):
            break
    return Run(norms, times, setup)


def run_ours(stencil: torch.Tensor, f: torch.Tensor, prolongation: str, smoother: Callable, rule_of: dict,
             tol: float, max_cycles: int, krylov: str = "none") -> Run:
    options = Multigrid(SolverConfig(prolongation=prolongation, krylov=krylov), smoother)
    with torch.inference_mode():
        start = time.perf_counter()
        cycle, _ = build_galerkin_cycle(stencil, options, rule_of[prolongation])
        return timed_cycles(cycle, f, tol, max_cycles, krylov, start)


def jumps_matrix(n: int) -> sparse.csr_matrix:
    """The jumps problem's matrix (1/10³ per box, seed 0) at ``n``, as CSR."""
    return stencil_matrix(finest_stencil(DiffusionProblemConfig(n=n, coefficient=Coefficient.jumps))).tocsr()


def jumps_time_runs(n: int, tol: float, max_cycles: int, hypre: bool,
                    sets: dict[str, dict] = AMG_OPTION_SETS) -> dict[str, Run]:
    """The jumps problem (1/10³ per box) at ``n``: PyAMG RS 2nd pass (cycle, CG), hypre's four solves
    and each of mgnet AMG's option sets (``sets``: AMG_OPTION_SETS or some), on the same matrix and
    right-hand side."""
    b = right_hand_side("random", n, seed=0).numpy().ravel()
    return algebraic_runs(jumps_matrix(n), b, ["PyAMG RS 2nd pass", "PyAMG RS 2nd pass, CG"], sets, tol, max_cycles,
                          hypre)


def algebraic_runs(A: sparse.csr_matrix, b: np.ndarray, anchors: list[str], sets: dict[str, dict], tol: float,
                   max_cycles: int, hypre: bool) -> dict[str, Run]:
    """On one matrix and right-hand side, in this order: the PyAMG ``anchors``, hypre's four solves
    (``hypre``), and mgnet AMG with each option set of ``sets`` (name -> AmgSettings keys that differ;
    a name ending ", CG" runs in CG)."""
    runs = {name: run_pyamg(name, A, b, tol, max_cycles) for name in anchors}
    if hypre:
        runs.update(run_hypre(A, b, tol, max_cycles))
    for name, options in sets.items():
        runs[name] = run_amg(name, A, b, tol, max_cycles, options)
        log.info("%s: setup %.2f s, factor %s", name, runs[name].setup_s, cell(runs[name]))
    return runs


def rotated_matrix(n: int) -> sparse.csr_matrix:
    """The rotated anisotropy's matrix (ε = 1e-3, θ = π/4) at ``n``, as CSR."""
    return stencil_matrix(finest_stencil(AnisotropicProblemConfig(n=n, epsilon=1e-3, theta=math.pi / 4))).tocsr()


def smoothing_work(hierarchy: Hierarchy, settings: AmgSettings) -> float:
    """Smoothing sweeps per cycle in sweeps over the finest matrix: each smoothed level's stored entries
    (relative to the finest's) times its visits per cycle (V once, F k + 1 times, W 2^k on level k; the
    coarsest is solved, not smoothed) times the sweeps per visit (pre + post, twice for symmetric GS)."""
    sweeps = (settings.pre_smooth + settings.post_smooth) * (2 if settings.smoother == "symmetric_gauss_seidel" else 1)
    visits = {"v": lambda k: 1, "f": lambda k: k + 1, "w": lambda k: 2 ** k}[str(settings.cycle)]
    return sweeps * sum(visits(k) * A.nnz for k, A in enumerate(hierarchy.A[:-1])) / hierarchy.A[0].nnz


class SparseSolve(torch.nn.Module):
    """An exact coarse solve by SciPy's sparse LU: the two-grid cycle's bottom."""

    def __init__(self, matrix: sparse.csr_matrix) -> None:
        import scipy.sparse.linalg as sparse_linalg

        super().__init__()
        self.lu = sparse_linalg.splu(matrix.tocsc())

    def forward(self, u, f, residual, A):
        correction = torch.from_numpy(self.lu.solve(residual.numpy()))
        return correction if u is None else u + correction


TWO_GRID_ROWS = 70_000  # the exact coarse solve of a two-grid factor only up to this many coarse rows


def level_factors(cycle: MultigridCycle, hierarchy: Hierarchy, max_cycles: int) -> list[tuple[float | None, float]]:
    """Where the error survives, per level k above the coarsest: (the two-grid factor on A_k, the coarse
    problem solved exactly, or None above TWO_GRID_ROWS coarse rows; the cycle's factor from level k
    down), each the cycle repeated on A_k u = g, g standard normal (seed 0), from u = 0. A two-grid
    factor near the whole cycle's: that level's smoother and interpolation leave the error; a cycle
    factor well above the two-grid one: the coarser levels solve its coarse problem too loosely."""
    from mgnet_cli.cycle import Level

    found = []
    for depth in range(len(cycle.levels) - 1):
        level, coarse = cycle.levels[depth], hierarchy.A[depth + 1]
        g = torch.from_numpy(np.random.default_rng(0).standard_normal(hierarchy.A[depth].shape[0]))
        two_grid = None
        if coarse.shape[0] <= TWO_GRID_ROWS:
            bottom = Level(cycle.levels[depth + 1].A, SparseSolve(coarse))
            two_grid = timed_cycles(MultigridCycle([level, bottom], cycle.shape), g, 1e-10, max_cycles, "none",
                                    time.perf_counter()).factor()
        below = MultigridCycle(list(cycle.levels)[depth:], cycle.shape)
        found.append((two_grid, timed_cycles(below, g, 1e-10, max_cycles, "none", time.perf_counter()).factor()))
    return found


def goal_rows(label: str, A: sparse.csr_matrix, b: np.ndarray, max_cycles: int, sets: dict[str, dict],
              per_level: bool) -> tuple[list[str], list[str]]:
    """Each of ``sets`` (AmgSettings' keys) on ``A x = b``: one setup, the cycle repeated and CG with it;
    a cost row (levels, operator complexity, smoothing work per cycle, setup, seconds per cycle, time to
    1e-8 with the setup; CPU seconds of this process, ``time.process_time``, so that other jobs on a
    shared host do not count) beside the factors, and (``per_level``) a row of level_factors."""
    from mgnet_cli.amg.solver import setup as amg_setup

    costs, levels = [], []
    f = torch.from_numpy(b)
    for name, options in sets.items():
        settings = AmgSettings(**options)
        with torch.inference_mode():
            start = time.process_time()
            cycle, hierarchy = amg_setup(A, settings)
            setup_s = time.process_time() - start  # both runs' clocks start that long before them
            runs = [timed_cycles(cycle, f, 1e-10, max_cycles, krylov, time.process_time() - setup_s, time.process_time)
                    for krylov in ("none", "cg")]
            found = level_factors(cycle, hierarchy, max_cycles) if per_level else []
        per_cycle = [(run.times[-1] - run.times[0]) / (len(run.norms) - 1) for run in runs]
        to_tol = [run.time_to(1e-8) for run in runs]
        cells = [label, name, f"{len(hierarchy.A)}", f"{hierarchy.operator_complexity():.2f}",
                 f"{smoothing_work(hierarchy, settings):.1f}", f"{runs[0].setup_s:.2f}",
                 f"{per_cycle[0]:.3f} / {per_cycle[1]:.3f}", f"{cell(runs[0])} / {cell(runs[1])}"]
        cells += [f"{total:.2f}" if total is not None else f"not in {len(run.norms) - 1}"
                  for run, total in zip(runs, to_tol)]
        costs.append("| " + " | ".join(cells) + " |")
        log.info("%s", costs[-1])
        if per_level:
            two_grids = " ".join("–" if two is None else f"{two:.2f}" for two, _ in found)
            levels.append(f"| {label} | {name} | {two_grids} | {' '.join(f'{down:.2f}' for _, down in found)} |")
    return costs, levels


GOAL_COLUMNS = ["problem", "mgnet AMG set", "levels", "operator complexity", "smoothing work / cycle",
                "setup CPU s", "CPU s / cycle (cycle / CG)", "factor: cycle / CG", "cycle CPU s to 1e-8",
                "CG CPU s to 1e-8"]


MESHES = ("airfoil", "knot")  # PyAMG's example meshes (pyamg.gallery.load_example): SPD finite-element matrices
SYMMETRIC = {"smoother": "symmetric_gauss_seidel"}  # a forward and a backward sweep on each side: PyAMG's default cycle
MESH_OPTION_SETS = {  # --meshes: besides AMG and AMG_OPTION_SETS, the cycle with PyAMG's smoothing work
    "mgnet AMG symmetric GS": SYMMETRIC,
    "mgnet AMG symmetric GS, CG": SYMMETRIC,
    "mgnet AMG symmetric GS, ext+i": SYMMETRIC | {"interpolation": "extended_i"},
    "mgnet AMG symmetric GS, ext+i, CG": SYMMETRIC | {"interpolation": "extended_i"},
}


def mesh_matrix(name: str) -> sparse.csr_matrix:
    """One of PyAMG's example meshes' matrices (airfoil: 260 rows, knot: 239), as CSR: data shipped
    with PyAMG, built by no code of mgnet's."""
    return sparse.csr_matrix(pyamg.gallery.load_example(name)["A"], dtype=np.float64)


def mesh_runs(name: str, tol: float, max_cycles: int, hypre: bool) -> dict[str, Run]:
    """Every algebraic method on a mesh's matrix, one standard-normal right-hand side (seed 0): the
    PyAMG anchors, hypre's four solves, mgnet AMG's defaults (cycle, CG), its option sets and
    MESH_OPTION_SETS."""
    A = mesh_matrix(name)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    sets = dict.fromkeys(AMG, {}) | AMG_OPTION_SETS | MESH_OPTION_SETS
    return algebraic_runs(A, b, ANCHORS, sets, tol, max_cycles, hypre)


def one_command_matrices(sizes: list[int], aniso: int) -> list[tuple[str, sparse.csr_matrix]]:
    """Every matrix of the benchmark, for --one-command: the grid problems (lognormal, jumps and
    Poisson at ``sizes``, grid-aligned and rotated anisotropy at ``aniso``) and PyAMG's meshes."""
    rows = [(label, stencil_matrix(finest_stencil(problem)).tocsr())
            for label, problem in problems(sizes, aniso, epsilons=(1.0, 0.01))]
    rows += [(f"Poisson, n={n}", stencil_matrix(finest_stencil(PoissonProblemConfig(n=n))).tocsr()) for n in sizes]
    return rows + [(f"{name} ({mesh_matrix(name).shape[0]} rows)", mesh_matrix(name)) for name in MESHES]


def problems(sizes: list[int], aniso: int, epsilons: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
             ) -> list[tuple[str, PoissonProblemConfig]]:
    rows = [(f"lognormal σ=1, n={n}", DiffusionProblemConfig(n=n)) for n in sizes]
    rows += [(f"jumps 1/10³, n={n}", DiffusionProblemConfig(n=n, coefficient=Coefficient.jumps)) for n in sizes]
    rows += [(f"anisotropic ε={eps:g}, θ=0, n={aniso}", AnisotropicProblemConfig(n=aniso, epsilon=eps))
             for eps in epsilons]
    rows.append((f"rotated ε=1e-3, θ=π/4, n={aniso}",
                 AnisotropicProblemConfig(n=aniso, epsilon=1e-3, theta=math.pi / 4)))
    return rows


def all_runs(problem: PoissonProblemConfig, ours: list, rule_of: dict, tol: float, max_cycles: int,
             hypre: bool = False) -> dict[str, Run]:
    """Every method on one problem: the same stencil, the same right-hand side (``hypre``: with
    BoomerAMG's four solves)."""
    stencil = finest_stencil(problem)
    f = right_hand_side("random", problem.n, seed=0)
    runs = algebraic_runs(stencil_matrix(stencil), f.numpy().ravel(), ANCHORS, dict.fromkeys(AMG, {}), tol,
                          max_cycles, hypre)
    for label, prolongation, smoother in ours:
        if prolongation in rule_of:
            runs[label] = run_ours(stencil, f, prolongation, smoother, rule_of, tol, max_cycles)
    runs[WITH_CG] = run_ours(stencil, f, "black_box", ZebraLineGaussSeidel, rule_of, tol, max_cycles, "cg")
    return runs


def learned_rule(path: str | None, steps: int, save: Path | None = None) -> tuple[Callable, str]:
    """The learned prolongation from ``path``, or trained here; and a line saying which."""
    from mgnet_cli.pde.prolongation_learning import learn_prolongation, load_prolongation
    from mgnet_cli.schema.solve import LearnedProlongationConfig
    from mgnet_cli.train.schedules import WarmupCosine

    if path is not None:
        model, state = load_prolongation(Path(path))
        return model, f"learned prolongation: {path} (trained in {state.get('time_s', 0):.0f} s)"
    settings = LearnedProlongationConfig(steps=steps)  # mgnet solve's defaults
    options = Multigrid(smoother=RedBlackGaussSeidel)
    schedule = WarmupCosine(steps, settings.scheduler.warmup_epochs, settings.scheduler.final_fraction)
    result = learn_prolongation(settings, options, lambda p: torch.optim.Adam(p, lr=settings.optimizer.lr), schedule)
    if save is not None:
        from mgnet_cli.pde.prolongation_learning import save_prolongation

        save_prolongation(save, result, options)
    return result.model, (f"learned prolongation: trained here, {steps} steps at n = 31, "
                          f"{result.time_s:.0f} s (not in the times below)")


def stencil_aware_smoother(path: str | None, quick: bool) -> tuple[Callable, str]:
    """The stencil-aware smoother from ``path``, or trained here as ``mgnet solve`` would (with
    the default ``solver.smoother.learning``, StencilAwareConfig; ``quick``: 3 steps); and a line saying which."""
    from mgnet_cli.schema.solve import StencilAwareConfig
    from mgnet_cli.pde.stencil_smoother_learning import learn_stencil_smoother, load_stencil_smoother
    from mgnet_cli.train.schedules import WarmupCosine

    options = Multigrid(SolverConfig(prolongation="black_box"))
    if path is not None:
        net, state = load_stencil_smoother(Path(path), options)
        return with_net(options, net).smoother, f"stencil-aware smoother: {path} (trained in {state.get('time_s', 0):.0f} s)"
    settings = StencilAwareConfig(steps=3) if quick else StencilAwareConfig()  # mgnet solve's defaults
    schedule = WarmupCosine(settings.steps, settings.scheduler.warmup_epochs, settings.scheduler.final_fraction)
    result = learn_stencil_smoother(settings, options, lambda p: torch.optim.Adam(p, lr=settings.optimizer.lr), schedule)
    return with_net(options, result.model).smoother, (
        f"stencil-aware smoother: trained here, {settings.steps} steps at n = 31, {result.time_s:.0f} s")


def cell(run: Run) -> str:
    factor = run.factor()
    return f"{factor:.3f}" if math.isfinite(factor) and factor < 10 else "diverges"


def factor_table(rows: list[tuple[str, dict[str, Run]]]) -> list[str]:
    methods = list(rows[0][1])
    lines = ["| problem | " + " | ".join(methods) + " |", "| --- " * (len(methods) + 1) + "|"]
    for label, runs in rows:
        lines.append(f"| {label} | " + " | ".join(cell(runs[name]) for name in methods) + " |")
    return lines


def time_table(rows: list[tuple[str, dict[str, Run]]], tol: float, factors: bool = False) -> list[str]:
    """Setup, cycles and total time to ``tol`` per problem and method (``factors``: and the factor)."""
    lines = ["| problem | method | setup s | cycles to 1e-8 | total s to 1e-8 |" + (" factor |" if factors else ""),
             "| --- " * (5 + factors) + "|"]
    for label, runs in rows:
        for name, run in runs.items():
            total = run.time_to(tol)
            cycles = next((k for k, norm in enumerate(run.norms) if norm <= tol * run.norms[0]), None)
            lines.append(f"| {label} | {name} | {run.setup_s:.2f} | {cycles if cycles is not None else '-'} | "
                         f"{f'{total:.2f}' if total is not None else f'not reached in {len(run.norms) - 1}'} |"
                         + (f" {cell(run)} |" if factors else ""))
    return lines


def hypre_setups(matrix: Path, python: Path = HYPRE_PYTHON) -> dict[str, float]:
    """BoomerAMG's setup seconds on the matrix saved at ``matrix``, one per configuration
    (scripts/hypre_anchor.py ``--setup-only``: ``KSPSetUp`` timed in the anchor's process)."""
    done = subprocess.run([str(python), str(HYPRE_ANCHOR), str(matrix), "--setup-only"], env=anchor_environment(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"hypre_anchor.py failed: {last_line(done.stderr)}")
    return {name: float(seconds) for name, seconds in json.loads(done.stdout)["setup_s"].items()}


def mgnet_setup(A: sparse.csr_matrix) -> tuple[float, float, object]:
    """mgnet AMG's default setup of ``A``: (hierarchy s, cycle build s, the hierarchy)."""
    from mgnet_cli.amg.settings import AmgSettings
    from mgnet_cli.amg.solver import build_cycle, hierarchy_of

    with torch.inference_mode():
        start = time.perf_counter()
        hierarchy = hierarchy_of(A, AmgSettings())
        built = time.perf_counter()
        build_cycle(hierarchy, AmgSettings())
        return built - start, time.perf_counter() - built, hierarchy


def pyamg_setup(A: sparse.csr_matrix) -> float:
    """Seconds of PyAMG's Ruge-Stueben setup with the second pass (the splitting mgnet's default uses)."""
    start = time.perf_counter()
    pyamg.ruge_stuben_solver(A, CF=("RS", {"second_pass": True}))
    return time.perf_counter() - start


def setup_table(sizes: list[int], repeats: int = 2, python: Path = HYPRE_PYTHON) -> list[str]:
    """Setup time against the size of the jumps matrix (1/10³ per box): mgnet AMG (defaults; the
    hierarchy, i.e. strength, splitting, interpolation and Galerkin, and the cycle's build, i.e.
    operators, Gauss-Seidel factors and the coarsest Cholesky, timed apart), PyAMG RS 2nd pass and,
    where Debian's petsc4py runs, hypre BoomerAMG's two configurations, on the same matrix. Each
    size's setups run interleaved ``repeats`` times, the least of each kept; seconds per million
    entries show the growth. The first line is hypre's versions, or the note why its columns are absent."""
    hypre, note = hypre_probe(python)
    names: list[str] = []  # hypre's configurations, as its anchor names them
    rows = []
    for n in sizes:
        A = jumps_matrix(n)
        best: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="bench_amg_") as folder:
            matrix = Path(folder) / "A.npz"
            if hypre:
                sparse.save_npz(matrix, A)
            for _ in range(repeats):  # interleaved, so a busy stretch of the shared host hits all alike
                hierarchy_s, build_s, hierarchy = mgnet_setup(A)
                if hierarchy_s + build_s < best.get("mgnet", math.inf):
                    best.update(mgnet=hierarchy_s + build_s, hierarchy=hierarchy_s, build=build_s)
                best["PyAMG"] = min(best.get("PyAMG", math.inf), pyamg_setup(A))
                for name, seconds in (hypre_setups(matrix, python) if hypre else {}).items():
                    best[name] = min(best.get(name, math.inf), seconds)
                    names += [] if name in names else [name]
                log.info("n = %d, best so far: %s", n, ", ".join(f"{key} {value:.3f} s" for key, value in best.items()))
        per_million = 1e6 / A.nnz
        cells = [f"{n}", f"{A.shape[0]:,}", f"{A.nnz:,}", f"{best['hierarchy']:.2f}", f"{best['build']:.2f}",
                 f"{best['mgnet']:.3f}", f"{best['mgnet'] * per_million:.3f}", f"{best['PyAMG']:.3f}",
                 f"{best['PyAMG'] * per_million:.3f}"]
        cells += [cell for name in names for cell in (f"{best[name]:.3f}", f"{best[name] * per_million:.3f}")]
        cells += [f"{len(hierarchy.A)}", f"{hierarchy.operator_complexity():.2f}"]
        rows.append("| " + " | ".join(cells) + " |")
        log.info("%s", rows[-1])
    columns = ["n", "rows", "entries", "hierarchy s", "cycle build s", "mgnet setup s", "mgnet s / M entries",
               "PyAMG RS 2nd pass s", "PyAMG s / M entries"]
    columns += [heading for name in names for heading in (f"{name} s", f"{name} s / M entries")]
    columns += ["levels", "operator complexity"]
    return [note, "", "| " + " | ".join(columns) + " |", "| --- " * len(columns) + "|"] + rows


def plot_histories(label: str, runs: dict[str, Run], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for name, run in runs.items():
        axes.semilogy([norm / run.norms[0] for norm in run.norms], "o-" if "PyAMG" in name else "s-",
                      markersize=3, label=f"{name} ({cell(run)})")
    axes.set(xlabel="V(1,1) cycle", ylabel="relative residual", title=label)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def plot_prolongations(rule: Callable, n: int, path: Path) -> None:
    """One weight of P (the east neighbour's) over a jumps field: Black Box, learned, difference."""
    from matplotlib.figure import Figure

    stencil = finest_stencil(DiffusionProblemConfig(n=n, coefficient=Coefficient.jumps))
    with torch.inference_mode():
        box, learned = PROLONGATIONS["black_box"](stencil)[1, 2], rule(stencil)[1, 2]
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    panels = figure.subplots(1, 3)
    for axes, (title, image) in zip(panels, [("Black Box", box), ("learned", learned),
                                             ("learned − Black Box", learned - box)]):
        shown = axes.imshow(image.numpy(), cmap="coolwarm" if "−" in title else "viridis")
        axes.set(title=title, xticks=[], yticks=[])
        figure.colorbar(shown, ax=axes, shrink=0.8)
    figure.suptitle(f"weight of each coarse point for the fine point east of it, jumps field "
                    f"(1 / 10³ per box), n = {n}")
    figure.savefig(path, dpi=110)


def chosen(sets: dict[str, dict], parts: list[str] | None) -> dict[str, dict]:
    """The sets whose name holds one of ``parts`` (all where None)."""
    return {name: options for name, options in sets.items() if parts is None or any(part in name for part in parts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[63, 255, 1023])
    parser.add_argument("--aniso-size", type=int, default=255)
    parser.add_argument("--time-size", type=int, default=1023)
    parser.add_argument("--max-cycles", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--learned", default=None, help="a learned_prolongation.pt (else trained here)")
    parser.add_argument("--learn-steps", type=int, default=100)
    parser.add_argument("--save-learned", type=Path, default=None, help="where to save the one trained here")
    parser.add_argument("--stencil-aware", default=None, help="a stencil_aware_smoother.pt (else trained here)")
    parser.add_argument("--quick", action="store_true", help="n = 31 and 63 only, a 3-step learned P")
    parser.add_argument("--figures", type=Path, default=None, help="folder for the two PNGs")
    parser.add_argument("--setup-sizes", type=int, nargs="+", default=None,
                        help="only the setup cost on jumps at these n (e.g. 255 511 1023 2047): mgnet AMG, "
                             "PyAMG, hypre")
    parser.add_argument("--jumps-time", action="store_true",
                        help="only the time to 1e-8 on jumps at --time-size: mgnet AMG's option sets, PyAMG, hypre")
    parser.add_argument("--meshes", action="store_true",
                        help="only PyAMG's airfoil and knot meshes: every AMG (anchors, mgnet's option sets), factors")
    parser.add_argument("--goals", action="store_true",
                        help="only issue 23's convergence goals: GOAL_SETS on jumps at --sizes and rotated anisotropy "
                             "at --aniso-size, each as a cycle and in CG, the cost beside the factors")
    parser.add_argument("--one-command", action="store_true",
                        help="only each one-command solve on every matrix (grid problems at --sizes and "
                             "--aniso-size, PyAMG's meshes): mgnet solve problem=matrix's defaults against pyamg.solve")
    parser.add_argument("--goal-problems", nargs="+", choices=["jumps", "rotated"], default=["jumps", "rotated"])
    parser.add_argument("--only", nargs="+", default=None,
                        help="with --goals or --jumps-time: the option sets (GOAL_SETS, AMG_OPTION_SETS) whose name "
                             "holds one of these")
    parser.add_argument("--per-level", action="store_true",
                        help="with --goals: where the error survives, the two-grid and cycle factors per level")
    parser.add_argument("--setup-repeats", type=int, default=2, help="each size's setups, interleaved; the least kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.setup_sizes is not None:
        torch.set_num_threads(args.threads)
        print(f"AMG setup, jumps 1/10³: mgnet (defaults), PyAMG {pyamg.__version__} RS 2nd pass, hypre; "
              f"torch {torch.__version__}, {args.threads} thread(s), best of {args.setup_repeats}, interleaved\n")
        print("\n".join(setup_table(args.setup_sizes, args.setup_repeats)))
        return
    if args.jumps_time:
        torch.set_num_threads(args.threads)
        hypre, hypre_line = hypre_probe()
        print(hypre_line)
        runs = jumps_time_runs(args.time_size, 1e-10, args.max_cycles, hypre, chosen(AMG_OPTION_SETS, args.only))
        print(f"\nTime to a relative residual of 1e-8, jumps 1/10³, n = {args.time_size}, setup included "
              f"(torch {torch.__version__}, pyamg {pyamg.__version__}, {args.threads} thread(s))\n")
        print("\n".join(time_table([(f"jumps 1/10³, n={args.time_size}", runs)], 1e-8)))
        print("\n".join(["", "Factors (per cycle or per CG iteration, to 1e-10):"] +
                         [f"- {name}: {cell(run)}" for name, run in runs.items()]))
        return
    if args.goals:
        torch.set_num_threads(args.threads)
        sets = chosen(GOAL_SETS, args.only)
        problems_of = {"jumps": [(f"jumps 1/10³, n={n}", jumps_matrix, n) for n in args.sizes],
                       "rotated": [(f"rotated ε=1e-3, θ=π/4, n={args.aniso_size}", rotated_matrix, args.aniso_size)]}
        costs, levels = [], []
        for label, matrix_of, n in [row for problem in args.goal_problems for row in problems_of[problem]]:
            b = right_hand_side("random", n, seed=0).numpy().ravel()
            found = goal_rows(label, matrix_of(n), b, args.max_cycles, sets, args.per_level)
            costs, levels = costs + found[0], levels + found[1]
        print(f"mgnet AMG on issue 23's goal problems (torch {torch.__version__}, {args.threads} thread(s)); "
              f"factors to 1e-10 (at most {args.max_cycles}), CPU times to 1e-8 with the setup\n")
        print("\n".join(["| " + " | ".join(GOAL_COLUMNS) + " |", "| --- " * len(GOAL_COLUMNS) + "|"] + costs))
        if args.per_level:
            print("\nWhere the error survives: per level, finest first, the two-grid factor (exact coarse solve; "
                  f"– above {TWO_GRID_ROWS:,} coarse rows) and the cycle's factor from that level down\n")
            print("\n".join(["| problem | mgnet AMG set | two-grid per level | cycle from each level down |",
                              "| --- " * 4 + "|"] + levels))
        return
    if args.one_command:
        torch.set_num_threads(args.threads)
        warm = stencil_matrix(finest_stencil(PoissonProblemConfig(n=31))).tocsr()  # numba's kernels loaded,
        run_amg(MGNET_ONE_COMMAND, warm, np.ones(warm.shape[0]), 1e-8, 5)  # as PyAMG's are at its import
        rows = []
        for label, A in one_command_matrices(args.sizes, args.aniso_size):
            b = np.random.default_rng(0).standard_normal(A.shape[0])
            rows.append((label, algebraic_runs(A, b, [PYAMG_ONE_COMMAND], {MGNET_ONE_COMMAND: {}}, 1e-10,
                                               args.max_cycles, hypre=False)))
        print(f"One command each, to a relative residual of 1e-8 with the setup (pyamg {pyamg.__version__}, torch "
              f"{torch.__version__}, {args.threads} thread(s)); factor per CG iteration to 1e-10\n")
        print("\n".join(time_table(rows, 1e-8, factors=True)))
        return
    if args.meshes:
        torch.set_num_threads(args.threads)
        hypre, hypre_line = hypre_probe()
        print(hypre_line)
        rows = [(f"{name} ({mesh_matrix(name).shape[0]} rows)", mesh_runs(name, 1e-10, args.max_cycles, hypre))
                for name in MESHES]
        print(f"\nFactors per cycle (per CG iteration where the method says CG), PyAMG {pyamg.__version__}'s "
              f"example meshes, to 1e-10 (torch {torch.__version__}, {args.threads} thread(s))\n")
        print("\n".join(factor_table(rows)))
        return
    if args.quick:
        args.sizes, args.aniso_size, args.time_size, args.learn_steps = [31, 63], 63, 63, 3
    torch.set_num_threads(args.threads)
    hypre, hypre_line = hypre_probe()
    print(hypre_line)  # the versions, or the one note saying why the hypre columns are left out
    rule_of: dict = dict(PROLONGATIONS)
    rule_of["learned"], learned_line = learned_rule(args.learned, args.learn_steps, args.save_learned)
    smoother, stencil_line = stencil_aware_smoother(args.stencil_aware, args.quick)
    ours = OURS + [(STENCIL_AWARE, "black_box", smoother)]
    rows = []
    for label, problem in problems(args.sizes, args.aniso_size):
        rows.append((label, all_runs(problem, ours, rule_of, 1e-10, args.max_cycles, hypre)))
        log.info("%s: %s", label, ", ".join(f"{name} {cell(run)}" for name, run in rows[-1][1].items()))
    timed = [(label, runs) for label, runs in rows
             if label.endswith(f"n={args.time_size}") and label.startswith(("lognormal", "jumps"))]
    print(f"V(1,1) asymptotic residual factors ({learned_line}; {stencil_line}; torch {torch.__version__}, "
          f"pyamg {pyamg.__version__}, {args.threads} thread(s))\n")
    print("\n".join(factor_table(rows)))
    print(f"\nTime to a relative residual of 1e-8, n = {args.time_size}, setup included\n")
    print("\n".join(time_table(timed, 1e-8)))
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        label, runs = rows[min(1, len(args.sizes) - 1)]
        plot_histories(label, runs, args.figures / "amg_residual_histories.png")
        plot_prolongations(rule_of["learned"], 63, args.figures / "learned_prolongation.png")


if __name__ == "__main__":
    main()
