"""Analyses that need no training — networks at initialization and their infinite-width
limits: pure numpy functions.

- :mod:`ntkbench.analysis.variance_flow`: the infinite-width variance map of an MLP, its fixed
  points, and the per-layer RMS of a finite network beside it.
- :mod:`ntkbench.analysis.isometry`: dynamical isometry, the singular values of the
  input–output Jacobian per depth beside the free-probability prediction.
- :mod:`ntkbench.analysis.deep_limit`: the infinite-width kernel classifier of a binary task
  as the depth grows (the ReLU NTK tends to a constant off-diagonal 1/4).
- :mod:`ntkbench.analysis.plots`: their figures (matplotlib).
"""
