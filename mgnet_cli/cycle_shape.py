"""The shapes of the one multigrid cycle (cycle.py), written once: what ``MultigridCycle`` accepts
and the choices of ``solver.cycle``. Imports no torch: the schema imports it."""

from enum import StrEnum


class CycleShape(StrEnum):
    """How a cycle visits the levels (compares equal to its word, prints as it)."""

    v = "v"  # down smoothing and restricting, back up correcting and post-smoothing
    w = "w"  # each coarser level visited twice
    backslash = "backslash"  # down only: MgNet's shape (the solver's V(nu, 0))
