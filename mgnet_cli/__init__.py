"""mgnet: train, evaluate and compare MgNet models, and run the same multigrid cycle as a PDE solver."""

__version__ = "0.1.0"
