"""Render leaderboard tables as Markdown, HTML, LaTeX, CSV or plain text.

Every format shows the same :func:`~ntkbench.report.leaderboard.leaderboard` tables, one per
task, in order of first appearance, and the provenance of the trials (suite, ntkbench version
and commit, libraries, device, dates; :mod:`ntkbench.report.provenance`):

- ``md``: the provenance in italics, then per task a ``### <task> — <metric> (lower is
  better)`` heading, a pipe table (``tabulate``'s ``pipe`` format, which GitHub renders with
  its column alignment) and its notes; one legend at the end.
- ``html``: one standalone HTML5 document (UTF-8, small inline CSS), an ``<h2>`` and a
  ``<table>`` per task, the legend as a ``<dl>``; every text is HTML-escaped. Written by hand:
  ``tabulate``'s HTML has no per-column classes for alignment and no escaping control.
- ``latex``: per task a ``table`` float (``\\label{tab:ntkbench-<task>}``) with a booktabs
  ``tabular`` at ``\\footnotesize``, shrunk to the line width when wider
  (``adjustbox``'s ``max width``; needs ``\\usepackage{booktabs, adjustbox}``), captioned with
  task and metric; every text is LaTeX-escaped and ``±`` becomes ``$\\pm$``; the legend and the
  provenance follow as a paragraph, the provenance also as a comment at the top.
- ``csv``: one flat table of all tasks with numbers at full precision
  (:data:`~ntkbench.report.leaderboard.NUMERIC_COLUMNS`, then :data:`PROVENANCE_COLUMNS`), no
  ``±`` strings.
- ``text``: ``tabulate``'s ``simple`` columns for a terminal, a heading per task, no ANSI codes,
  the provenance as the last line.

Numbers follow :mod:`ntkbench.report.numbers` (3 significant digits, scientific when extreme).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pandas as pd
from tabulate import DataRow, Line, TableFormat, tabulate

from ntkbench.report.leaderboard import (
    ALIGNMENT,
    DRIFT,
    NTK_LIMIT,
    NUMERIC_COLUMNS,
    REFERENCE,
    SEEDS,
    STEPS,
    STEPS_TARGET,
    TEXT_COLUMNS,
    WALL_TIME,
    TaskTable,
    leaderboard,
)
from ntkbench.report.provenance import provenance, provenance_line

FORMATS = ("md", "html", "latex", "csv", "text")
# CSV column → provenance field (the same value on every row).
PROVENANCE_COLUMNS = {"suite": "suite", "ntkbench_version": "ntkbench",
                      "ntkbench_commit": "commit", "device": "device", "libraries": "libraries"}

# (column, meaning); "metric" stands for the column named after each task's metric.
LEGEND = (
    ("rank", "position within the backend: groups with every seed ok first, by mean metric in "
             "the task's goal direction (equal means share a rank), then groups with a "
             "diverged or failed seed (fewer first), which a failure counts against as the "
             "worst outcome; =1 marks the top group: the best group and every group whose "
             "paired Wilcoxon signed-rank test against it (over shared seeds, Holm-corrected) "
             "is not significant at alpha 0.05; — marks a group with no ok seed, shown last "
             "with its status instead of the metric"),
    (SEEDS, "ok trials / all trials (one per seed) of the initializer"),
    (REFERENCE, "the row ref: the test metric of predicting the training targets' mean (the "
                "majority class for classification), one value per seed; no learning, not "
                "ranked"),
    ("metric", "the task's primary test metric at the end of training (the column is named "
               "after it): mean over the ok seeds and, from 3 ok seeds on, its 95% bootstrap "
               "confidence interval [low, high] (BCa from 8 seeds, percentile below; the CSV "
               "names the method and adds the standard deviation, median and interquartile "
               "mean); mean ± sample standard deviation with 2 ok seeds, too few for an "
               "interval; a single value when only one seed is ok"),
    (NTK_LIMIT, "the initializer's infinite-width limit: the test metric of kernel regression "
                "with the analytic NTK moment-matched to its initial weights (the network "
                "trained to convergence at infinite width), mean ± std over every seed that "
                "computed it; the CSV adds the NNGP's (the Bayesian posterior mean)"),
    (STEPS_TARGET, "median training step at which the train loss first fell to 10% of the "
                   "task's predict-the-mean train loss (the loss of predicting the training "
                   "targets' mean, or the class frequencies): one target for every initializer "
                   "of the task, unlike steps to 10% of each initializer's own initial loss, "
                   "which a high-loss start makes look fast; over the ok seeds that reached it; "
                   "(k/n) when only k of n ok seeds did; never when none did"),
    (STEPS, "median training step at which the train loss first fell to 10% of its initial "
            "value, over the ok seeds that reached it; (k/n) when only k of n ok seeds did; "
            "never when none did"),
    (ALIGNMENT, "centred kernel-target alignment ⟨HKH, HyyᵀH⟩ / (‖HKH‖ ‖HyyᵀH‖) of the "
                "empirical NTK at initialisation, in [-1, 1] (higher: the kernel already "
                "points at the targets); mean ± std over every seed that measured it"),
    (DRIFT, "relative change of the NTK during training, ‖K_T − K_0‖_F / ‖K_0‖_F (near 0: "
            "lazy, kernel regime; large: feature learning); mean ± std over the ok seeds"),
    (WALL_TIME, "mean wall-clock seconds per ok trial (training and NTK measurements), "
                "leaving out the first trial each worker process ran, which pays one-off "
                "warm-up (imports, thread pools, JIT compilation; about twice the next); "
                "included only when a group has no other trial"),
)
NUMBERS_NOTE = ("Numbers have 3 significant digits (standard deviations 2), in scientific "
                "notation below 1e-3 and from 1e5.")


def render(df: pd.DataFrame, fmt: str) -> str:
    """The leaderboard of the trials in ``df`` as a string in format ``fmt``.

    Args:
        df: results table, one row per trial (see :mod:`ntkbench.report.leaderboard`).
        fmt: one of :data:`FORMATS`: ``md``, ``html``, ``latex``, ``csv``, ``text``.

    Raises:
        ValueError: ``fmt`` is not a known format, or ``df`` has no trials.
    """
    renderers: dict[str, Callable[[list[TaskTable], pd.DataFrame], str]] = {
        "md": _markdown, "html": _html, "latex": _latex, "csv": _csv, "text": _text}
    if fmt not in renderers:
        raise ValueError(f"unknown leaderboard format {fmt!r}; valid formats: "
                         f"{', '.join(FORMATS)}")
    return renderers[fmt](leaderboard(df), df)


def _legend(tables: list[TaskTable]) -> list[tuple[str, str]]:
    """Legend entries for the columns that appear in at least one table."""
    shown = {c for t in tables for c in t.columns} | {"metric"}
    if any(r[0] == "ref" for t in tables for r in t.rows):
        shown.add(REFERENCE)
    return [(term, text) for term, text in LEGEND if term in shown]


def _heading(table: TaskTable) -> str:
    return f"{table.task} — {table.metric} ({table.goal_text})"


def _align(columns: list[str]) -> list[str]:
    return ["left" if c in TEXT_COLUMNS else "right" for c in columns]


def _tabulate(columns: list[str], rows: list[list[str]], fmt) -> str:
    """``tabulate`` with our strings as they are (no number parsing, no re-rounding)."""
    return tabulate(rows, headers=columns, tablefmt=fmt, colalign=_align(columns),
                    disable_numparse=True)


def _markdown(tables: list[TaskTable], df: pd.DataFrame) -> str:
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")

    out: list[str] = [f"*{cell(provenance_line(df))}*", ""]
    for t in tables:
        out += [f"### {cell(_heading(t))}", "",
                _tabulate([cell(c) for c in t.columns],
                          [[cell(v) for v in row] for row in t.rows], "pipe")]
        out += [""] + [f"- {cell(n)}" for n in t.notes] + ([""] if t.notes else [])
    out += ["**Legend**", ""]
    out += [f"- **{cell(term)}**: {cell(text)}" for term, text in _legend(tables)]
    out += [f"- {NUMBERS_NOTE}"]
    return "\n".join(out) + "\n"


_CSS = """\
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 0.5em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
th { border-bottom: 2px solid #444; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.notes, p.numbers { color: #555; font-size: 0.9em; }
dt { font-weight: bold; margin-top: 0.4em; }"""


def html_table(columns: list[str], rows: list[list[str]], *, text_columns=TEXT_COLUMNS,
               links: list[str | None] | None = None) -> list[str]:
    """The lines of an HTML ``<table>`` (escaped; numbers right-aligned, text columns left);
    ``links``, one per row, makes the row's first cell a link."""
    esc = html.escape

    def attr(column: str) -> str:
        return "" if column in text_columns else ' class="num"'

    def first(value: str, href: str | None) -> str:
        return f'<a href="{esc(href)}">{esc(value)}</a>' if href else esc(value)

    out = ["<table>", "<thead>",
           "<tr>" + "".join(f"<th{attr(c)}>{esc(c)}</th>" for c in columns) + "</tr>",
           "</thead>", "<tbody>"]
    for i, row in enumerate(rows):
        cells = [first(row[0], links[i] if links else None), *map(esc, row[1:])]
        out.append("<tr>" + "".join(f"<td{attr(c)}>{v}</td>" for c, v in
                                    zip(columns, cells, strict=True)) + "</tr>")
    return out + ["</tbody>", "</table>"]


def _html(tables: list[TaskTable], df: pd.DataFrame) -> str:
    esc = html.escape

    suites = (list(pd.unique(df["suite"].dropna().astype(str)))
              if "suite" in df.columns else [])
    title = "ntkbench leaderboard" + (f": {', '.join(suites)}" if suites else "")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{esc(title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
           f"<h1>{esc(title)}</h1>", f'<p class="numbers">{esc(provenance_line(df))}</p>']
    for t in tables:
        out += [f"<h2>{esc(_heading(t))}</h2>", *html_table(t.columns, t.rows)]
        if t.notes:
            out += ['<ul class="notes">', *(f"<li>{esc(n)}</li>" for n in t.notes), "</ul>"]
    out += ["<h2>Legend</h2>", "<dl>"]
    out += [f"<dt>{esc(term)}</dt><dd>{esc(text)}</dd>" for term, text in _legend(tables)]
    out += ["</dl>", f'<p class="numbers">{esc(NUMBERS_NOTE)}</p>', "</body>", "</html>"]
    return "\n".join(out) + "\n"


_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    # Unicode the legend and tables use, so plain pdflatex compiles them.
    "±": r"$\pm$", "—": "---", "–": "--", "−": "$-$", "‖": r"$\|$", "⟨": r"$\langle$",
    "⟩": r"$\rangle$", "ᵀ": r"$^\top$", "…": r"\ldots{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(k) for k in _LATEX))


def latex_escape(text: str) -> str:
    """``text`` safe for LaTeX text mode (specials escaped, a few Unicode symbols translated)."""
    return _LATEX_PATTERN.sub(lambda m: _LATEX[m.group()], text)


def _booktabs(spec: str) -> TableFormat:
    """A booktabs ``tabular`` whose cells are written as given (already LaTeX-escaped)."""
    row = DataRow("", "&", r"\\")
    return TableFormat(lineabove=Line(rf"\begin{{tabular}}{{{spec}}}" + "\n" + r"\toprule",
                                      "", "", ""),
                       linebelowheader=Line(r"\midrule", "", "", ""), linebetweenrows=None,
                       linebelow=Line(r"\bottomrule" + "\n" + r"\end{tabular}", "", "", ""),
                       headerrow=row, datarow=row, padding=1, with_header_hide=None)


def _label(task: str) -> str:
    return "tab:ntkbench-" + (re.sub(r"[^A-Za-z0-9]+", "-", task).strip("-") or "task")


def _latex(tables: list[TaskTable], df: pd.DataFrame) -> str:
    out = ["% ntkbench leaderboard; needs \\usepackage{booktabs} and \\usepackage{adjustbox}",
           f"% {provenance_line(df)}"]
    for t in tables:
        spec = "".join("l" if c in TEXT_COLUMNS else "r" for c in t.columns)
        # Shrunk to the text width only when wider (adjustbox's max width), at \footnotesize.
        out += [r"\begin{table}[htbp]", r"\centering", r"\footnotesize",
                rf"\caption{{{latex_escape(_heading(t))}}}", rf"\label{{{_label(t.task)}}}",
                r"\begin{adjustbox}{max width=\linewidth}",
                tabulate([[latex_escape(v) for v in row] for row in t.rows],
                         headers=[latex_escape(c) for c in t.columns], tablefmt=_booktabs(spec),
                         disable_numparse=True),
                r"\end{adjustbox}"]
        if t.notes:
            out += [r"\par\smallskip{\scriptsize "
                    + r"\par ".join(latex_escape(n) for n in t.notes) + r"\par}"]
        out += [r"\end{table}", ""]
    legend = "; ".join(rf"\textbf{{{latex_escape(term)}}}: {latex_escape(text)}"
                       for term, text in _legend(tables))
    out += [rf"\noindent\textbf{{Legend.}} {legend}. {latex_escape(NUMBERS_NOTE)} "
            rf"{latex_escape('Provenance: ' + provenance_line(df))}."]
    return "\n".join(out) + "\n"


def _csv(tables: list[TaskTable], df: pd.DataFrame) -> str:
    frame = pd.concat([t.numeric for t in tables], ignore_index=True)
    fields = dict(provenance(df))
    for column, field in PROVENANCE_COLUMNS.items():
        frame[column] = fields[field]
    return frame.to_csv(index=False, columns=[*NUMERIC_COLUMNS, *PROVENANCE_COLUMNS],
                        lineterminator="\n")


def _text(tables: list[TaskTable], df: pd.DataFrame) -> str:
    out: list[str] = []
    for t in tables:
        out += [_heading(t), *(line.rstrip() for line in
                               _tabulate(t.columns, t.rows, "simple").splitlines())]
        out += [f"  note: {n}" for n in t.notes] + [""]
    out.append("=1: top group (not significantly worse than the best, paired Wilcoxon, Holm); "
               "metric: mean [95% bootstrap CI] over ok seeds (mean ± std under 3); "
               "ref: predict the mean; steps to target: median to 10% of the predict-the-mean "
               "train loss (steps to 10%: of the initial loss; k/n: seeds that reached it); "
               "align.: centred NTK-target alignment at init; drift: ‖K_T − K_0‖_F / ‖K_0‖_F")
    out.append(provenance_line(df))
    return "\n".join(out) + "\n"
