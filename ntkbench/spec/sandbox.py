"""Trying a plugin's code where a crash costs only the try.

A file or module plugin is third-party code: one that segfaults (a native extension, ctypes)
or calls ``os._exit`` would take ``ntkbench validate`` or ``ntkbench run`` down with it, with
no message. So before the suite check imports a plugin and calls it on a tiny layer in this
process, it does both in a child process, and reports a child that died as the plugin's
problem. Python exceptions are not looked at here: the check in this process reports them with
their message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: A plugin that has not returned from the tiny layer by then is reported as hanging.
TIMEOUT_S = 120.0

_tried: dict[tuple, str | None] = {}  # (name, source, base_dir, params) → crash message


_CHILD = """
import sys, json
from pathlib import Path
name, source, base_dir, params = json.loads(sys.argv[1])
from ntkbench import registry
from ntkbench.initializers import initialize_with
from ntkbench.spec.suite import _PROBE
try:
    entry = registry.resolve_initializer(name, source, Path(base_dir) if base_dir else None)
    initialize_with(_PROBE, entry, 0, params, calibrate=False)
except Exception:  # reported by the check in the parent, with its message
    pass
sys.stdout.write("came back")  # a plugin that exits the process (os._exit(0)) never gets here
sys.stdout.flush()
"""


def crash_of(name: str, source: str, base_dir: Path | None,
             params: Mapping[str, Any]) -> str | None:
    """Import ``source`` and call its initializer on the suite check's tiny network in a child
    process; ``None`` when the call came back (with a result or an exception), else what
    happened to the child.

    The child is a fresh interpreter (``python -c``), not a multiprocessing child: those
    re-import the caller's ``__main__``, so a user's script that loads a suite without an
    ``if __name__ == "__main__"`` guard would start the check again inside the check.
    """
    from ntkbench.executors import describe_exit

    key = (name, source, str(base_dir), repr(sorted(params.items())))
    if key in _tried:
        return _tried[key]
    try:
        args = json.dumps([name, source, str(base_dir) if base_dir else None, dict(params)])
    except (TypeError, ValueError):  # parameters YAML cannot give; the check here still runs
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    what = f"initializer {name!r} from {source!r}"
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, args], env=env, timeout=TIMEOUT_S,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        crash: str | None = (f"{what} did not return within {TIMEOUT_S:g} s on a tiny test "
                             "network (3→4→1)")
    else:
        if done.stdout.endswith(b"came back") and done.returncode == 0:
            crash = None
        else:
            crash = (f"{what} ended the process that imported it and called it on a tiny test "
                     f"network (3→4→1): {describe_exit(done.returncode)}; "
                     "ntkbench does not run it")
    _tried[key] = crash
    return crash
