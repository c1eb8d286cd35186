"""Analyses of networks at initialization that need no training: pure numpy functions.

- :mod:`ntkbench.analysis.variance_flow`: the infinite-width variance map of an MLP, its fixed
  points, and the per-layer RMS of a finite network beside it.
- :mod:`ntkbench.analysis.plots`: their figures (matplotlib).
"""
