"""Learned smoothers: each file is one iterative method for ``A u = f`` on a level.

A smoother is built per level as ``factory(channels_u=..., channels_f=..., steps=...)`` (the config
group ``configs/smoother/`` holds the partially applied factories) and called as
``smoother(u, f, residual, A) -> u`` (see ``mgnet_cli.cycle.Smoother``).
"""
