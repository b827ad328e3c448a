"""How ``mgnet solve`` ended, in words, and its exit code: 0 only when it reached ``solver.tol``.

A script or test runner that calls ``mgnet solve`` reads the exit code: 0 converged; 1 the solve ran
but stopped short of the tolerance (``round_off``, ``stalled``, ``max_cycles``); 2 bad input or a
``diverged`` solve (a smoother or prolongation unfit for the problem). Inside a sweep a job that
did not converge is recorded with its status and the sweep goes on.
"""

import math

from mgnet_cli.pde.solve import STALL_CYCLES, SolveResult

EXIT_CODES = {"converged": 0, "round_off": 1, "stalled": 1, "max_cycles": 1, "diverged": 2}

FIXES = ("this smoother or prolongation does not fit the problem (README: Variable coefficients and "
         "anisotropy; solver.krylov=cg takes out a few slow modes)")


def cycles_to(target: float, residual: float, factor: float) -> int | None:
    """Cycles a residual falling by ``factor`` per cycle needs to reach ``target`` (None: never)."""
    if residual <= target:
        return 0
    if not 0.0 < factor < 1.0:
        return None
    return math.ceil(math.log(target / residual) / math.log(factor))


def outcome(result: SolveResult, tol: float, dtype: str) -> str:
    """One sentence: what happened, at which residual and factor, and what to change."""
    final, factor, cycles = result.relative_residuals[-1], result.convergence_factor, result.cycles
    floor = (f"{dtype}'s round-off floor (estimated at {result.round_off_floor:.1e}: machine epsilon x "
             f"the condition estimate ||A|| ||u|| / ||f||)")
    if result.status == "converged":
        return f"converged after {cycles} cycles: relative residual {final:.2e} <= solver.tol={tol:g}"
    if result.status == "round_off":
        wider = " or use solver.dtype=float64" if dtype != "float64" else ""
        return (f"stopped after {cycles} cycles at relative residual {final:.2e}, above solver.tol={tol:g}: "
                f"the residual no longer falls at {floor}; raise solver.tol{wider}")
    lowest = min(result.relative_residuals)
    if result.status == "stalled":
        return (f"the solve stalled: relative residual {final:.3g} after {cycles} cycles, none below "
                f"{lowest:.3g} in the last {STALL_CYCLES} (factor {factor:.3f} per cycle), far above "
                f"{floor}; {FIXES}")
    if result.status == "diverged":
        growth = f"rising from its lowest, {lowest:.3g}, " if lowest < final else ""
        return (f"the solve diverged: relative residual {final:.3g} after {cycles} cycles, {growth}"
                f"factor {factor:.3g} per cycle; {FIXES}")
    more = cycles_to(tol, final, factor)
    pace = (f"falling by {factor:.3f} a cycle, about {more} more cycles to go: raise solver.max_cycles"
            if more is not None else f"not falling (factor {factor:.3f} per cycle); {FIXES}")
    return (f"did not reach solver.tol={tol:g} in solver.max_cycles={cycles} cycles: relative residual "
            f"{final:.2e}, {pace}")
