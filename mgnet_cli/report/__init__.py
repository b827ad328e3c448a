"""Comparing runs: reading run folders and sweeps, grouping them, tables and plots."""
