"""hypre BoomerAMG on one matrix, as a cycle and in CG: the anchor scripts/bench_amg.py runs beside
PyAMG and mgnet, in a process of its own because it needs Debian's petsc4py (PETSc 3.18, hypre 2.26).

    PETSC_DIR=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real OMP_NUM_THREADS=1 \\
        /usr/bin/python3.11 scripts/hypre_anchor.py A.npz b.npy --tol 1e-10 --max-its 40
    /usr/bin/python3.11 scripts/hypre_anchor.py --versions      # a probe: the versions, no solve
    /usr/bin/python3.11 scripts/hypre_anchor.py A.npz --setup-only   # each configuration's setup, no solve

A.npz: a SciPy sparse matrix (``scipy.sparse.save_npz``, read without pickle); b.npy: the
right-hand side. Prints one JSON object: the versions and, for each of PETSc's BoomerAMG defaults and
HMIS coarsening with extended+i interpolation, as a cycle (KSP richardson, scale 1: one V cycle per
iteration) and as CG's preconditioner, from x = 0 to ``tol`` (at most ``max-its`` iterations): the
true residual norm after each iteration with its time since the setup began, the setup time
(``KSPSetUp``: the hierarchy), the solve time, and the factor (the geometric mean reduction over the
second half of the iterations, as ``mgnet solve`` reports it). ``--setup-only``: no right-hand side and
no solve, only each configuration's ``KSPSetUp`` time (``{"setup_s": {name: seconds}}``), for
bench_amg.py's ``--setup-sizes``. Imports nothing from mgnet.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sparse

HMIS = {"pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i"}
CONFIGS = {"hypre BoomerAMG": {}, "hypre HMIS ext+i": HMIS}  # PETSc's defaults; the second anchor


def factor(norms: list[float]) -> float:
    """Mean reduction per iteration over the second half of the iterations."""
    iterations = len(norms) - 1
    if iterations < 1 or norms[-1] == 0.0:
        return 0.0
    span = max(1, iterations // 2)
    return (norms[-1] / norms[-1 - span]) ** (1.0 / span)


def boomeramg(PETSc, A, options: dict[str, str], prefix: str, krylov: str):
    """A KSP of type ``krylov`` on ``A`` preconditioned by BoomerAMG, PETSc's ``options`` set under
    ``prefix`` (this solve's alone); not yet set up."""
    database = PETSc.Options()
    for key, value in options.items():
        database[prefix + key] = value
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setType(krylov)
    ksp.getPC().setType("hypre")
    ksp.getPC().setHYPREType("boomeramg")
    return ksp


def solve(PETSc, A, b, options: dict[str, str], krylov: str, tol: float, max_its: int, prefix: str) -> dict:
    """One BoomerAMG solve from x = 0; ``krylov``: "richardson" (the cycle) or "cg"; ``options``:
    PETSc's, set under ``prefix`` for this solve only."""
    ksp = boomeramg(PETSc, A, options, prefix, krylov)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)  # ||b - A x||, as PyAMG and mgnet measure it
    ksp.setTolerances(rtol=tol, atol=0.0, max_it=max_its)
    ksp.setFromOptions()
    norms: list[float] = []
    times: list[float] = []
    start = time.perf_counter()
    ksp.setMonitor(lambda _, its, rnorm: (norms.append(float(rnorm)), times.append(time.perf_counter() - start)))
    ksp.setUp()
    setup = time.perf_counter() - start
    x = A.createVecLeft()
    x.set(0.0)
    ksp.solve(b, x)
    solve_s = time.perf_counter() - start - setup
    times[0] = setup  # the monitor's first call (the initial residual) comes at the solve's start
    return {"norms": norms, "times": times, "setup_s": setup, "solve_s": solve_s,
            "iterations": ksp.getIterationNumber(), "reason": int(ksp.getConvergedReason()),
            "converged": ksp.getConvergedReason() > 0, "factor": factor(norms)}


def setup_only(PETSc, A, options: dict[str, str], prefix: str) -> float:
    """Seconds of BoomerAMG's setup (``KSPSetUp``: the hierarchy) on ``A`` with ``options``, nothing solved."""
    ksp = boomeramg(PETSc, A, options, prefix, "cg")
    ksp.setFromOptions()
    start = time.perf_counter()
    ksp.setUp()
    seconds = time.perf_counter() - start
    ksp.destroy()
    return seconds


def versions(PETSc, petsc4py) -> dict[str, str]:
    """PETSc's, petsc4py's and hypre's (the name of the shared library PETSc's hypre PC loads)."""
    libraries = sorted(Path("/usr/lib").glob("*/libHYPRE-*.so")) + sorted(Path("/usr/lib").glob("libHYPRE-*.so"))
    hypre = libraries[0].name.removeprefix("libHYPRE-").removesuffix(".so") if libraries else "unknown"
    return {"petsc": ".".join(map(str, PETSc.Sys.getVersion())), "petsc4py": petsc4py.__version__, "hypre": hypre}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", nargs="?", help="a SciPy sparse .npz")
    parser.add_argument("rhs", nargs="?", help="a .npy vector")
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--max-its", type=int, default=100)
    parser.add_argument("--versions", action="store_true", help="print the versions only (a probe)")
    parser.add_argument("--setup-only", action="store_true", help="time each configuration's setup, no solve")
    args = parser.parse_args()
    import petsc4py

    petsc4py.init([sys.argv[0]])
    from petsc4py import PETSc

    if args.versions or args.matrix is None or (args.rhs is None and not args.setup_only):
        print(json.dumps(versions(PETSc, petsc4py)))
        return

    csr = sparse.load_npz(args.matrix).tocsr()
    A = PETSc.Mat().createAIJ(size=csr.shape, csr=(csr.indptr.astype(PETSc.IntType),
                                                   csr.indices.astype(PETSc.IntType), csr.data))
    A.assemble()
    if args.setup_only:
        seconds = {name: setup_only(PETSc, A, options, f"setup{index}_")
                   for index, (name, options) in enumerate(CONFIGS.items())}
        print(json.dumps({**versions(PETSc, petsc4py), "rows": csr.shape[0], "entries": int(csr.nnz),
                          "setup_s": seconds}))
        return
    rhs = np.load(args.rhs, allow_pickle=False).astype(np.float64).ravel()
    b = A.createVecRight()
    b.setArray(rhs)
    runs = {}
    for index, (name, options) in enumerate(CONFIGS.items()):
        runs[name] = solve(PETSc, A, b, options, "richardson", args.tol, args.max_its, f"cycle{index}_")
        runs[f"{name}, CG"] = solve(PETSc, A, b, options, "cg", args.tol, args.max_its, f"cg{index}_")
    print(json.dumps({**versions(PETSc, petsc4py), "rows": csr.shape[0], "entries": int(csr.nnz), "runs": runs}))


if __name__ == "__main__":
    main()
