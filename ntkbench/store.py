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
partial record; the next run deletes a temporary file a SIGKILL left mid-write, and skips the
trials that have a record.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

RECORDS = "trials"
TABLE = "results.parquet"
CORRUPT = ".corrupt"  # under trials/: damaged record files, set aside

#: Version of the record layout. Records are migrated on read (:func:`migrate`); a record from
#: a newer ntkbench than this one is an error that says so, not a silent misreading.
#:
#: - 0: records before ``schema_version`` existed. The trial hash covered the package version;
#:   a missing backend or device was recorded as ``failed``.
#: - 1: ``schema_version``, ``measurement_version`` and ``initializer_source_digest``; a
#:   missing backend or device is status ``unavailable`` (re-run by the next run).
SCHEMA_VERSION = 1



def _unavailable_in_schema_0(error: str) -> bool:
    """How a schema-0 record said that the machine, not the trial, was the problem."""
    return (error.startswith(("ImportError: the torch backend needs PyTorch",
                              "ImportError: the jax backend needs JAX"))
            or (error.startswith("RuntimeError: device ") and " requested but " in error))


class RecordError(ValueError):
    """A record that cannot be read: damaged JSON, or a schema newer than this ntkbench."""


class DamagedRecord(RecordError):
    """A record file that is not a complete record (truncated JSON, not an object, a
    directory in its place): set aside by the next run, which re-runs its trial."""


class RunDirectoryError(ValueError):
    """A run directory that cannot be used: a file in its place, or another run holds it."""


class StoreWriteError(OSError):
    """Writing to the run directory failed (disk full, read-only, quota): what was kept."""


def migrate(record: dict[str, Any], where: str = "record") -> dict[str, Any]:
    """``record`` in the layout of :data:`SCHEMA_VERSION` (a new dict; the file is untouched).

    Raises :class:`RecordError` for a record written by a newer ntkbench."""
    version = record.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RecordError(f"{where} has schema_version {version!r}, newer than this ntkbench "
                          f"reads ({SCHEMA_VERSION}): upgrade ntkbench to read it")
    record = dict(record)
    if version < 1:
        record["measurement_version"] = None  # measured before measurements were versioned
        record.setdefault("initializer_source_digest", None)
        if (record.get("status") == "failed"
                and _unavailable_in_schema_0(str(record.get("error") or ""))):
            record["status"] = "unavailable"
    record["schema_version"] = SCHEMA_VERSION
    return record


@contextlib.contextmanager
def _replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends,
    deleted when it raises, so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    with _replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def json_safe(value: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python numbers, recursively (records are strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_record(path: Path) -> dict[str, Any]:
    """One record file, migrated to :data:`SCHEMA_VERSION`; errors name the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedRecord(f"damaged record {str(path)!r}: {exc}") from None
    except IsADirectoryError:
        raise DamagedRecord(f"damaged record {str(path)!r}: a directory, not a file") from None
    if not isinstance(record, dict) or not isinstance(record.get("trial_hash"), str):
        raise DamagedRecord(f"damaged record {str(path)!r}: not a trial record")
    return migrate(record, f"record {str(path)!r}")


class RunStore:
    """Reads and writes the records of one run directory.

    A damaged record file (:class:`DamagedRecord`) does not make the directory unreadable:
    reading skips it and lists it in :attr:`damaged`; :meth:`set_aside_damaged` (which
    ``ntkbench run`` calls) moves it to ``trials/.corrupt/``, so its trial runs again.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.records_dir = self.run_dir / RECORDS
        self.damaged: dict[Path, str] = {}  # record file → what is wrong with it

    def record_path(self, trial_hash: str) -> Path:
        return self.records_dir / f"{trial_hash}.json"

    def arrays_path(self, trial_hash: str) -> Path:
        return self.records_dir / f"{trial_hash}.npz"

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` as ``trials/<hash>.json``. Its ``arrays`` entry (name → numpy
        array, e.g. a predicted image) goes to the side file ``trials/<hash>.npz`` instead, and
        the record names it in ``arrays_file``. Raises :class:`StoreWriteError` (disk full,
        read-only) with no partial file left behind."""
        record = dict(record)
        arrays = record.pop("arrays", None)
        path = self.record_path(record["trial_hash"])
        try:
            if arrays:
                record["arrays_file"] = self._write_arrays(record["trial_hash"], arrays)
            atomic_write_text(path, json.dumps(json_safe(record), indent=1, sort_keys=True))
        except OSError as exc:
            raise StoreWriteError(
                exc.errno, f"cannot write {path}: {exc.strerror or exc}; every record written "
                "before it is kept, and running the same command again continues") from None
        return path

    def _write_arrays(self, trial_hash: str, arrays: dict[str, Any]) -> str:
        import numpy as np

        target = self.arrays_path(trial_hash)
        with _replacing(target, suffix=".tmp.npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return target.name

    def arrays(self, trial_hash: str) -> dict[str, Any]:
        """The side arrays of a trial (``{}`` when it has none)."""
        import numpy as np

        path = self.arrays_path(trial_hash)
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {name: data[name] for name in data.files}

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record; damaged ones are skipped and listed in :attr:`damaged`."""
        if not self.records_dir.is_dir():
            return
        for path in sorted(self.records_dir.glob("*.json")):
            try:
                yield read_record(path)
            except DamagedRecord as exc:
                self.damaged[path] = str(exc)

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temporary files a killed writer left (a SIGKILL between writing a
        record's temporary file and renaming it); call only while holding the run directory
        (:func:`locked`), when no other writer can be mid-write."""
        stale = [*self.records_dir.glob(".*.tmp"), *self.records_dir.glob(".*.tmp.npz"),
                 *self.run_dir.glob(f".{TABLE}.*.tmp")] if self.run_dir.is_dir() else []
        for path in stale:
            _remove(path)
        return stale

    def set_aside_damaged(self) -> list[tuple[Path, Path, str]]:
        """Move the damaged records found so far to ``trials/.corrupt/`` (never overwriting
        an earlier one there); return (from, to, why) for each."""
        moved = []
        for path, why in sorted(self.damaged.items()):
            if not os.path.lexists(path):
                continue
            target_dir = self.records_dir / CORRUPT
            target_dir.mkdir(exist_ok=True)
            target, n = target_dir / path.name, 1
            while os.path.lexists(target):
                target, n = target_dir / f"{path.name}.{n}", n + 1
            os.replace(path, target)
            moved.append((path, target, why))
        self.damaged.clear()
        return moved

    def statuses(self) -> dict[str, str]:
        """``trial_hash → status`` of every recorded trial."""
        return {r["trial_hash"]: r.get("status", "failed") for r in self.records()}

    def write_table(self) -> Path | None:
        """Rewrite ``results.parquet`` from the records; ``None`` when there are none."""
        df = records_to_frame(self.records())
        if df.empty:
            return None
        path = self.run_dir / TABLE
        try:
            with _replacing(path) as tmp:
                _to_parquet(df, tmp)
        except OSError as exc:
            raise StoreWriteError(
                exc.errno, f"cannot write {path}: {exc.strerror or exc}; the {len(df)} trial "
                f"record(s) in {self.records_dir} are kept, and the next ntkbench run (or "
                "leaderboard) reads them") from None
        return path


LOCK = ".lock"


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for one run: a second ``ntkbench run`` on the same directory stops
    with :class:`RunDirectoryError` naming the holder instead of training every trial twice.

    An advisory ``flock`` on ``RUN_DIR/.lock``: the kernel releases it when the holder dies, so
    a killed run never leaves the directory locked. (On network file systems whose ``flock``
    is local to one machine, runs on two machines are not kept apart; without ``fcntl``, e.g.
    on Windows, there is no lock.)
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = run_dir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 500).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirectoryError(
                f"run directory {str(run_dir)!r} is in use by another ntkbench run "
                f"({holder}): wait for it to finish, or give this run another --out") from None
        try:  # the holder before us may have removed the file between our open and lock
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        yield
    finally:
        _remove(path)
        os.close(fd)  # releases the lock


def _remove(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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


#: Record fields (flattened prefixes) that name a cell: a trial's configuration except how it
#: is measured (``measure.*``, the measurement version) and the plugin's source digest.
CELL_FIELDS = ("task", "data.", "model.", "training.", "metric", "initializer",
               "initializer_params.", "initializer_source", "backend", "device", "seed")


def cell_columns(df) -> list[str]:
    """The columns of a results table that name its cells (see :data:`CELL_FIELDS`)."""
    return [c for c in df.columns if any(
        c == f or (f.endswith(".") and c.startswith(f)) for f in CELL_FIELDS)]


def current_records(df, keys: Sequence[str] | None = None):
    """``(latest, dropped)``: the latest record (by ``finished_at``) of each cell, and per task
    how many older ones were dropped.

    A cell is what ``keys`` name (default: :func:`cell_columns`): a run directory keeps the
    records of a cell's earlier configurations, whose hash changed with the measurement version,
    the measure settings or a plugin's source; counting both would double the seeds.
    """
    if df is None or len(df) == 0 or "finished_at" not in df or "task" not in df:
        return df, {}
    keys = [c for c in (cell_columns(df) if keys is None else keys) if c in df]
    ident = df[keys].astype(str)  # lists and NaN compare as their text
    latest = df.loc[~ident.loc[df["finished_at"].sort_values(kind="stable").index]
                    .duplicated(keep="last").reindex(df.index)]
    dropped = df.loc[df.index.difference(latest.index), "task"].value_counts()
    return latest, {str(task): int(n) for task, n in dropped.items()}


def load_results(run_dir: str | os.PathLike, *, superseded: bool = False):
    """The trial records of ``run_dir`` as a DataFrame, one row per cell.

    A cell (task, initializer label, sweep, backend, seed) keeps only its current record, the
    latest one: records of a cell's earlier configurations (another measurement version,
    measure settings or plugin source) are dropped and counted per task in
    ``df.attrs["superseded"]``. ``superseded=True`` keeps every record.

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
        df = records_to_frame(store.records())
        df.attrs["damaged"] = {str(k): v for k, v in store.damaged.items()}
    elif (store.run_dir / TABLE).is_file():
        df = pd.read_parquet(store.run_dir / TABLE)
    else:
        raise FileNotFoundError(f"{str(store.run_dir)!r} holds no trial records ({RECORDS}/) "
                                f"and no {TABLE}")
    damaged = df.attrs.get("damaged", {})
    if superseded:
        return df
    current, dropped = current_records(df)
    current = current.reset_index(drop=True)
    current.attrs.update(superseded=dropped, damaged=damaged)
    return current


def damaged_note(damaged: dict) -> str | None:
    """A warning naming the damaged record files that reading skipped (``None``: none)."""
    if not damaged:
        return None
    files = "; ".join(f"{why}" for why in list(damaged.values())[:5])
    more = f" (and {len(damaged) - 5} more)" if len(damaged) > 5 else ""
    return (f"warning: skipped {len(damaged)} damaged record file(s): {files}{more}. The next "
            "ntkbench run on this directory sets them aside in trials/.corrupt/ and runs "
            "their trials again")
