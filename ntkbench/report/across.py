"""Across tasks: mean rank per initializer, Friedman test, Nemenyi critical difference and
performance profiles (Demšar 2006; Dolan & Moré 2002).

Each task is one block, each initializer one treatment. The per-task ranks are the
leaderboard's (:mod:`ntkbench.report.leaderboard`), so a failed or diverged seed counts against a
group there, and a group with no ok seed takes the last place; ties get the average rank, as the
Friedman test expects. Backends are kept apart: one summary per backend, never torch against JAX.
Only initializers present in every task of a backend enter its summary (a block design needs
complete blocks); the others are named in a note.

- Mean rank R_j over the N tasks (1 = best).
- Friedman's χ² over k initializers (``scipy.stats.friedmanchisquare``, tie-corrected); it
  needs k >= 3 and N >= 2.
- Nemenyi post-hoc p-values (``scikit_posthocs.posthoc_nemenyi_friedman``) and the critical
  difference CD = q_α √(k(k+1) / (6N)), q_α the upper α quantile of the studentized range of k
  means with infinite degrees of freedom divided by √2 (``scipy.stats.studentized_range``):
  two initializers whose mean ranks differ by less than CD are not significantly different.
- Performance profile ρ_j(τ): the fraction of tasks on which initializer j's cost is within a
  factor τ of the best cost on that task. The cost must be positive and lower-is-better, so each
  metric is mapped to one (:data:`COSTS`): the MSE itself, the error rate ``1 - accuracy``, and
  for decibel metrics the relative squared error ``10^(-dB/10)``. A task whose metric has no
  known cost is left out of the profile with a note.

References:
    Demšar (2006), *Statistical comparisons of classifiers over multiple data sets*, JMLR 7.
    Dolan & Moré (2002), *Benchmarking optimization software with performance profiles*.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from ntkbench.report.leaderboard import TaskTable
from ntkbench.report.stats import ALPHA

# metric → its values as a positive cost, lower is better (for performance profiles).
COSTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "test_mse": lambda x: x,
    "test_accuracy": lambda x: 1.0 - x,
    "test_snr_db": lambda x: 10.0 ** (-x / 10.0),
    "test_psnr_db": lambda x: 10.0 ** (-x / 10.0),
}
TAUS = np.concatenate([np.linspace(1.0, 2.0, 41), np.linspace(2.05, 10.0, 160)])


@dataclass
class AcrossTasks:
    """The cross-task comparison of one backend.

    Attributes:
        backend: the backend ("" when the run has a single unnamed one).
        ranks: tasks × initializers, average ranks per task (1 = best).
        mean_rank: initializer → mean rank, best first.
        friedman_statistic, friedman_p: Friedman's χ² and its p-value (``nan`` when k < 3 or
            N < 2).
        nemenyi_p: initializers × initializers Nemenyi p-values (empty when not computed).
        critical_difference: Nemenyi CD at α = 0.05 (``nan`` when not computed).
        cost: tasks × initializers cost (positive, lower better; ``inf`` for a failed cell).
        profile: τ (index) × initializers, the performance profile ρ(τ).
        notes: sentences about what was left out and why.
    """

    backend: str
    ranks: pd.DataFrame
    mean_rank: pd.Series
    friedman_statistic: float = math.nan
    friedman_p: float = math.nan
    nemenyi_p: pd.DataFrame = field(default_factory=pd.DataFrame)
    critical_difference: float = math.nan
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    profile: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.ranks)

    def significant(self, a: str, b: str) -> bool:
        """Whether the mean ranks of ``a`` and ``b`` differ by at least the CD."""
        return bool(abs(self.mean_rank[a] - self.mean_rank[b]) >= self.critical_difference)


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's CD = q_α √(k(k+1) / (6N)) for k treatments over N blocks."""
    q = sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def _cell_name(row: pd.Series) -> str:
    return f"{row['initializer']} [{row['sweep']}]" if row["sweep"] else str(row["initializer"])


def across_tasks(tables: list[TaskTable]) -> list[AcrossTasks]:
    """One :class:`AcrossTasks` per backend over the tasks that backend ran (at least two)."""
    frame = pd.concat([t.numeric for t in tables], ignore_index=True)
    if frame.empty:
        return []
    frame = frame[frame["status"] != "reference"].copy()  # predict-the-mean is not a contender
    frame["name"] = frame.apply(_cell_name, axis=1)
    out = []
    for backend, facet in frame.groupby("backend", sort=False):
        summary = _one_backend(str(backend), facet)
        if summary is not None:
            out.append(summary)
    return out


def _one_backend(backend: str, facet: pd.DataFrame) -> AcrossTasks | None:
    tasks = list(pd.unique(facet["task"]))
    if len(tasks) < 2:
        return None
    notes: list[str] = []
    per_task = {t: set(facet.loc[facet["task"] == t, "name"]) for t in tasks}
    common = [n for n in pd.unique(facet["name"]) if all(n in s for s in per_task.values())]
    dropped = sorted(set(facet["name"]) - set(common))
    if dropped:
        notes.append(f"Left out (not run on every task): {', '.join(dropped)}.")
    if len(common) < 2:
        return None
    facet = facet[facet["name"].isin(common)]
    # The leaderboard's rank; a group with no ok seed (rank missing) takes the last place.
    position = facet.pivot(index="task", columns="name", values="rank").loc[tasks, common]
    position = position.astype("Float64").fillna(np.inf).astype(float)
    ranks = pd.DataFrame(sps.rankdata(position.to_numpy(), axis=1), index=tasks, columns=common)
    mean_rank = ranks.mean().sort_values(kind="stable")
    summary = AcrossTasks(backend=backend, ranks=ranks, mean_rank=mean_rank, notes=notes)
    k, n = len(common), len(tasks)
    if k >= 3:
        result = sps.friedmanchisquare(*(ranks[c].to_numpy() for c in common))
        summary.friedman_statistic = float(result.statistic)
        summary.friedman_p = float(result.pvalue)
        import scikit_posthocs

        summary.nemenyi_p = scikit_posthocs.posthoc_nemenyi_friedman(ranks.to_numpy())
        summary.nemenyi_p.index = summary.nemenyi_p.columns = common
        summary.critical_difference = critical_difference(k, n)
    else:
        notes.append("Friedman and Nemenyi need at least 3 initializers.")
    summary.cost, summary.profile = _profile(facet, tasks, common, notes)
    return summary


def _profile(facet: pd.DataFrame, tasks: list[str], names: list[str], notes: list[str]
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, skipped = {}, []
    for task in tasks:
        cells = facet[facet["task"] == task].set_index("name")
        metric = str(cells["metric"].iloc[0])
        if metric not in COSTS:
            skipped.append(f"{task} ({metric})")
            continue
        value = cells.loc[names, "metric_mean"].to_numpy(dtype=float)
        complete = (cells.loc[names, "n_ok"] == cells.loc[names, "n_total"]).to_numpy()
        cost = COSTS[metric](value)
        rows[task] = np.where(complete & np.isfinite(cost) & (cost > 0), cost, np.inf)
    if skipped:
        notes.append("Left out of the performance profile (no positive cost known for the "
                     f"metric): {', '.join(skipped)}.")
    cost = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    if cost.empty:
        return cost, pd.DataFrame(index=pd.Index(TAUS, name="tau"), columns=names, dtype=float)
    ratio = cost.to_numpy() / cost.min(axis=1).to_numpy()[:, None]
    profile = (ratio[None, :, :] <= TAUS[:, None, None]).mean(axis=1)
    return cost, pd.DataFrame(profile, index=pd.Index(TAUS, name="tau"), columns=names)
