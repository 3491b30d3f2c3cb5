"""Where and how the work runs: threads, processes, events."""
