"""MgNet as a multigrid cycle: levels (grids), smoothers, transfer operators and the cycle that runs them."""
