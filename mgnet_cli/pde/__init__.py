"""The PDE side of MgNet: the same multigrid cycle, with fixed stencils, solving Poisson."""
