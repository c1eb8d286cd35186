"""Where results come from, for every report format: suite, ntkbench version and commit,
libraries, device, host, dates and trial counts, read from the trial records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ntkbench.report.numbers import MISSING


def _values(df: pd.DataFrame, *columns: str) -> str:
    """The distinct non-empty values of the first of ``columns`` that has any, sorted and
    comma-separated; ``—`` when none has."""
    for column in columns:
        if column in df.columns:
            found = sorted({str(v) for v in df[column].dropna() if str(v)})
            if found:
                return ", ".join(found)
    return MISSING


def provenance(df: pd.DataFrame, run_dirs: Sequence[str | Path] = ()) -> list[tuple[str, str]]:
    """(field, value) pairs: ``suite``, ``ntkbench``, ``commit``, ``libraries``, ``device``,
    ``host``, ``trials run`` (first start – last finish), ``trials`` (counts by status),
    ``run directories`` and ``report built`` (now, UTC)."""
    libraries = ", ".join(
        f"{c.split('.', 1)[1]} {_values(df, c)}" for c in sorted(df.columns)
        if c.startswith("versions.") and _values(df, c) != MISSING)
    started = _values(df, "started_at").split(", ")[0]
    finished = _values(df, "finished_at").split(", ")[-1]
    device = _values(df, "device_resolved", "device")
    if _values(df, "device_name") != MISSING:
        device += f" ({_values(df, 'device_name')})"
    counts = df["status"].value_counts().to_dict() if "status" in df.columns else {}
    return [
        ("suite", _values(df, "suite")),
        ("ntkbench", _values(df, "ntkbench_version")),
        ("commit", _values(df, "ntkbench_commit")),
        ("libraries", libraries or MISSING),
        ("device", device),
        ("host", _values(df, "host")),
        ("trials run", f"{started} – {finished}"),
        ("trials", f"{len(df)}" + (" (" + ", ".join(f"{n} {s}" for s, n in
                                                     sorted(counts.items())) + ")"
                                   if counts else "")),
        ("run directories", ", ".join(map(str, run_dirs)) or MISSING),
        ("report built", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]


def provenance_line(df: pd.DataFrame) -> str:
    """One line for a table footer: suite, version and commit, device, libraries, dates."""
    fields = dict(provenance(df))
    return (f"suite {fields['suite']}; ntkbench {fields['ntkbench']} (commit "
            f"{fields['commit']}); {fields['libraries']}; device {fields['device']}; "
            f"trials {fields['trials run']}; table built {fields['report built']}")
