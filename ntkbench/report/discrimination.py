"""Does a leaderboard tell its initializers apart? A per-task check of a suite's design.

A benchmark task discriminates when the spread of its initializers' outcomes is larger than
the seed noise and training gets somewhere within the budget. Per task (and backend and sweep
label), over the groups whose every seed is ok:

- ``gap`` = |mean of the best group − mean of the worst group| in the primary metric;
- ``max_std`` = the largest seed standard deviation (``ddof = 1``) among those groups;
- ``ratio`` = gap / (2 · max_std): above 1 the best and the worst initializer differ by more
  than twice the largest seed standard deviation;
- ``reached_10pct``: some group has a seed whose train loss fell to 10% of its initial loss;
  ``reached_target``: some seed reached the task-level target of the leaderboard's
  *steps to target* column (10% of the predict-the-mean train loss), the stricter test;
- ``n_incomplete``: groups with a failed or diverged seed, including groups with no ok seed at
  all (left out of the above);
- with one seed per group there is no standard deviation, and ``ratio`` is NaN.

``discriminates`` = ratio > 1, reached_10pct and no incomplete group. This is a property of the
suite's settings (budget, learning rate, width, seeds), not a significance test: the
leaderboard's top group (paired Wilcoxon, Holm) answers whether two initializers differ.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ntkbench.report.leaderboard import TaskTable

COLUMNS = ("task", "backend", "sweep", "metric", "best", "best_mean", "worst", "worst_mean",
           "gap", "max_std", "ratio", "reached_10pct", "reached_target", "n_incomplete",
           "discriminates")


def discrimination(tables: list[TaskTable]) -> pd.DataFrame:
    """One row per (task, backend, sweep) of the leaderboard ``tables``: columns
    :data:`COLUMNS`, as defined in the module docstring."""
    rows = []
    for table in tables:
        # Every initializer group, ranked or not (a group whose seeds all failed is unranked
        # and counts as incomplete); only the predict-the-mean reference rows are left out.
        groups = table.numeric[table.numeric["status"] != "reference"]
        for (backend, sweep), cells in groups.groupby(["backend", "sweep"], sort=False,
                                                      dropna=False):
            complete = cells[(cells["n_ok"] == cells["n_total"]) & cells["metric_mean"].notna()]
            row = {"task": table.task, "backend": backend, "sweep": sweep,
                   "metric": table.metric, "n_incomplete": len(cells) - len(complete),
                   "reached_10pct": bool((cells["n_reached_10pct"] > 0).any()),
                   "reached_target": bool((cells["n_reached_target"] > 0).any())}
            if len(complete) >= 2:
                order = complete.sort_values("metric_mean", ascending=table.goal == "min")
                best, worst = order.iloc[0], order.iloc[-1]
                gap = abs(float(best["metric_mean"]) - float(worst["metric_mean"]))
                max_std = float(np.nanmax(complete["metric_std"].to_numpy(dtype=float))
                                if complete["metric_std"].notna().any() else math.nan)
                # One seed per group has no spread to compare with: no ratio, not an infinite one.
                ratio = (gap / (2 * max_std) if max_std > 0 else
                         math.inf if max_std == 0 and gap > 0 else math.nan)
                row.update(best=best["initializer"], best_mean=float(best["metric_mean"]),
                           worst=worst["initializer"], worst_mean=float(worst["metric_mean"]),
                           gap=gap, max_std=max_std, ratio=ratio)
            else:
                row.update(best="", best_mean=math.nan, worst="", worst_mean=math.nan,
                           gap=math.nan, max_std=math.nan, ratio=math.nan)
            row["discriminates"] = bool(row["ratio"] > 1 and row["reached_10pct"]
                                        and row["n_incomplete"] == 0)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def render_discrimination(check: pd.DataFrame, fmt: str = "text") -> str:
    """The :func:`discrimination` table as text: ``md`` (pipe table), ``csv`` (every column,
    full precision) or any other format name for a plain-text table."""
    if fmt == "csv":
        return check.to_csv(index=False)
    from tabulate import tabulate

    from ntkbench.report.numbers import format_number

    show = [c for c in ("backend", "sweep") if check[c].fillna("").astype(str).nunique() > 1]
    headers = ["task", *show, "best (mean)", "worst (mean)", "gap", "2·max std", "ratio",
               "10% of initial", "target", "incomplete", "discriminates"]
    rows = [[r.task, *(getattr(r, c) for c in show),
             f"{r.best} ({format_number(r.best_mean)})",
             f"{r.worst} ({format_number(r.worst_mean)})",
             format_number(r.gap), format_number(2 * r.max_std), format_number(r.ratio),
             "yes" if r.reached_10pct else "no", "yes" if r.reached_target else "no",
             r.n_incomplete, "yes" if r.discriminates else "NO"]
            for r in check.itertuples()]
    return tabulate(rows, headers, tablefmt="pipe" if fmt == "md" else "simple",
                    disable_numparse=True)
