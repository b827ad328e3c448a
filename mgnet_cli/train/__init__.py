"""Training: the fit/evaluate loop, checkpoints written atomically, and run tracking."""
