"""Algebraic multigrid on any sparse SPD matrix (issue 23): the matrix files (``matrices``), the
Ruge-Stueben setup (``setup``) and the sparse operator and smoothers that run it through the shared
cycle (``cycle``)."""
