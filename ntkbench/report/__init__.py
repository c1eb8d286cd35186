"""Reports: leaderboard tables, their statistics, figures and a static results site.

>>> import ntkbench as nb
>>> df = nb.load_results("results/default")
>>> tables = nb.report.tables(df)              # task → DataFrame (CIs, top group, p vs best)
>>> print(nb.report.render(df, "md"))          # or "html", "latex", "csv", "text"
>>> summary = nb.report.across_tasks(nb.report.leaderboard(df))   # per backend
>>> nb.report.ntk_predictors(df)               # Spearman ρ: NTK at init vs outcome
>>> nb.report.discrimination(nb.report.leaderboard(df))  # does each task separate them?
>>> fig = nb.report.figures.learning_curves(df, "oscillatory_1d")  # a matplotlib Figure
>>> nb.report.build_site(["results/default"], "site")              # the static site

``figures`` and ``build_site`` load matplotlib on first use.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ntkbench.report import stats
from ntkbench.report.across import AcrossTasks, across_tasks
from ntkbench.report.discrimination import discrimination
from ntkbench.report.leaderboard import NUMERIC_COLUMNS, TaskTable, leaderboard
from ntkbench.report.numbers import format_mean_ci, format_mean_std, format_number
from ntkbench.report.predictors import ntk_predictors
from ntkbench.report.render import FORMATS, latex_escape, render

__all__ = [
    "FORMATS",
    "NUMERIC_COLUMNS",
    "AcrossTasks",
    "TaskTable",
    "across_tasks",
    "build_site",
    "discrimination",
    "figures",
    "format_mean_ci",
    "format_mean_std",
    "format_number",
    "latex_escape",
    "leaderboard",
    "ntk_predictors",
    "render",
    "stats",
    "tables",
]


def tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Task → its leaderboard as numbers (columns :data:`NUMERIC_COLUMNS`, rank order)."""
    return {t.task: t.numeric for t in leaderboard(df)}


def __getattr__(name: str) -> Any:
    # Lazy: matplotlib loads only when a figure or the site is asked for.
    import importlib

    if name == "figures":
        return importlib.import_module("ntkbench.report.figures")
    if name == "build_site":
        return importlib.import_module("ntkbench.report.site").build_site
    raise AttributeError(f"module 'ntkbench.report' has no attribute {name!r}")
