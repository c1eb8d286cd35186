"""A static results site: ``ntkbench report RUN_DIR [RUN_DIR ...] --out SITE_DIR``.

Layout of ``SITE_DIR``::

    index.html             provenance, the across-task summary (mean ranks, Friedman,
                           Nemenyi CD diagram, performance profile), links to the tasks
    task-<name>.html       per task: the leaderboard with CIs and top groups, the figures,
                           what the NTK at init predicts (Spearman ρ), every trial
    figures/*.svg, *.pdf   each figure for the web (SVG, shown) and for papers (PDF, linked)
    trials/<hash>.json     each trial's record, copied, so that the drill-down links work
    leaderboard.csv        the numbers of every table at full precision

Everything is local files with relative links and inline CSS, no scripts and no CDN: the site
opens from ``file://`` and works offline. The pages are written by hand from escaped strings
(``html.escape``) because the structure is a handful of headings, tables and images, for which
a template engine would be one more dependency without saving code.
"""

from __future__ import annotations

import html
import math
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ntkbench.report import figures
from ntkbench.report.across import AcrossTasks, across_tasks
from ntkbench.report.leaderboard import TaskTable, latest_records, leaderboard
from ntkbench.report.numbers import MISSING, format_number, format_steps
from ntkbench.report.predictors import ntk_predictors
from ntkbench.report.provenance import provenance
from ntkbench.report.render import _CSS, LEGEND, NUMBERS_NOTE, html_table, render
from ntkbench.store import damaged_note

esc = html.escape
_SITE_CSS = _CSS + """
nav { margin-bottom: 1em; font-size: 0.95em; }
nav a { margin-right: 0.8em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; width: 640px; border: 1px solid #eee; }
figure.wide img { width: 980px; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
table.prov td:first-child { font-weight: bold; padding-right: 1.5em; }
p.lead { max-width: 60em; }"""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "x"


def _page(title: str, body: list[str], nav: list[tuple[str, str]]) -> str:
    links = " ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in nav)
    return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{esc(title)}</title>", f"<style>\n{_SITE_CSS}\n</style>",
                      "</head>", "<body>", f"<nav>{links}</nav>", f"<h1>{esc(title)}</h1>",
                      *body, "</body>", "</html>"]) + "\n"


def load_runs(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """The trials of every run directory in one table, with a ``run_dir`` column."""
    from ntkbench.store import load_results

    frames, superseded, damaged = [], Counter(), {}
    for run_dir in run_dirs:
        frame = load_results(run_dir)
        superseded.update(frame.attrs.get("superseded", {}))
        damaged.update(frame.attrs.get("damaged", {}))
        frame["run_dir"] = str(run_dir)
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df.attrs.update(superseded=dict(superseded), damaged=damaged)
    if df.empty:
        raise ValueError("no trials in " + ", ".join(map(str, run_dirs)))
    return df


class _Figures:
    """Writes each figure as SVG and PDF under ``figures/`` and returns the HTML for it."""

    def __init__(self, out: Path, progress: Callable[[str], None] | None) -> None:
        self.dir = out / "figures"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress

    def __call__(self, name: str, make: Callable[[], object], caption: str,
                 wide: bool = False) -> list[str]:
        if self.progress:
            self.progress(name)
        try:
            fig = make()
        except (ValueError, KeyError) as exc:  # e.g. a column this run did not record
            return [f'<p class="numbers">{esc(name)}: not drawn ({esc(str(exc))})</p>']
        stem = _slug(name)
        meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
        for ext in ("svg", "pdf"):
            fig.savefig(self.dir / f"{stem}.{ext}", metadata=meta[ext])
        return ['<figure class="wide">' if wide else "<figure>",
                f'<img src="figures/{esc(stem)}.svg" alt="{esc(caption)}">',
                f'<figcaption>{esc(caption)} (<a href="figures/{esc(stem)}.pdf">PDF</a>)'
                "</figcaption>", "</figure>"]


def build_site(run_dirs: Sequence[str | Path], out: str | Path,
               progress: Callable[[str], None] | None = None) -> Path:
    """Write the site of ``run_dirs`` to ``out`` and return the path of its ``index.html``.

    Raises:
        FileNotFoundError: a run directory does not exist or holds no records.
        ValueError: the runs hold no trials.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = load_runs(run_dirs)
    latest, _ = latest_records(df)
    latest.attrs["damaged"] = df.attrs.get("damaged", {})
    tables = leaderboard(df)
    summaries = across_tasks(tables)
    predictors = ntk_predictors(latest)
    colors = figures.palette(figures.trial_labels(latest))
    fig = _Figures(out, progress)
    pages = [(t.task, f"task-{_slug(t.task)}.html") for t in tables]
    nav = [("index", "index.html"), *pages]

    (out / "leaderboard.csv").write_text(render(df, "csv"))
    _copy_records(latest, out / "trials")
    (out / "index.html").write_text(
        _page("ntkbench results" + _suite_suffix(latest),
              _index_body(latest, run_dirs, tables, summaries, pages, fig, colors), nav))
    for table, (_, href) in zip(tables, pages, strict=True):
        trials = latest[latest["task"] == table.task]
        body = _task_body(table, trials, predictors[predictors["task"] == table.task], fig,
                          colors)
        (out / href).write_text(_page(f"{table.task}", body, nav))
    return out / "index.html"


def _suite_suffix(df: pd.DataFrame) -> str:
    if "suite" not in df.columns:
        return ""
    suites = sorted(map(str, pd.unique(df["suite"].dropna())))
    return f": {', '.join(suites)}" if suites else ""


def _copy_records(df: pd.DataFrame, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if "trial_hash" not in df.columns or "run_dir" not in df.columns:
        return
    for run_dir, trial_hash in zip(df["run_dir"], df["trial_hash"], strict=True):
        source = Path(run_dir) / "trials" / f"{trial_hash}.json"
        if source.is_file():
            shutil.copyfile(source, dest / source.name)


def _legend() -> list[str]:
    return ["<h2>How to read the tables</h2>", "<dl>",
            *(f"<dt>{esc(term)}</dt><dd>{esc(text)}</dd>" for term, text in LEGEND),
            "</dl>", f'<p class="numbers">{esc(NUMBERS_NOTE)}</p>']


def _index_body(df, run_dirs, tables: list[TaskTable], summaries: list[AcrossTasks],
                pages, fig: _Figures, colors) -> list[str]:
    body = []
    if note := damaged_note(df.attrs.get("damaged")):
        body.append(f'<p class="lead"><strong>{esc(note)}</strong></p>')
    body += ["<h2>Provenance</h2>", '<table class="prov">',
            *(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in provenance(df, run_dirs)),
            "</table>", "<h2>Tasks</h2>", "<ul>"]
    for table, (task, href) in zip(tables, pages, strict=True):
        top = [r[1] for r in table.rows if r[0] == "=1"]
        if "backend" in table.columns:  # one top group per backend: say which is which
            b = table.columns.index("backend")
            top = [f"{r[1]} ({r[b]})" for r in table.rows if r[0] == "=1"]
        body.append(f'<li><a href="{esc(href)}">{esc(task)}</a> — {esc(table.metric)} '
                    f"({esc(table.goal_text)}); top group: {esc(', '.join(top) or MISSING)}</li>")
    body.append("</ul>")
    body += ['<h2>Across tasks</h2>',
             '<p class="lead">Each task ranks the initializers (a failed or diverged seed counts '
             "as the worst outcome); the mean rank over tasks is compared by Friedman's test and "
             "the Nemenyi critical difference (CD): initializers whose mean ranks differ by less "
             "than CD, joined by a bar in the diagram, are not significantly different. The "
             "performance profile shows on what fraction of tasks each initializer's cost (MSE, "
             "error rate, or relative squared error for dB metrics) is within a factor τ of the "
             "best.</p>"]
    if not summaries:
        body.append("<p>Fewer than two tasks per backend: no across-task comparison.</p>")
    for s in summaries:
        suffix = f" ({s.backend})" if s.backend and len(summaries) > 1 else ""
        columns = ["initializer", "mean rank", "best on", "within 2× of best on"]
        rows = [[name, f"{s.mean_rank[name]:.2f}", _fraction(s, name, 1.0),
                 _fraction(s, name, 2.0)] for name in s.mean_rank.index]
        body += [f"<h3>Mean rank over {s.n_tasks} tasks{esc(suffix)}</h3>",
                 *html_table(columns, rows, text_columns={"initializer"}),
                 f'<p class="numbers">{esc(_friedman_text(s))}</p>']
        body += [f'<p class="numbers">{esc(n)}</p>' for n in s.notes]
        tag = _slug(s.backend or "all")
        body += fig(f"cd-{tag}", lambda s=s: figures.critical_difference(s, colors),
                    "Critical-difference diagram of the mean ranks", wide=False)
        body += fig(f"profile-{tag}", lambda s=s: figures.performance_profile(s, colors),
                    "Performance profile")
    return body + _legend()


def _fraction(s: AcrossTasks, name: str, tau: float) -> str:
    if s.profile.empty or s.cost.empty:
        return MISSING
    value = float(s.profile[name].iloc[int(np.argmin(np.abs(s.profile.index - tau)))])
    return f"{round(value * len(s.cost))}/{len(s.cost)}"


def _friedman_text(s: AcrossTasks) -> str:
    if math.isnan(s.friedman_p):
        return "Friedman's test needs at least 3 initializers."
    verdict = ("the mean ranks differ significantly" if s.friedman_p < 0.05 else
               "no significant difference between the mean ranks, so no pair is separated")
    return (f"Friedman χ² = {s.friedman_statistic:.2f} (k = {len(s.mean_rank)}, "
            f"N = {s.n_tasks}), p = {format_number(s.friedman_p)}: {verdict}. Nemenyi CD at "
            f"α = 0.05: {s.critical_difference:.2f} ranks.")


def _task_body(table: TaskTable, trials: pd.DataFrame, predictors: pd.DataFrame,
               fig: _Figures, colors) -> list[str]:
    task = table.task
    body = [f"<h2>Leaderboard — {esc(table.metric)} ({esc(table.goal_text)})</h2>",
            *html_table(table.columns, table.rows)]
    if table.notes:
        body += ['<ul class="notes">', *(f"<li>{esc(n)}</li>" for n in table.notes), "</ul>"]
    body.append('<p class="numbers">Columns are explained on the <a href="index.html">index '
                "page</a>.</p>")
    backends = list(pd.unique(trials["backend"])) if "backend" in trials.columns else [None]
    for backend in backends:
        suffix = f" ({backend})" if backend and len(backends) > 1 else ""
        tag = _slug(f"{task}-{backend}") if backend else _slug(task)
        body.append(f"<h2>Training{esc(suffix)}</h2>")
        body += fig(f"{tag}-train-loss", lambda b=backend: figures.learning_curves(
            trials, task, backend=b, colors=colors),
            "Train loss against step: median over ok seeds, interquartile band")
        body += fig(f"{tag}-test-metric", lambda b=backend: figures.learning_curves(
            trials, task, quantity="test_metric", backend=b, colors=colors),
            f"{table.metric} against step: median over ok seeds, interquartile band")
        if "arrays_file" in trials.columns and trials["arrays_file"].notna().any():
            body += fig(f"{tag}-images", lambda b=backend: figures.image_prediction(
                trials, task, backend=b), "Ground truth, the training pixels and each "
                "initializer's prediction of the full image", wide=True)
        body.append(f"<h2>The kernel{esc(suffix)}</h2>")
        body += fig(f"{tag}-ntk", lambda b=backend: figures.ntk_curves(
            trials, task, backend=b, colors=colors),
            "Kernel-target alignment, residual alignment with the top-10% NTK eigenspace and "
            "kernel drift over training",
            wide=True)
        body += fig(f"{tag}-spectrum", lambda b=backend: figures.ntk_spectrum(
            trials, task, backend=b, colors=colors),
            "NTK eigen-spectrum at initialisation and after training", wide=True)
        if _has_curve(trials, "ntk_residual_band_energy"):
            body += fig(f"{tag}-residual-spectrum", lambda b=backend: figures.residual_spectrum(
                trials, task, backend=b), "The residual per band of eigenvectors of the NTK "
                "at init, relative to step 0: the spectral-bias view of training.", wide=True)
        if _has_curve(trials, "fourier_residual_band_energy"):
            body += fig(f"{tag}-fourier-spectrum", lambda b=backend: figures.residual_spectrum(
                trials, task, backend=b, basis="fourier"), "The residual per octave band of "
                "Fourier frequencies on the training inputs, relative to step 0: low "
                "frequencies are fitted first.", wide=True)
        if _has_curve(trials, "curve_lin_gap_train"):
            body += fig(f"{tag}-linearized", lambda b=backend: figures.linearized_gap(
                trials, task, backend=b, colors=colors),
                "Gap between the network and its linearization at init, over training")
        body += fig(f"{tag}-layer-share", lambda b=backend: figures.layer_share(
            trials, task, backend=b, colors=colors),
            "Share of tr K at initialisation per layer")
    body += _predictor_section(task, trials, predictors, fig, colors)
    body += _trial_table(trials)
    return body


def _has_curve(trials: pd.DataFrame, column: str) -> bool:
    return column in trials.columns and bool(trials[column].map(figures.is_curve).any())


def _predictor_section(task, trials, predictors: pd.DataFrame, fig: _Figures, colors
                       ) -> list[str]:
    body = ["<h2>Does the kernel at initialisation predict the outcome?</h2>"]
    if predictors.empty:
        return body + ["<p>Too few ok trials with NTK measurements (at least 5 are needed).</p>"]
    columns = ["measure at init", "outcome", "backend", "n", "Spearman ρ [95% CI]", "p"]
    rows = [[r.measure_label, r.outcome_label + (" (lower is better)" if r.goal == "min"
                                                 else " (higher is better)"), r.backend,
             str(r.n), f"{r.rho:.2f} [{_f2(r.ci_low)}, {_f2(r.ci_high)}]",
             format_number(r.p_value)] for r in predictors.itertuples()]
    body += html_table(columns, rows, text_columns={"measure at init", "outcome", "backend"})
    body.append(f'<p class="numbers">Spearman rank correlation across the ok trials of this '
                f"task (initializers and seeds pooled), paired-bootstrap CI; the p-values are "
                f"not corrected for the {len(predictors)} correlations on this page, so read "
                "|ρ| with a CI away from 0 as a lead, not a finding.</p>")
    main = predictors[predictors["outcome"] == "final_test_metric"]
    if len(main):
        best = main.loc[main["rho"].abs().idxmax()]
        body += fig(f"{_slug(task)}-predictor", lambda: figures.predictor_scatter(
            trials, task, best["measure"], colors=colors,
            backend=best["backend"] if best["backend"] else None),
            f"{best['measure_label']} at init against the final {trials['metric'].iloc[0]}: "
            "the strongest rank correlation of the table")
    return body


def _f2(x: float) -> str:
    return MISSING if x is None or math.isnan(x) else f"{x:.2f}"


def _trial_table(trials: pd.DataFrame) -> list[str]:
    target = "steps_to_target" in trials.columns
    columns = ["record", "initializer", "backend", "sweep", "seed", "status", "final metric",
               "steps to target" if target else "steps to 10%", "wall time (s)"]
    rows, links = [], []
    order = [c for c in ("init_label", "backend", "sweep_label", "seed") if c in trials.columns]
    for _, r in trials.sort_values(order, kind="stable").iterrows():
        steps = r.get("steps_to_target", r.get("steps_to_10pct"))
        rows.append([str(r.get("trial_hash", "")), str(r.get("init_label", r.get("initializer"))),
                     str(r.get("backend", "")), str(r.get("sweep_label") or ""),
                     str(r.get("seed", "")), str(r.get("status", "")),
                     format_number(r.get("final_test_metric")),
                     "never" if steps is None or pd.isna(steps) else format_steps(float(steps)),
                     format_number(r.get("wall_time_s"))])
        links.append(str(r.get("trial_hash", "")))
    text = {"record", "initializer", "backend", "sweep", "status"}
    links = [f"trials/{h}.json" if h else None for h in links]
    return ["<h2>Every trial</h2>", *html_table(columns, rows, text_columns=text, links=links)]
