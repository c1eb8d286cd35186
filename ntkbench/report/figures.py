"""Figures of a run, each a function returning a matplotlib :class:`~matplotlib.figure.Figure`.

The figures are built with matplotlib's object-oriented API (``Figure``, not ``pyplot``), so
calling them never changes the backend or the state of a notebook; restyle the returned figure
as any other. Colours are fixed per initializer label by :func:`palette` over every label of
the run, so one initializer has the same colour in every figure of a report.

Over seeds, curves show the median (line) and the interquartile range (band) of the ok trials;
a trial that is not ``ok`` is left out of the curves (the tables count it).

>>> from ntkbench.report import figures
>>> fig = figures.learning_curves(df, "oscillatory_1d")
>>> fig.savefig("curves.pdf")
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ntkbench.report.across import AcrossTasks
from ntkbench.report.numbers import format_number
from ntkbench.report.predictors import MEASURES, OUTCOMES, spearman, spearman_ci

SIZE = (6.4, 4.0)  # inches; about a column of an article at 100%
GAP_CLIP = 1e3  # the linearization-gap axis ends here
_CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")  # matplotlib's tab10, listed to be independent of rc


def palette(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label, tab10 in sorted label order; beyond ten labels the colours repeat."""
    return {label: _CYCLE[i % len(_CYCLE)] for i, label in enumerate(sorted(set(labels)))}


def trial_labels(df: pd.DataFrame) -> pd.Series:
    """Each trial's initializer label (a sweep's ``init_label``, else the initializer's name),
    followed by its sweep label where the trials have more than one (``he_normal
    model.depth=4``): the key of the legend and of :func:`palette`."""
    if "init_label" in df.columns:
        label = df["init_label"].astype(object)
        label = label.where(label.notna() & (label != ""), df.get("initializer", "?")).map(str)
    else:
        label = df["initializer"].map(str)
    if "sweep_label" in df.columns:
        sweep = df["sweep_label"].fillna("").astype(str)
        if sweep[sweep != ""].nunique() > 1:
            label = label.where(sweep == "", label + " " + sweep)
    return label


def _trials(df: pd.DataFrame, task: str, backend: str | None) -> pd.DataFrame:
    rows = df[df["task"] == task]
    if backend is not None and "backend" in rows.columns:
        rows = rows[rows["backend"] == backend]
    if rows.empty:
        raise ValueError(f"no trials of task {task!r}"
                         + (f" on backend {backend!r}" if backend else ""))
    rows = rows.assign(_label=trial_labels(rows))
    return rows


def _ok(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["status"] == "ok"] if "status" in rows.columns else rows


def is_curve(value: object) -> bool:
    """A non-empty list or array (a trial without the curve has ``None`` or ``nan``)."""
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0


def _stack(rows: pd.DataFrame, x_col: str, y_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several trials on the x values of the first, others interpolated onto them
    (in log-x for positive x); returns ``(x, Y)`` with one row of ``Y`` per trial."""
    curves = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
              for x, y in zip(rows[x_col], rows[y_col], strict=True)
              if is_curve(x) and is_curve(y) and len(x) == len(y)]
    if not curves:
        return np.array([]), np.empty((0, 0))
    x0 = max(curves, key=lambda c: len(c[0]))[0]
    out = []
    for x, y in curves:
        out.append(y if len(x) == len(x0) and np.array_equal(x, x0)
                   else np.interp(x0, x, y, left=np.nan, right=np.nan))
    return x0, np.vstack(out)


def _band(ax, x, Y, color, label, *, positive: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan steps: simply not drawn
        q25, q50, q75 = np.nanpercentile(Y, [25, 50, 75], axis=0)
    keep = np.isfinite(q50) & (x > 0)
    if positive:
        keep &= q50 > 0
    n = Y.shape[0]
    ax.plot(x[keep], q50[keep], color=color, lw=1.6, label=f"{label} (n={n})")
    if n > 1:
        ax.fill_between(x[keep], q25[keep], q75[keep], color=color, alpha=0.2, lw=0)


def _legend(ax, n: int) -> None:
    if n:
        ax.legend(fontsize=7, frameon=False, loc="best", ncol=1 if n <= 6 else 2)


def learning_curves(df: pd.DataFrame, task: str, *, quantity: str = "train_loss",
                    backend: str | None = None, colors: dict[str, str] | None = None) -> Figure:
    """Train loss (``quantity="train_loss"``, log–log) or the test metric (``"test_metric"``,
    log x) against the step: per initializer the median over ok seeds and the IQR band.
    Step 0 cannot sit on a log axis, so the curves start at step 1."""
    column = {"train_loss": "curve_train_loss", "test_metric": "curve_test_metric"}[quantity]
    rows = _ok(_trials(df, task, backend))
    colors = colors or palette(trial_labels(df))
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for label, group in rows.groupby("_label", sort=True):
        x, Y = _stack(group, "curve_step", column)
        if Y.size:
            _band(ax, x, Y, colors.get(label, "k"), label, positive=quantity == "train_loss")
            drawn += 1
    ax.set_xscale("log")
    metric = str(rows["metric"].iloc[0]) if "metric" in rows.columns and len(rows) else "metric"
    if quantity == "train_loss":
        ax.set_yscale("log")
        ax.set_ylabel("train loss")
    else:
        ax.set_ylabel(metric.replace("_", " "))
        goal = str(rows["metric_goal"].iloc[0]) if "metric_goal" in rows.columns else ""
        values = np.concatenate([np.asarray(v, dtype=float) for v in rows[column]
                                 if v is not None] or [np.array([])])
        if goal == "min" and len(values) and np.nanmin(values) > 0:
            ax.set_yscale("log")  # an error spans decades (and early spikes would flatten it)
    ax.set_xlabel("step")
    ax.set_title(f"{task}: {'train loss' if quantity == 'train_loss' else metric} "
                 "(median and IQR over seeds)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax, drawn)
    return fig


def ntk_curves(df: pd.DataFrame, task: str, *, backend: str | None = None,
               colors: dict[str, str] | None = None) -> Figure:
    """Four panels against the step of each NTK measurement: the centred alignment of the
    kernel with the targets, the share of the targets and of the residual in the kernel's
    top-10% eigenspace (Kopitkov & Indelman 2020), and the kernel drift
    ‖K_t − K_0‖_F / ‖K_0‖_F; median and IQR over ok seeds."""
    rows = _ok(_trials(df, task, backend))
    colors = colors or palette(trial_labels(df))
    fig = Figure(figsize=(SIZE[0] * 1.7, SIZE[1] * 1.7), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = (("ntk_centered_alignment", "centred kernel-target alignment", "alignment"),
              ("ntk_target_alignment", "targets in the top-10% eigenspace", "alignment"),
              ("ntk_residual_alignment", "residual in the top-10% eigenspace", "alignment"),
              ("ntk_drift_curve", "drift ‖K_t − K_0‖_F / ‖K_0‖_F", "relative change"))
    drawn = 0
    for label, group in rows.groupby("_label", sort=True):
        color = colors.get(label, "k")
        for ax, (column, _, _) in zip(axes, panels, strict=True):
            if column not in group.columns:
                continue
            x, Y = _stack(group, "ntk_step", column)
            if Y.size:
                _band(ax, x, Y, color, label, positive=False)
                drawn += ax is axes[0]
    for ax, (_, title, ylabel) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[3].set_yscale("symlog", linthresh=0.01)
    axes[3].set_ylim(bottom=0)  # a drift is a norm ratio: no negative ticks
    _legend(axes[0], drawn)
    fig.suptitle(f"{task}: the kernel during training (median and IQR over seeds)", fontsize=10)
    return fig


#: The two bases of the residual spectrum: (energy column, band-edge column, step column).
RESIDUAL_BASES = {"ntk": ("ntk_residual_band_energy", "ntk_band_edges", "ntk_step"),
                  "fourier": ("fourier_residual_band_energy", "fourier_band_edges",
                              "curve_step")}


def residual_spectrum(df: pd.DataFrame, task: str, *, backend: str | None = None,
                      max_groups: int = 6, basis: str = "ntk") -> Figure:
    """The spectral-bias view, one panel per initializer (and sweep value): the residual's
    energy in each band, relative to its value at step 0, against the step (median over ok
    seeds; bands coloured from the first, dark, to the last, light). ``basis="ntk"``: octave
    bands of eigenvector ranks of the NTK at init, at the NTK checkpoints — a linearized network
    empties the top bands first; ``basis="fourier"``: octave bands of Fourier frequency
    ``|k|_∞`` (cycles over the input box, :mod:`ntkbench.ntk.fourier`) on the training inputs,
    at every loss checkpoint, for tasks whose inputs are drawn uniformly from a box (the mean,
    ``k = 0``, is left out: fitted within a few steps, what is left of it is noise). A band's
    estimate can be negative (it is unbiased, not a sum of squares): it is left off the log
    axis."""
    from matplotlib import colormaps

    if basis not in RESIDUAL_BASES:
        raise ValueError(f"basis must be one of {', '.join(RESIDUAL_BASES)}, got {basis!r}")
    energy, edge_column, step_column = RESIDUAL_BASES[basis]
    rows = _ok(_trials(df, task, backend))
    rows = rows[rows[energy].map(is_curve)] if energy in rows.columns else rows.iloc[:0]
    groups = list(rows.groupby("_label", sort=True))[:max_groups]
    fig = Figure(figsize=(min(3.2 * max(len(groups), 1), 16.0), SIZE[1]), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(groups), 1), sharey=True))
    for ax, (label, group) in zip(axes, groups, strict=False):
        steps = np.asarray(group[step_column].iloc[0], dtype=float)
        edges = list(group[edge_column].iloc[0]) if edge_column in group else []
        # Trials with an energy vector at every step (None where the values were not finite).
        curves = [np.array(trial, dtype=float) for trial in group[energy]
                  if len(trial) == len(steps) and all(e is not None and len(e) for e in trial)]
        if not curves or not edges:
            continue
        n_bands = min(c.shape[1] for c in curves)
        rel = np.stack([c[:, :n_bands] / np.where(c[:1, :n_bands] > 0, c[:1, :n_bands], np.nan)
                        for c in curves])
        with warnings.catch_warnings():  # a band negative in every seed: all-NaN, left out
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(np.where(rel > 0, rel, np.nan), axis=0)
        cmap = colormaps["viridis"]
        x = np.maximum(steps, 0.5)  # step 0 on a log axis
        for b in range(0 if basis == "ntk" else 1, n_bands):
            if basis == "ntk":
                lo, hi = edges[b] + 1, edges[b + 1]
                name = f"ranks {lo}" + (f"–{hi}" if hi > lo else "")
            else:
                lo, hi = edges[b], edges[b + 1] - 1
                name = f"|k| {lo}" + (f"–{hi}" if hi > lo else "")
            ax.plot(x, median[:, b], color=cmap(b / max(n_bands - 1, 1)), lw=1.5, label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step (0 drawn at 0.5)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("residual energy / energy at step 0")
    if groups:
        axes[-1].legend(frameon=False, fontsize=7, loc="lower left")
    what = "NTK-at-init eigenvectors" if basis == "ntk" else \
        "Fourier frequencies (cycles over the input box)"
    fig.suptitle(f"{task}: residual per band of {what} (median over seeds)", fontsize=10)
    return fig


def ntk_spectrum(df: pd.DataFrame, task: str, *, backend: str | None = None,
                 colors: dict[str, str] | None = None) -> Figure:
    """The NTK eigen-spectrum λ_i against the rank i (log–log) at initialisation (left) and
    at the last NTK checkpoint (right): per initializer the median over ok seeds and the IQR
    band. Eigenvalues are stored at log-spaced ranks (``ntk_spectrum_rank``); zeros (round-off)
    are left out of the log axis."""
    rows = _ok(_trials(df, task, backend))
    colors = colors or palette(trial_labels(df))
    if "ntk_spectrum_rank" not in rows.columns:
        raise ValueError("the trials recorded no spectrum (ntk_spectrum_rank; ntkbench >= 0.4 "
                         "with NTK checkpoints)")
    fig = Figure(figsize=(SIZE[0] * 1.6, SIZE[1]), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    drawn = 0
    for label, group in rows.groupby("_label", sort=True):
        for ax, column in zip(axes, ("ntk_init_spectrum", "ntk_final_spectrum"), strict=True):
            x, Y = _stack(group, "ntk_spectrum_rank", column)
            if Y.size:
                _band(ax, x, np.where(Y > 0, Y, np.nan), colors.get(label, "k"), label,
                      positive=True)
                drawn += ax is axes[0]
    for ax, when in zip(axes, ("at initialisation", "after training"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rank i")
        ax.set_title(f"NTK eigenvalues {when}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("λ_i")
    _legend(axes[0], drawn)
    fig.suptitle(f"{task}: NTK spectrum (median and IQR over seeds)", fontsize=10)
    return fig


def linearized_gap(df: pd.DataFrame, task: str, *, backend: str | None = None,
                   colors: dict[str, str] | None = None) -> Figure:
    """How far the real network is from its linearization around the initial weights,
    ``‖f_t − f_lin(t)‖ / ‖f_t‖`` on the training (solid) and test (dashed) inputs against the
    step; median over ok seeds. Only trials where the linearized model applies recorded it
    (full-batch GD on MSE, see ``linearized.skipped``)."""
    rows = _ok(_trials(df, task, backend))
    colors = colors or palette(trial_labels(df))
    if "curve_lin_gap_train" not in rows.columns:
        raise ValueError("the trials recorded no linearization gap (the closed form needs "
                         "full-batch gradient descent on MSE; see linearized.skipped)")
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    drawn, clipped = 0, False
    for label, group in rows.groupby("_label", sort=True):
        group = group[group["curve_lin_gap_train"].map(is_curve)]
        color = colors.get(label, "k")
        for column, style in (("curve_lin_gap_train", "-"), ("curve_lin_gap_test", "--")):
            x, Y = _stack(group, "curve_step", column)
            if Y.size:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-nan steps
                    med = np.nanmedian(Y, axis=0)
                keep = (x > 0) & np.isfinite(med) & (med > 0)
                ax.plot(x[keep], med[keep], style, color=color,
                        label=label if style == "-" else None, lw=1.5)
                drawn += style == "-"
                clipped |= bool(np.any(med[keep] > GAP_CLIP))
    ax.set_xscale("log")
    ax.set_yscale("log")
    if clipped:  # a diverging linear model (η λ_max / n > 2) would flatten every other curve
        ax.set_ylim(top=GAP_CLIP)
        ax.text(0.02, 0.97, f"clipped at {GAP_CLIP:g}: the linearized model diverges "
                "(η λ_max / n > 2, see linearized.lr_lambda_max_over_n)",
                transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xlabel("step")
    ax.set_ylabel("‖f − f_lin‖ / ‖f‖")
    ax.set_title(f"{task}: distance from the linearized network (solid: train, dashed: test)",
                 fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax, drawn)
    return fig


def image_prediction(df: pd.DataFrame, task: str, *, seed: int | None = None,
                     backend: str | None = None) -> Figure:
    """For an image task: the true image, the training pixels (the others grey), and each
    initializer's predicted full image for one seed (the lowest by default), with its test
    metric. Reads each trial's side file ``trials/<hash>.npz``, so ``df`` needs ``run_dir``
    (as from :func:`ntkbench.report.site.load_runs`) and ``arrays_file``."""
    from ntkbench.store import RunStore

    rows = _ok(_trials(df, task, backend))
    if "arrays_file" not in rows.columns or "run_dir" not in rows.columns:
        raise ValueError("no predicted images recorded (image tasks only; needs the trials' "
                         "run_dir and their trials/<hash>.npz side files)")
    rows = rows[rows["arrays_file"].notna()]
    if rows.empty:
        raise ValueError(f"no trial of task {task!r} recorded a predicted image")
    seed = int(rows["seed"].min()) if seed is None else seed
    rows = rows[rows["seed"] == seed].sort_values("_label")
    images = [(r["_label"], r, RunStore(r["run_dir"]).arrays(r["trial_hash"]))
              for _, r in rows.iterrows()]
    images = [(label, r, a) for label, r, a in images if "image_prediction" in a]
    if not images:
        raise ValueError("the side files of the trials are missing")
    first = images[0][2]
    truth = first["image_target"].astype(float)
    mask = first["image_train_mask"]
    observed = np.where(mask[..., None], truth, 0.5)
    panels = [("ground truth", truth), (f"training pixels ({mask.mean():.0%})", observed)]
    metric = str(rows["metric"].iloc[0]) if "metric" in rows.columns else "metric"
    panels += [(f"{label}\n{metric} {format_number(r['final_test_metric'])}",
                a["image_prediction"].astype(float)) for label, r, a in images]
    cols = min(4, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(2.4 * cols, 2.5 * n_rows), layout="constrained")
    for i, (title, image) in enumerate(panels):
        ax = fig.add_subplot(n_rows, cols, i + 1)
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"{task}: predicted images, seed {seed}", fontsize=10)
    return fig


def layer_share(df: pd.DataFrame, task: str, *, backend: str | None = None,
                colors: dict[str, str] | None = None) -> Figure:
    """Per initializer, the share of tr K at initialisation contributed by each layer's
    parameters (mean over every trial that measured it), as grouped bars."""
    rows = _trials(df, task, backend)
    colors = colors or palette(trial_labels(df))
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    shares = {}
    if "ntk_init_layer_share" in rows.columns:
        for label, group in rows.groupby("_label", sort=True):
            arrays = [np.asarray(v, dtype=float) for v in group["ntk_init_layer_share"]
                      if is_curve(v)]
            if arrays and len({len(a) for a in arrays}) == 1:
                shares[label] = np.mean(arrays, axis=0)
    width = 0.8 / max(len(shares), 1)
    for i, (label, share) in enumerate(shares.items()):
        ax.bar(np.arange(len(share)) + i * width - 0.4 + width / 2, share, width,
               color=colors.get(label, "k"), label=label)
    if shares:
        n_layers = len(next(iter(shares.values())))
        ax.set_xticks(range(n_layers), [f"layer {i + 1}" for i in range(n_layers)])
    ax.set_ylabel("share of tr K at init")
    ax.set_title(f"{task}: where the kernel at initialisation comes from", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    _legend(ax, len(shares))
    return fig


def predictor_scatter(df: pd.DataFrame, task: str, measure: str = "ntk_init.centered_alignment",
                      outcome: str = "final_test_metric", *, backend: str | None = None,
                      colors: dict[str, str] | None = None) -> Figure:
    """An NTK measurement at init (x) against an outcome (y), one point per ok trial coloured by
    initializer, with Spearman's ρ and its 95% bootstrap CI in the title (see
    :mod:`ntkbench.report.predictors`). Trials that never reached 10% are drawn at the top."""
    rows = _ok(_trials(df, task, backend))
    colors = colors or palette(trial_labels(df))
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    x = pd.to_numeric(rows.get(measure), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(rows.get(outcome), errors="coerce").to_numpy(dtype=float)
    never = np.isnan(y) & (outcome == "steps_to_10pct")
    finite_y = y[np.isfinite(y)]
    y_plot = np.where(never, (finite_y.max() * 1.1 if len(finite_y) else 1.0), y)
    for label in sorted(set(rows["_label"])):
        m = (rows["_label"] == label).to_numpy() & np.isfinite(x) & np.isfinite(y_plot)
        ax.scatter(x[m], y_plot[m], s=28, color=colors.get(label, "k"), label=label,
                   marker="o", edgecolors="none")
        mn = m & never
        if mn.any():
            ax.scatter(x[mn], y_plot[mn], s=60, facecolors="none", edgecolors="k", lw=0.6)
    keep = np.isfinite(x) & ~np.isnan(np.where(never, np.inf, y))
    title = f"{task}: {MEASURES.get(measure, measure)} vs {OUTCOMES.get(outcome, outcome)}"
    if keep.sum() >= 3:
        yy = np.where(never, np.inf, y)[keep]
        rho = float(spearman(x[keep], yy))
        low, high = spearman_ci(x[keep], yy)
        if math.isfinite(rho):
            title += f"\nSpearman ρ = {rho:.2f} [{low:.2f}, {high:.2f}], n = {int(keep.sum())}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(MEASURES.get(measure, measure) + " at init")
    metric = str(rows["metric"].iloc[0]) if "metric" in rows.columns and len(rows) else ""
    ax.set_ylabel(metric.replace("_", " ") if outcome == "final_test_metric"
                  else OUTCOMES.get(outcome, outcome) + (" (circled: never, drawn on top)"
                                                         if never.any() else ""))
    if len(x[np.isfinite(x)]) and np.nanmin(x) > 0 and np.nanmax(x) / np.nanmin(x) > 30:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    _legend(ax, len(set(rows["_label"])))
    return fig


def critical_difference(summary: AcrossTasks, colors: dict[str, str] | None = None) -> Figure:
    """Critical-difference diagram of the mean ranks across tasks (Demšar 2006), drawn by
    ``scikit_posthocs.critical_difference_diagram``: initializers joined by a bar are not
    significantly different by the Nemenyi test."""
    import scikit_posthocs

    fig = Figure(figsize=(SIZE[0] * 1.25, 1.6 + 0.3 * len(summary.mean_rank)))
    # The diagram writes its labels outside the axes: leave them room on both sides.
    fig.subplots_adjust(left=0.24, right=0.76, top=0.8, bottom=0.02)
    ax = fig.add_subplot()
    title = f"mean rank over {summary.n_tasks} tasks"
    if summary.backend:
        title += f" ({summary.backend})"
    if summary.nemenyi_p.empty:
        ax.set_axis_off()
        ax.set_title(title + ": the Nemenyi test needs at least 3 initializers", fontsize=9)
        return fig
    colors = colors or palette(summary.mean_rank.index)
    scikit_posthocs.critical_difference_diagram(
        summary.mean_rank, summary.nemenyi_p, ax=ax,
        color_palette={k: colors.get(k, "k") for k in summary.mean_rank.index})
    ax.set_title(f"{title}; Friedman p = {summary.friedman_p:.3g}, "
                 f"Nemenyi CD = {summary.critical_difference:.2f}", fontsize=9, pad=22)
    return fig


def performance_profile(summary: AcrossTasks, colors: dict[str, str] | None = None) -> Figure:
    """Performance profile (Dolan & Moré 2002): per initializer, the fraction of tasks on which
    its cost is within a factor τ of the best (see :mod:`ntkbench.report.across`)."""
    colors = colors or palette(summary.profile.columns)
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    for name in summary.profile.columns:
        ax.step(summary.profile.index, summary.profile[name], where="post",
                color=colors.get(name, "k"), label=name, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("τ (cost within a factor τ of the best on the task)")
    ax.set_ylabel("fraction of tasks")
    ax.set_ylim(-0.02, 1.02)
    n = len(summary.cost)
    ax.set_title(f"performance profile over {n} task(s)"
                 + (f" ({summary.backend})" if summary.backend else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, len(summary.profile.columns))
    return fig
