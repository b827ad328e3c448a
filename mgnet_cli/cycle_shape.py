"""The shapes of the one multigrid cycle (cycle.py), written once: what ``MultigridCycle`` accepts
and the choices of ``solver.cycle``. Imports no torch: the schema imports it."""

from enum import StrEnum


class CycleShape(StrEnum):
    """How a cycle visits the levels (compares equal to its word, prints as it).

    The F-cycle is Trottenberg, Oosterlee & Schueller's (*Multigrid*, 2001, Sect. 2.4): on level l,
    pre-smooth, correct by an F-cycle on level l + 1 followed by a V-cycle on level l + 1, post-smooth;
    on the level above the coarsest it is the V-cycle. Its cost lies between V's and W's: level l + k
    is visited k + 1 times per cycle (W: 2^k times, V: once).
    """

    v = "v"  # down smoothing and restricting, back up correcting and post-smoothing
    w = "w"  # each coarser level visited twice
    f = "f"  # each coarser level visited by an F-cycle, then by a V-cycle
    backslash = "backslash"  # down only: MgNet's shape (the solver's V(nu, 0))


SHAPES_HELP = ("how the cycle visits the levels: v each level once, w each coarser level twice, f an F- then a "
               "V-cycle on each coarser level (level k below visited k + 1 times)")
