"""Leaderboards: trial results ranked per task and rendered as md, HTML, LaTeX, CSV or text.

>>> from ntkbench.report import leaderboard, render
>>> tables = leaderboard(df)        # one TaskTable per task, rows ranked by the primary metric
>>> print(render(df, "md"))         # or "html", "latex", "csv", "text"
"""

from ntkbench.report import stats
from ntkbench.report.leaderboard import NUMERIC_COLUMNS, TaskTable, leaderboard
from ntkbench.report.numbers import format_mean_ci, format_mean_std, format_number
from ntkbench.report.render import FORMATS, latex_escape, render

__all__ = [
    "FORMATS",
    "NUMERIC_COLUMNS",
    "TaskTable",
    "format_mean_ci",
    "format_mean_std",
    "format_number",
    "latex_escape",
    "leaderboard",
    "render",
    "stats",
]
