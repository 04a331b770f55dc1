"""Task-family environments. Each family's dynamics live once, in a batched NumPy core."""
