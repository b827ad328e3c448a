"""What accelerates a multigrid cycle, written once: the choices and help of ``solver.krylov``
(the geometric solver) and ``problem.amg.krylov`` (the algebraic one; their defaults differ).
Imports no torch and nothing of the schema: the schema and mgnet_cli/amg/settings.py import it."""

from enum import StrEnum


class Krylov(StrEnum):
    """How the cycles are used (compares equal to its word, prints as it)."""

    none = "none"  # the cycle repeated
    cg = "cg"  # conjugate gradients, preconditioned by one symmetric cycle per iteration (pde/krylov.py)


HELP = "none (the cycle repeated) or cg: conjugate gradients, one symmetric cycle per iteration as the preconditioner"
