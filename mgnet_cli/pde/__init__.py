"""The PDE side of MgNet: the same multigrid cycle (mgnet_cli/cycle.py) with fixed stencils, solving
Poisson, variable-coefficient diffusion and anisotropic problems, with classical and learned parts."""
