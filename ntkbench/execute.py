"""Run one trial: data → model → initializer → NTK at init → training → evaluation → record.

:func:`run_trial` never raises for a problem inside the trial: a crash becomes a record with
``status: failed`` and the error, a loss that blows up becomes ``status: diverged``. The record
is one flat, JSON-serialisable dict (its fields are listed in README, "Results").
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import socket
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np

from ntkbench import registry
from ntkbench._version import __version__, source_commit
from ntkbench.backends import Unavailable, get_backend
from ntkbench.backends.training import check_tv
from ntkbench.config import ModelConfig, TaskConfig, Trial
from ntkbench.data.base import Dataset
from ntkbench.evaluation import METRICS
from ntkbench.identity import MEASUREMENT_VERSION, plugin_digest
from ntkbench.initializers import Batch, Probe, initialize_with
from ntkbench.initializers.calibration import is_data_dependent
from ntkbench.models import CNN, MLP, Model
from ntkbench.ntk.analytic import (
    analytic_method,
    converged_quadrature_points,
    matched_analytic_kernels,
    matched_analytic_ntk,
)
from ntkbench.ntk.fourier import fourier_band_edges, fourier_energy
from ntkbench.ntk.metrics import band_edges, relative_drift, spectral_energy, spectrum
from ntkbench.ntk.probes import (
    LinearizedProbe,
    NonFiniteInit,
    kernel_checkpoint,
    layer_shares,
    linearization_skip_reason,
    residual,
    spectrum_ranks,
)
from ntkbench.ntk.regression import RIDGE, kernel_predict
from ntkbench.store import SCHEMA_VERSION


def log_steps(total: int, count: int) -> list[int]:
    """Log-spaced checkpoints ``0, T^(1/(c-1)), T^(2/(c-1)), ..., T`` (rounded, deduplicated)
    for ``T = total`` and ``c = count``; always starts at 0 and ends at ``total``."""
    if total <= 0:
        return [0]
    inner = float(total) ** (np.arange(1, count) / (count - 1))
    return sorted({0, total, *(int(round(s)) for s in inner)})


def steps_to_fraction(losses: list[float], steps: list[int], fraction: float) -> int | None:
    """First step at which the train loss is ``<= fraction × loss at step 0``; ``None`` if never.

    ``losses[i]`` is the loss after ``steps[i]`` updates; ``steps[0]`` must be 0.
    """
    if not losses or not math.isfinite(losses[0]):
        return None
    target = fraction * losses[0]
    for step, value in zip(steps, losses, strict=True):
        if value <= target:
            return int(step)
    return None


TARGET_FRACTION = 0.1  # steps_to_target: train loss at most this × the predict-the-mean loss


def steps_to_loss(losses: list[float], steps: list[int], target: float) -> int | None:
    """First step at which the train loss is ``<= target``; ``None`` if never (or no target)."""
    if target is None or not math.isfinite(target):
        return None
    for step, value in zip(steps, losses, strict=True):
        if value <= target:
            return int(step)
    return None


def mean_predictor(data: Dataset, metric: Any, loss: str) -> dict[str, float]:
    """The "no learning" reference of a task: predict the training targets' mean.

    For MSE, the constant prediction ȳ (per output) and its train loss under the trainer's
    loss ``1/(2n) Σ ‖ȳ − y_i‖²``; for cross-entropy, the training class frequencies p as the
    predicted distribution, whose loss is their entropy ``−Σ p log p`` and whose arg-max is the
    majority class. ``test_metric`` is the task's metric of that prediction on the test set.
    """
    n_test = len(data.x_test)
    if loss == "cross_entropy":
        labels = np.asarray(data.y_train, dtype=int)
        p = np.bincount(labels, minlength=data.out_dim) / len(labels)
        nz = p[p > 0]
        train_loss = float(-np.sum(nz * np.log(nz)))
        with np.errstate(divide="ignore"):
            pred = np.tile(np.log(p), (n_test, 1))
    else:
        y = data.target_matrix(data.y_train)
        mean = y.mean(axis=0)
        train_loss = float(0.5 * np.sum((y - mean) ** 2) / len(y))
        pred = np.tile(mean, (n_test, 1))
    return {"train_loss": train_loss, "test_metric": float(metric.fn(pred, data.y_test))}


KERNEL_REGRESSION_MAX_N = 4096  # train + test points; the kernels are (n_test + n_train) × n_train
KERNEL_REGRESSION_QUADRATURE_MAX_N = 1024  # without a closed form each entry is a quadrature
KERNEL_REGRESSION_RIDGE = RIDGE  # × λ_max: a jitter for the solve, not a regulariser


def kernel_regression(trial: Trial, model: Model, weights: list[dict[str, np.ndarray]],
                      data: Dataset, metric: Any) -> dict[str, Any]:
    """The infinite-width limit of this initializer on this task: kernel regression with the
    analytic NTK and NNGP moment-matched to the initial weights (per-layer variances), fitted
    to the training targets and scored by the task's metric on the test set.

    The targets are one-hot for classification (the prediction is then the arg-max); the
    solve is :func:`ntkbench.ntk.regression.kernel_predict` (its docstring: the jitter, the
    clipped eigenvalues, and what the prediction means for the NTK and the NNGP).
    Returns ``{"ntk_test_metric", "nngp_test_metric", "ridge"}`` or ``{"skipped": reason}``.
    """
    if not isinstance(model, MLP):
        return {"skipped": "no infinite-width kernel for convolutional networks"}
    n = data.n_train + len(data.x_test)
    limit = (KERNEL_REGRESSION_MAX_N if analytic_method(model.activation) == "closed_form"
             else KERNEL_REGRESSION_QUADRATURE_MAX_N)
    if n > limit:
        return {"skipped": f"{n} train + test points > {limit} for the "
                           f"{analytic_method(model.activation)} kernels"}
    y = data.target_matrix(data.y_train)
    points: dict[str, int] = {}
    if analytic_method(model.activation) == "quadrature":
        # Quadrature loses accuracy as the variances grow (a GO or large-gain tanh network):
        # the same convergence check as the analytic distance, or no limit at all.
        n_points, converged = converged_quadrature_points(model, weights, data.x_train,
                                                          rtol=1e-3, max_points=128)
        if not converged:
            return {"skipped": "the quadrature of the analytic kernels did not converge within "
                               "128 points (large pre-activation variances)"}
        points = {"quadrature_points": max(n_points, 2)}
    with np.errstate(over="ignore", invalid="ignore"):  # huge initial variances: inf, checked
        train = matched_analytic_kernels(model, weights, data.x_train, **points)
        cross = matched_analytic_kernels(model, weights, data.x_test, data.x_train, **points)
    if not all(np.all(np.isfinite(k)) for k in (train.ntk, train.nngp, cross.ntk, cross.nngp)):
        return {"skipped": "the analytic kernels are not finite in float64 "
                           "(the initial per-layer variances overflow)"}
    out: dict[str, Any] = {"ridge": KERNEL_REGRESSION_RIDGE}
    for name in ("ntk", "nngp"):
        pred = kernel_predict(getattr(train, name), getattr(cross, name), y,
                              KERNEL_REGRESSION_RIDGE)
        out[f"{name}_test_metric"] = (None if pred is None
                                      else float(metric.fn(pred, data.y_test)))
    return out


def image_arrays(data: Dataset, prediction: np.ndarray) -> dict[str, np.ndarray]:
    """The predicted image, the true image and the mask of training pixels, ``(H, W, C)``
    float16 in raster order (values clipped to ``[0, 1]``) and ``(H, W)`` bool. The true
    image is rebuilt from the train and test pixels, which together are every pixel once."""
    h, w = data.grid.shape
    pixels = {tuple(row): i for i, row in enumerate(np.round(data.grid.x, 12))}
    truth = np.zeros((h * w, data.out_dim))
    mask = np.zeros(h * w, dtype=bool)
    for x, y, train in ((data.x_train, data.y_train, True), (data.x_test, data.y_test, False)):
        index = [pixels[tuple(row)] for row in np.round(x, 12)]
        truth[index] = np.asarray(y, dtype=float).reshape(len(x), -1)
        mask[index] = train
    shape = (h, w, data.out_dim)
    return {"image_prediction": np.clip(prediction, 0, 1).reshape(shape).astype(np.float16),
            "image_target": truth.reshape(shape).astype(np.float16),
            "image_train_mask": mask.reshape(h, w)}


class PeakMemory:
    """Peak resident memory of this process above its level at start, sampled every 5 ms.

    On CUDA devices the peak allocated GPU memory is reported by the backend instead.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._base = self._peak = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())

    @property
    def megabytes(self) -> float:
        return (self._peak - self._base) / 2**20


def _identity(trial: Trial) -> dict[str, Any]:
    metric = METRICS.get(trial.metric)
    return {
        "schema_version": SCHEMA_VERSION,
        "trial_hash": trial.trial_hash,
        "measurement_version": MEASUREMENT_VERSION,
        "suite": trial.suite,
        "task": trial.task,
        "initializer": trial.initializer.name,
        "init_label": trial.initializer.label,
        "initializer_params": dict(trial.initializer.params),
        "initializer_source": trial.initializer.source,
        "initializer_source_digest": plugin_digest(trial.initializer, trial.source_dir),
        "backend": trial.backend,
        "device": trial.device,
        "seed": trial.seed,
        "sweep": dict(trial.sweep),
        "sweep_label": trial.sweep_label,
        "data": trial.data.model_dump(mode="json"),
        "model": trial.model.dump(),
        "training": trial.training.model_dump(mode="json"),
        "measure": trial.measure.model_dump(mode="json"),
        "metric": trial.metric,
        "metric_goal": metric.goal if metric else None,
        "ntkbench_version": __version__,
        "ntkbench_commit": source_commit(),
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
    }


def fit_issues(cfg: Trial | TaskConfig, data: Dataset) -> list[tuple[tuple[str, ...], str]]:
    """What in a trial's or task's configuration does not fit its ``data``: the metric or the
    loss of the other kind of task, a model the inputs cannot feed (a CNN on flat vectors),
    ``training.tv_weight`` without a pixel grid; each with the field it is about. A trial
    stops on the first; ``ntkbench validate`` reports them all at their YAML lines."""
    issues: list[tuple[tuple[str, ...], str]] = []
    metric = METRICS.get(cfg.metric)
    if metric is not None and data.kind not in metric.kinds:
        fits = sorted(m for m, v in METRICS.items() if data.kind in v.kinds)
        issues.append((("metric",), f"metric {cfg.metric!r} is for "
                                    f"{' or '.join(metric.kinds)} tasks, but "
                                    f"{cfg.data.generator!r} is a {data.kind} task (use one of "
                                    f"{', '.join(fits)})"))
    if (cfg.training.loss == "cross_entropy") != (data.kind == "classification"):
        issues.append((("training", "loss"), f"loss {cfg.training.loss!r} does not fit a "
                                             f"{data.kind} task"))
    try:
        model_for(cfg.model, cfg.data.generator, data)
    except ValueError as exc:
        issues.append((("model", "kind"), str(exc)))
    try:
        check_tv(cfg.training, data.grid)
    except ValueError as exc:
        issues.append((("training", "tv_weight"), str(exc)))
    return issues


def build_model(trial: Trial, data: Dataset) -> Model:
    """The trial's network: an :class:`MLP` or a :class:`CNN` sized by the data."""
    return model_for(trial.model, trial.data.generator, data)


def model_for(m: ModelConfig, generator: str, data: Dataset) -> Model:
    """The network ``m`` describes, sized by ``data`` (of the task ``generator``)."""
    common = dict(out_dim=data.out_dim, activation=m.activation,
                  parameterization=m.parameterization, w_std=m.w_std, b_std=m.b_std,
                  bias=m.bias)
    if m.kind == "cnn":
        shape = data.input_shape
        if shape is None or len(shape) not in (2, 3) or math.prod(shape) != data.in_dim:
            raise ValueError(f"model kind 'cnn' needs image inputs, but task "
                             f"{generator!r} gives inputs of dimension {data.in_dim} "
                             f"with input_shape {shape}; use kind: mlp")
        return CNN(input_shape=tuple(shape), channels=tuple(m.channels),
                   kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, pool=m.pool,
                   global_pool=m.global_pool, head=tuple(m.head), **common)
    return MLP(in_dim=data.in_dim, width=m.width, depth=m.depth,
               input_shape=data.input_shape, **common)


_trials_in_process = 0  # how many trials this process ran before the current one


def run_trial(trial: Trial) -> dict[str, Any]:
    """Run ``trial`` and return its record (never raises for errors inside the trial).

    ``worker_trial_index`` counts the trials this process ran before: the first one (index 0)
    pays one-off costs (imports, allocator and thread-pool start-up, JIT compilation), about
    twice the wall time of the next, so the leaderboard leaves it out of the wall time.
    """
    global _trials_in_process
    record = _identity(trial)
    record["worker_trial_index"] = _trials_in_process
    _trials_in_process += 1
    record["started_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    mem = PeakMemory()
    try:
        with mem:
            _run(trial, record)
    except Exception as exc:  # failure isolation: the record carries the error
        # A missing backend or device is this machine's limitation, not the trial's outcome.
        record["status"] = "unavailable" if isinstance(exc, Unavailable) else "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=20)
    record.setdefault("peak_memory_mb", mem.megabytes)
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return record


def crashed_record(trial: Trial, error: str) -> dict[str, Any]:
    """The ``failed`` record of a trial whose worker process died (killed, out of memory,
    a segfault in native code) instead of returning a record: the trial's identity and the
    cause, so the run goes on and ``--retry-failed`` can try it again."""
    record = _identity(trial)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record.update(status="failed", error=error, traceback=None, worker_crashed=True,
                  started_at=None, finished_at=now, wall_time_s=None, peak_memory_mb=None)
    return record


def _analytic_distance(trial: Trial, model: Model, weights: list[dict[str, np.ndarray]],
                       x: np.ndarray, K: np.ndarray, record: dict[str, Any]) -> None:
    """Relative distance ``‖K − K_∞‖_F / ‖K_∞‖_F`` of the NTK at init from the infinite-width
    NTK with the same per-layer weight and bias variances (``ntk_init.analytic_distance``)."""
    if not trial.measure.analytic:
        return
    if not isinstance(model, MLP):
        record["ntk_analytic_method"] = None
        record["ntk_analytic_skipped"] = ("no infinite-width kernel for convolutional networks "
                                          "(the analytic kernels cover dense MLPs)")
        return
    method = analytic_method(model.activation)
    record["ntk_analytic_method"] = method
    if not np.all(np.isfinite(K)):
        record["ntk_init"]["analytic_distance"] = float("nan")
        return
    points = 0
    if method == "quadrature":
        # The reference is needed to ~1e-3 (distances are percents). Large pre-activation
        # variances need many points; when 64 against 128 points still disagree, the distance
        # is left out rather than measured against an inaccurate kernel.
        points, converged = converged_quadrature_points(model, weights, x, rtol=1e-3,
                                                        max_points=128)
        record["ntk_analytic_quadrature_points"] = points
        record["ntk_analytic_converged"] = converged
        if not converged:
            record["ntk_init"]["analytic_distance"] = float("nan")
            return
    reference = matched_analytic_ntk(model, weights, x, quadrature_points=max(points, 2))
    record["ntk_init"]["analytic_distance"] = relative_drift(K, reference)


def _run(trial: Trial, record: dict[str, Any]) -> None:
    backend = get_backend(trial.backend)
    record["versions"].update(backend.library_versions())
    device = backend.resolve_device(trial.device)
    record["device_resolved"] = device
    record["device_name"] = backend.device_name(device)
    record["threads"] = _threads(trial.backend)
    record["blas_threads"] = blas_threads()

    data: Dataset = registry.tasks.get(trial.data.generator).obj(seed=trial.seed,
                                                                 **trial.data.params)
    metric = METRICS[trial.metric]
    issues = fit_issues(trial, data)  # before any work, not at the start of training
    if issues:
        raise ValueError(issues[0][1])
    model = build_model(trial, data)
    entry = registry.resolve_initializer(trial.initializer.name, trial.initializer.source,
                                         trial.source_dir)
    record["initializer_origin"] = entry.origin
    batch = probe = None
    if is_data_dependent(entry.obj):
        batch = Batch(data.x_train, data.target_matrix(data.y_train), data.y_train, data.kind)
        probe = Probe(lambda w: backend.Network(model, w, dtype="float64", device=device),
                      trial.training.loss)
    weights = initialize_with(model, entry, trial.seed, trial.initializer.params, batch=batch,
                              probe=probe)
    if weights.calibration is not None:
        record["initializer_calibration"] = weights.calibration
    record.update(n_train=data.n_train, n_test=len(data.x_test), in_dim=data.in_dim,
                  out_dim=data.out_dim, n_params=model.n_params())

    if trial.measure.analytic:  # before training, from the initial weights
        record["kernel_regression"] = kernel_regression(trial, model, weights, data, metric)
    net = backend.Network(model, weights, dtype=trial.training.dtype, device=device)
    ntk_idx = np.arange(data.n_train)
    if data.n_train > trial.measure.ntk_max_n:
        rng = np.random.default_rng(np.random.SeedSequence([trial.seed, 0x4E54]))
        ntk_idx = np.sort(rng.choice(data.n_train, trial.measure.ntk_max_n, replace=False))
    x_ntk = data.x_train[ntk_idx]
    y_ntk = data.target_matrix(data.y_train[ntk_idx])
    record["ntk_n"] = int(len(ntk_idx))

    steps = trial.training.steps
    ntk_steps = set(log_steps(steps, trial.measure.ntk_checkpoints))
    loss_steps = sorted(set(log_steps(steps, trial.measure.checkpoints)) | ntk_steps)
    curves: dict[str, list] = {k: [] for k in (
        "curve_step", "curve_train_loss", "curve_test_metric",
        "ntk_step", "ntk_centered_alignment", "ntk_top1_alignment",
        "ntk_residual_alignment", "ntk_target_alignment", "ntk_output_alignment",
        "ntk_residual_band_energy", "ntk_drift_curve")}
    # Inputs drawn uniformly from a declared box (1-D / 2-D targets): residual Fourier bands.
    fourier = None
    if data.domain is not None and data.kind == "regression" and data.in_dim <= 2 \
            and data.n_train >= 2:
        fourier = fourier_band_edges(data.n_train, data.in_dim)
        record["fourier_band_edges"] = fourier.tolist()
        curves["fourier_residual_band_energy"] = []
        y_train = data.target_matrix(data.y_train)
    k0: list[np.ndarray] = []
    spec0: list = []  # the spectrum of the NTK at init (None when not finite)
    linear = _linearized_probe(trial, data, net, loss_steps, record)
    if linear is not None:
        curves.update(curve_lin_gap_train=[], curve_lin_gap_test=[])

    def on_checkpoint(step: int, train_loss: float) -> None:
        pred = net.predict(data.x_test)
        curves["curve_step"].append(step)
        curves["curve_train_loss"].append(train_loss)
        curves["curve_test_metric"].append(metric.fn(pred, data.y_test)
                                           if np.all(np.isfinite(pred)) else float("nan"))
        pred_train = net.predict(data.x_train) if fourier is not None or linear else None
        if fourier is not None:  # on the training inputs, at every loss checkpoint
            res = residual(y_train, pred_train, data.kind)
            curves["fourier_residual_band_energy"].append(
                fourier_energy(data.x_train, res, data.domain, fourier).tolist()
                if np.all(np.isfinite(res)) else None)
        if linear is not None:
            gap_train, gap_test = linear.gaps(step, pred_train, pred)
            curves["curve_lin_gap_train"].append(gap_train)
            curves["curve_lin_gap_test"].append(gap_test)
        if step in ntk_steps:
            if not k0 and linear is not None and len(ntk_idx) == data.n_train:
                K = linear.kernel  # the probe already has the NTK at init on these inputs
            else:
                K = net.ntk(x_ntk)
            if not k0:  # at init, also each layer's share of the trace
                record["ntk_init_layer_share"] = layer_shares(net.ntk_layer_diagonals(x_ntk))
            spec = spectrum(K) if np.all(np.isfinite(K)) else None
            f_ntk = net.predict(x_ntk)
            summary = kernel_checkpoint(K, y_ntk, f_ntk, data.kind, spec=spec)
            if spec is not None:  # eigenvalues at log-spaced ranks, for the spectrum figure
                ranks = spectrum_ranks(len(K))
                record["ntk_spectrum_rank"] = ranks.tolist()
                record["ntk_final_spectrum"] = spec.eigenvalues[ranks - 1].tolist()
                if not k0:
                    record["ntk_init_spectrum"] = record["ntk_final_spectrum"]
            if not k0:
                k0.append(K)
                spec0.append(spec)
                record["ntk_init"] = summary
                if spec is not None:
                    record["ntk_band_edges"] = band_edges(len(K)).tolist()
                _analytic_distance(trial, model, weights, x_ntk, K, record)
            res = residual(y_ntk, f_ntk, data.kind)
            curves["ntk_residual_band_energy"].append(  # in the eigenbasis of the NTK at init
                spectral_energy(spec0[0], res).tolist()
                if spec0[0] is not None and np.all(np.isfinite(res)) else None)
            curves["ntk_target_alignment"].append(summary["top10pct_alignment"])
            curves["ntk_output_alignment"].append(summary["output_top10pct_alignment"])
            drift = relative_drift(K, k0[0])
            curves["ntk_step"].append(step)
            curves["ntk_centered_alignment"].append(summary["centered_alignment"])
            curves["ntk_top1_alignment"].append(summary["top1_alignment"])
            curves["ntk_residual_alignment"].append(summary["residual_top10pct_alignment"])
            curves["ntk_drift_curve"].append(drift)
            record["ntk_final"] = summary
            record["ntk_drift"] = drift

    log = net.train(data.x_train, data.y_train, trial.training, seed=trial.seed,
                    checkpoints=loss_steps, on_checkpoint=on_checkpoint, grid=data.grid)
    record.update(curves)
    series_steps = list(range(len(log.losses))) if log.exact else log.loss_steps
    record["initial_train_loss"] = log.losses[0] if log.losses else None
    record["steps_to_10pct"] = steps_to_fraction(log.losses, series_steps, 0.1)
    record["steps_to_1pct"] = steps_to_fraction(log.losses, series_steps, 0.01)
    reference = mean_predictor(data, metric, trial.training.loss)
    record["mean_predictor"] = reference
    record["target_train_loss"] = TARGET_FRACTION * reference["train_loss"]
    record["steps_to_target"] = steps_to_loss(log.losses, series_steps,
                                              record["target_train_loss"])
    if log.diverged_at is not None:
        record["status"] = "diverged"
        record["steps_run"] = log.diverged_at
        record["error"] = (f"train loss {log.losses[-1]:.4g} at step {log.diverged_at} "
                           f"(initial {log.losses[0]:.4g}; limit: non-finite or "
                           f"> {trial.training.diverge_factor:g}× initial)")
        return
    record["steps_run"] = steps
    pred_test = net.predict(data.x_test)
    pred_train = net.predict(data.x_train)
    if not (np.all(np.isfinite(pred_test)) and np.all(np.isfinite(pred_train))):
        record["status"] = "diverged"
        record["error"] = "network outputs are not finite after training"
        return
    if linear is not None:
        _, lin_test = linear.predictions(steps)
        with np.errstate(over="ignore"):  # a diverging linear model scores inf, silently
            lin_metric = metric.fn(lin_test, data.y_test) if np.all(np.isfinite(lin_test)) else None
        record["linearized"].update(gap_train=curves["curve_lin_gap_train"][-1],
                                    gap_test=curves["curve_lin_gap_test"][-1],
                                    final_test_metric=lin_metric)
    record["final_train_loss"] = curves["curve_train_loss"][-1]
    record["final_test_metric"] = metric.fn(pred_test, data.y_test)
    finite = [v for v in curves["curve_test_metric"] if math.isfinite(v)]
    best = min if metric.goal == "min" else max
    record["best_test_metric"] = best(finite) if finite else None
    for name, m in METRICS.items():
        if data.kind in m.kinds:
            record[name] = m.fn(pred_test, data.y_test)
            record[name.replace("test_", "train_", 1)] = m.fn(pred_train, data.y_train)
    if data.grid is not None:  # an image task: the picture itself, for the report
        record["arrays"] = image_arrays(data, net.predict(data.grid.x))
    record["status"] = "ok"
    record["error"] = None
    gpu_peak = net.peak_memory_mb()
    if gpu_peak is not None:
        record["peak_memory_mb"] = gpu_peak


def _linearized_probe(trial: Trial, data: Dataset, net: Any, steps: list[int],
                      record: dict[str, Any]) -> LinearizedProbe | None:
    """The linearized-dynamics probe of this trial, or ``None`` (with the reason recorded)."""
    if not trial.measure.linearized:
        return None
    reason = linearization_skip_reason(trial.training, data.n_train, data.out_dim,
                                       trial.measure.linearized_max_n)
    if reason is not None:
        record["linearized"] = {"skipped": reason}
        return None
    try:
        probe = LinearizedProbe(net, data.x_train, data.target_matrix(data.y_train),
                                data.x_test, trial.training.lr, steps)
    except NonFiniteInit as exc:  # training will stop at step 0 and record "diverged"
        record["linearized"] = {"skipped": str(exc)}
        return None
    record["linearized"] = {"dynamics": "gd", "n": data.n_train,
                            "lr_lambda_max_over_n": probe.step_sharpness}
    return probe


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> str | None:
    """A digest of the CPU's instruction-set flags (``/proc/cpuinfo``): the numerical libraries
    dispatch on them (AVX2, AVX-512, ...), so two machines with the same model name but other
    flags may round differently. ``None`` where the flags cannot be read."""
    import hashlib

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = " ".join(sorted(line.partition(":")[2].split()))
                    return hashlib.sha256(flags.encode()).hexdigest()[:12]
    except OSError:
        pass
    return None


def _threads(backend: str) -> int:
    """Threads the backend computes with: part of what makes a CPU result bit-reproducible
    (the order of a parallel reduction depends on it)."""
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    from ntkbench.executors import XLA_SINGLE_THREAD

    if XLA_SINGLE_THREAD in os.environ.get("XLA_FLAGS", ""):
        return 1  # XLA made single-threaded (ntkbench.executors.thread_env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def blas_threads() -> int | None:
    """Threads of numpy's BLAS in this process (``None`` if it cannot be told): numpy's linear
    algebra (the infinite-width kernels, kernel regression, spectra) sums in an order that
    depends on it, and an ill-conditioned solve turns that round-off into a visible change."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return None
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    numpy_pools = [p for p in pools if "numpy" in str(p.get("filepath", ""))]
    pool = (numpy_pools or pools or [None])[0]
    return None if pool is None else int(pool["num_threads"])


def environment() -> dict[str, Any]:
    """Where results were produced: interpreter and platform (for the run manifest)."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "host": socket.gethostname(), "cpu": cpu_model(), "ntkbench": __version__,
            "ntkbench_commit": source_commit()}
