"""The NTK engine: empirical kernels and kernel metrics."""
