"""airspeed velocity (asv) benchmarks of ``ntkbench.empirical_ntk``.

Workload: MLP 784 → 512 × depth → 1, ReLU, he_normal weights, float32, x1 = x2 with n examples,
CPU with 2 torch threads. ``floor`` is the same kernel computed with the fewest torch
operations on tensors already in place (``benchmarks/ntk_methods.py``); the ratio of the two is
what the engine's overhead costs.

``asv.conf.json`` builds each commit in a fresh virtualenv: the matrix entry installs
``torch==2.13.0`` (the CPU wheel) into the environment first, then the project's wheel is built
with ``pip wheel`` and installed with its remaining dependencies. Results go to ``.asv/``.

Commands, from the repository root (with asv installed next to, not inside, the project)::

    asv run                                    # HEAD of main, fresh virtualenv
    asv run --python=same --quick              # this environment, one run per benchmark
    asv run -E existing:.venv/bin/python --bench "EmpiricalNTK.*\\(256, 3\\)"   # one cell
    asv run -E existing:.venv/bin/python --bench LargeKernel   # n = 10,000 peak memory
    asv check -E existing:.venv/bin/python     # import and validate the suite only

``OMP_WAIT_POLICY`` and the other variables of the calling shell reach the benchmark processes.
"""

from __future__ import annotations

import inspect
import statistics
import time

import numpy as np
import torch

import ntkbench as nb

from .ntk_methods import floor_ntk, to_torch

THREADS = 2
IN_DIM, WIDTH, OUT_DIM = 784, 512, 1
DTYPE = "float32"


def _workload(n: int, depth: int) -> tuple[nb.MLP, list[dict[str, np.ndarray]], np.ndarray]:
    torch.set_num_threads(THREADS)
    model = nb.MLP(in_dim=IN_DIM, width=WIDTH, depth=depth, out_dim=OUT_DIM,
                   activation="relu")
    weights = nb.initialize(model, "he_normal", seed=0)
    x = np.random.default_rng(1).standard_normal((n, IN_DIM))
    return model, weights, x


class EmpiricalNTK:
    """ntkbench against the floor over n ∈ {64, 256, 1024} and depth ∈ {1, 3, 6}."""

    params = ([64, 256, 1024], [1, 3, 6])
    param_names = ["n", "depth"]
    timeout = 300

    def setup(self, n: int, depth: int) -> None:
        self.model, self.weights, self.x = _workload(n, depth)
        self.tensors = to_torch(self.weights, DTYPE)
        self.xt = torch.as_tensor(self.x, dtype=torch.float32)

    def _ntkbench(self) -> np.ndarray:
        return nb.empirical_ntk(self.model, self.weights, self.x, dtype=DTYPE, device="cpu")

    def _floor(self) -> torch.Tensor:
        return floor_ntk(self.tensors, self.xt)

    def time_empirical_ntk(self, n: int, depth: int) -> None:
        self._ntkbench()

    def time_floor(self, n: int, depth: int) -> None:
        self._floor()

    def peakmem_empirical_ntk(self, n: int, depth: int) -> None:
        self._ntkbench()

    def peakmem_floor(self, n: int, depth: int) -> None:
        self._floor()

    def track_ratio_to_floor(self, n: int, depth: int) -> float:
        """Median ntkbench time over median floor time, runs interleaved after a warm-up."""
        self._ntkbench()
        self._floor()
        ours, floor = [], []
        budget = time.perf_counter() + 20.0
        while len(ours) < 15 and (len(ours) < 3 or time.perf_counter() < budget):
            t0 = time.perf_counter()
            self._ntkbench()
            t1 = time.perf_counter()
            self._floor()
            t2 = time.perf_counter()
            ours.append(t1 - t0)
            floor.append(t2 - t1)
        return statistics.median(ours) / statistics.median(floor)

    track_ratio_to_floor.unit = "ntkbench/floor"


class LargeKernel:
    """Peak memory of one 10,000 × 10,000 kernel (depth 3), chunked where the engine can.

    The float64 result alone is 800 MB. An engine whose ``empirical_ntk`` takes
    ``chunk_size`` is called with ``chunk_size=None``, its own block sizing; an engine without
    it computes the kernel in one piece.
    """

    timeout = 1800
    n = 10_000

    def setup(self) -> None:
        self.model, self.weights, self.x = _workload(self.n, 3)
        accepted = inspect.signature(nb.empirical_ntk).parameters
        self.kwargs = {"chunk_size": None} if "chunk_size" in accepted else {}

    def peakmem_empirical_ntk_10k(self) -> None:
        nb.empirical_ntk(self.model, self.weights, self.x, dtype=DTYPE, device="cpu",
                         **self.kwargs)
