"""What makes two trials the same trial: the trial hash and the rule that keeps it stable.

A trial's hash names its numbers. Records are reused by hash (a re-run skips recorded
trials; ``--reuse`` takes cells from a baseline; ``merge`` and ``compare`` pair cells by
hash), so the hash must change exactly when what the trial computes changes:

- **Covered**: the semantic configuration (task name, data generator and parameters, model,
  training, measurement settings, metric), the initializer (name, parameters, a digest of a
  plugin's code, see :func:`plugin_digest`, and its ``source`` — for a file only the function
  name, since the path differs between machines), backend, declared device, seed, and
  :data:`MEASUREMENT_VERSION`.
- **Not covered**: labels (the suite's name, the sweep's label, the directory a plugin file was
  found from) and the package version. A release that leaves every computation alone keeps
  every hash, so published baselines stay valid across releases.

The rule for developers — bump :data:`MEASUREMENT_VERSION` when a change alters what an
existing configuration computes or records: the data a task generates, the network or its
training loop, a built-in initializer's weights, a metric's definition, or the fields a record
carries. Refactors, faster code with the same numbers, reports, figures and the command line
do not bump it. A new configuration field changes every hash (the dump grows) unless it is
listed in :data:`NEUTRAL_DEFAULTS` with the value that reproduces the computation from before
the field existed; ``tests/test_identity.py`` pins the hash of a fixed trial so that neither
can happen by accident.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ntkbench.config import InitializerConfig, Trial

#: Changes only when ntkbench changes what a trial computes (see the module docstring).
MEASUREMENT_VERSION = 1

#: Configuration fields added after :data:`MEASUREMENT_VERSION` 1, as dotted paths of the
#: hashed dump, with the value at which they reproduce the older computation. At that value the
#: field is left out of the hash, so adding it keeps every existing hash.
NEUTRAL_DEFAULTS: dict[str, Any] = {}

_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes, cached by path, size and mtime."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return _digests[key]


def plugin_file(init: InitializerConfig, base_dir: Path | None) -> Path | None:
    """The source file of a plugin initializer, without running its code; ``None`` for a
    built-in initializer (covered by :data:`MEASUREMENT_VERSION`) or one that cannot be found.

    ``source: path/file.py:fn`` → that file; ``source: module:fn`` → the module's file as the
    import system finds it; a name registered by an installed package (entry point) or in code
    → the file defining the function.
    """
    if init.source is not None:
        target = init.source.rpartition(":")[0]
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            return path if path.is_file() else None
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None)
        return Path(origin) if origin and os.path.isfile(origin) else None
    from ntkbench import registry

    try:
        entry = registry.initializers.get(init.name)
    except registry.RegistryError:
        return None
    if entry.origin == "builtin":
        return None
    try:
        source = inspect.getsourcefile(entry.obj)
    except TypeError:
        return None
    return Path(source) if source and os.path.isfile(source) else None


def plugin_digest(init: InitializerConfig, base_dir: Path | None) -> str | None:
    """Digest of a plugin initializer's source file (``None`` for built-ins): editing the
    plugin changes the hash of its trials, so a re-run trains them again. Only the file that
    defines the function is read; helpers it imports from other files are not covered."""
    path = plugin_file(init, base_dir)
    return file_digest(path) if path is not None else None


def _drop_neutral(ident: dict[str, Any]) -> None:
    for dotted, neutral in NEUTRAL_DEFAULTS.items():
        *parents, leaf = dotted.split(".")
        node: Any = ident
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and node[leaf] == neutral:
            del node[leaf]


def identity(trial: Trial) -> dict[str, Any]:
    """The JSON value the trial hash is computed from."""
    from ntkbench.config import LABEL_FIELDS

    ident = trial.model_dump(mode="json", exclude=LABEL_FIELDS)
    ident["model"] = trial.model.dump()
    _drop_neutral(ident)
    ident["measurement_version"] = MEASUREMENT_VERSION
    digest = plugin_digest(trial.initializer, trial.source_dir)
    if digest is not None:
        ident["initializer"]["source_digest"] = digest
    source = trial.initializer.source
    if source is not None and source.rpartition(":")[0].endswith(".py"):
        # A plugin file is identified by its bytes and the function, not by the path it was
        # found at (which differs between machines and checkouts).
        ident["initializer"]["source"] = "file:" + source.rpartition(":")[2]
    return ident


def trial_hash(trial: Trial) -> str:
    blob = json.dumps(identity(trial), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
