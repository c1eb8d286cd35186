import sys
from pathlib import Path

import pytest

from ntkbench.config import (
    DataConfig,
    InitializerConfig,
    MeasureConfig,
    ModelConfig,
    TrainingConfig,
    Trial,
)

ROOT = Path(__file__).resolve().parents[1]


def run_like_a_worker(trials, run_dir, threads: int | None = None) -> None:
    """``run_trials(trials, run_dir, jobs=1)`` in a fresh process started with the thread
    settings of a worker of a two-worker pool (or ``threads``): its records are then comparable
    bit for bit with a pool's (thread counts change torch's, BLAS's and XLA's sums)."""
    import multiprocessing
    import os

    from ntkbench.executors import child_environment, thread_env
    from ntkbench.runner import run_trials

    threads = threads or max(1, (os.cpu_count() or 1) // 2)
    proc = multiprocessing.get_context("spawn").Process(
        target=run_trials, args=(trials, run_dir), kwargs={"jobs": 1, "progress": False})
    with child_environment(thread_env(threads)):
        proc.start()
    proc.join()
    assert proc.exitcode == 0, f"the serial run exited with {proc.exitcode}"


def tiny_trial(initializer: str | InitializerConfig = "he_normal", seed: int = 0,
               **overrides) -> Trial:
    """A trial that trains in well under a second (``initializer``: a name or a config)."""
    if isinstance(initializer, str):
        initializer = InitializerConfig(name=initializer)
    fields = dict(
        suite="test", task="osc",
        data=DataConfig(generator="oscillatory_1d",
                        params={"frequency": 1.0, "n_samples": 40, "train_fraction": 0.5}),
        model=ModelConfig(width=16, depth=1, activation="tanh"),
        training=TrainingConfig(lr=0.1, steps=30),
        measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3),
        initializer=initializer, seed=seed, device="cpu")
    fields.update(overrides)
    return Trial(**fields)


BACKENDS = ["torch", "jax"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each backend by name: a test that runs on torch runs on JAX too (parametrized).

    The JAX case skips, with the reason, where ``jax`` or ``optax`` is not installed.
    """
    if request.param == "jax":
        for module in ("jax", "optax"):
            pytest.importorskip(module, reason=f"the jax backend needs {module} "
                                               "(pip install 'ntkbench[jax]')")
    return request.param


def network_class(backend: str):
    """The ``Network`` class of the backend registered as ``backend``."""
    from ntkbench.backends import get_backend

    return get_backend(backend).Network


@pytest.fixture
def ntkbench_cli():
    """Command prefix that runs the CLI of this checkout in a subprocess."""
    return [sys.executable, "-m", "ntkbench.cli.main"]


# Cases that repeat on JAX what the torch case of the same test already covers and cost 15 s or
# more each (a subprocess run killed and resumed): run with -m slow, kept out of the default run
# so that it stays under CI's 10 minutes.
SLOW_ON_JAX = ("test_killed_run_resumes_with_every_trial_recorded_once",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        spec = getattr(item, "callspec", None)
        if item.originalname in SLOW_ON_JAX and spec and spec.params.get("backend") == "jax":
            item.add_marker(pytest.mark.slow)
