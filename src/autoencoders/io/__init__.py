"""The files of a run directory: how each is written and read."""
