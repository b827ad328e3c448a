"""What mgnet shows: runs and sweeps compared (runs, table, document, plots, checks) and the
tables the commands print (text)."""
