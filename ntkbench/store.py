"""The result store: one JSON record per trial, written atomically, plus a parquet table.

Layout of a run directory::

    RUN_DIR/
      run.json              manifest: suite, command, environment, grid size
      suite.yaml            the suite file as it was when the run started
      trials/<hash>.json    one record per finished trial (the source of truth)
      trials/<hash>.npz     arrays of a trial too big for its record (an image task's
                            predicted image), when it has any
      results.parquet       all records as one table (rewritten after each run)

A record file appears only once it is complete (written to a temporary file, flushed, then
renamed), so a run killed at any moment leaves every finished trial recorded exactly once and no
partial file behind; re-running skips the trials that have a record.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RECORDS = "trials"
TABLE = "results.parquet"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_safe(value: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python numbers, recursively (records are strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunStore:
    """Reads and writes the records of one run directory."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.records_dir = self.run_dir / RECORDS

    def record_path(self, trial_hash: str) -> Path:
        return self.records_dir / f"{trial_hash}.json"

    def arrays_path(self, trial_hash: str) -> Path:
        return self.records_dir / f"{trial_hash}.npz"

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` as ``trials/<hash>.json``. Its ``arrays`` entry (name → numpy
        array, e.g. a predicted image) goes to the side file ``trials/<hash>.npz`` instead, and
        the record names it in ``arrays_file``."""
        record = dict(record)
        arrays = record.pop("arrays", None)
        if arrays:
            import numpy as np

            target = self.arrays_path(record["trial_hash"])
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.tmp.npz")
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, target)
            record["arrays_file"] = target.name
        path = self.record_path(record["trial_hash"])
        atomic_write_text(path, json.dumps(_json_safe(record), indent=1, sort_keys=True))
        return path

    def arrays(self, trial_hash: str) -> dict[str, Any]:
        """The side arrays of a trial (``{}`` when it has none)."""
        import numpy as np

        path = self.arrays_path(trial_hash)
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {name: data[name] for name in data.files}

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.records_dir.is_dir():
            return
        for path in sorted(self.records_dir.glob("*.json")):
            with open(path, encoding="utf-8") as fh:
                yield json.load(fh)

    def statuses(self) -> dict[str, str]:
        """``trial_hash → status`` of every recorded trial."""
        return {r["trial_hash"]: r.get("status", "failed") for r in self.records()}

    def write_table(self) -> Path | None:
        """Rewrite ``results.parquet`` from the records; ``None`` when there are none."""
        df = records_to_frame(self.records())
        if df.empty:
            return None
        path = self.run_dir / TABLE
        tmp = path.with_name(f".{TABLE}.tmp")
        _to_parquet(df, tmp)
        os.replace(tmp, path)
        return path


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → dotted keys (``{"model": {"width": 8}}`` → ``{"model.width": 8}``);
    lists are kept as values; empty dicts vanish."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def records_to_frame(records: Iterable[dict[str, Any]]):  # -> pandas.DataFrame
    import pandas as pd

    rows = [flatten(r) for r in records]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    first = ["trial_hash", "status", "task", "initializer", "init_label", "backend", "seed"]
    cols = [c for c in first if c in df.columns] + [c for c in df.columns if c not in first]
    order = [c for c in ("task", "init_label", "sweep_label", "backend", "seed") if c in df]
    return df[cols].sort_values(order, kind="stable").reset_index(drop=True)


def _to_parquet(df, path: Path) -> None:
    import pyarrow as pa

    try:
        df.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # A column that mixes types (an initializer parameter that is a number in one trial and
        # a string in another) is stored as text rather than failing the whole table.
        df = df.copy()
        for col in df.columns[df.dtypes.map(lambda t: t.kind == "O")]:
            try:
                pa.array(df[col])
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                df[col] = df[col].map(lambda v: None if v is None else json.dumps(v))
        df.to_parquet(path, index=False)


def load_results(run_dir: str | os.PathLike):  # -> pandas.DataFrame
    """All trial records of ``run_dir`` as a DataFrame, one row per trial.

    Nested fields are flattened to dotted columns (``model.width``, ``ntk_init.lambda_max``,
    ``initializer_params.std``); curves are list-valued columns. Columns include
    ``trial_hash``, ``status`` (``ok`` / ``diverged`` / ``failed``), ``task``,
    ``initializer``, ``backend``, ``seed`` and ``final_test_metric``. Reads the per-trial
    records when present, else the consolidated ``results.parquet``.
    """
    import pandas as pd

    store = RunStore(run_dir)
    if not store.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {str(store.run_dir)!r} does not exist")
    if store.records_dir.is_dir():
        return records_to_frame(store.records())
    table = store.run_dir / TABLE
    if table.is_file():
        return pd.read_parquet(table)
    raise FileNotFoundError(f"{str(store.run_dir)!r} holds no trial records ({RECORDS}/) "
                            f"and no {TABLE}")
