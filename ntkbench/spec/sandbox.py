"""Trying a plugin's code where a crash costs only the try.

A file or module plugin is third-party code: one that segfaults (a native extension, ctypes)
or calls ``os._exit`` would take ``ntkbench validate`` or ``ntkbench run`` down with it, with
no message. So before the suite check imports a plugin and calls it on a tiny layer in this
process, it does both in a child process, and reports a child that died as the plugin's
problem. Python exceptions are not looked at here: the check in this process reports them with
their message.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: A plugin that has not returned from the tiny layer by then is reported as hanging.
TIMEOUT_S = 120.0

_tried: dict[tuple, str | None] = {}  # (name, source, base_dir, params) → crash message


def _child(conn: Any, name: str, source: str, base_dir: str | None,
           params: dict[str, Any]) -> None:
    from ntkbench import registry
    from ntkbench.initializers import initialize_with
    from ntkbench.spec.suite import _PROBE

    try:
        entry = registry.resolve_initializer(name, source, Path(base_dir) if base_dir else None)
        initialize_with(_PROBE, entry, 0, params, calibrate=False)
    except Exception:  # reported by the check in the parent, with its message
        pass
    conn.send("came back")  # a plugin that exits the process (os._exit(0)) never gets here


def crash_of(name: str, source: str, base_dir: Path | None,
             params: Mapping[str, Any]) -> str | None:
    """Import ``source`` and call its initializer on the suite check's tiny network in a child
    process; ``None`` when the call came back (with a result or an exception), else what
    happened to the child."""
    from ntkbench.executors import describe_exit

    key = (name, source, str(base_dir), repr(sorted(params.items())))
    if key in _tried:
        return _tried[key]
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, name="ntkbench-plugin-check",
                       args=(theirs, name, source, str(base_dir) if base_dir else None,
                             dict(params)))
    proc.start()
    theirs.close()
    came_back = timed_out = False
    try:
        if ours.poll(TIMEOUT_S):  # a message, or the end of the pipe when the child died
            came_back = ours.recv() == "came back"
        else:
            timed_out = True
    except (EOFError, OSError):
        pass
    if not came_back and proc.is_alive():
        proc.kill()
    proc.join()
    ours.close()
    what = f"initializer {name!r} from {source!r}"
    if came_back:
        crash = None
    elif timed_out:
        crash = f"{what} did not return within {TIMEOUT_S:g} s on a tiny test network (3→4→1)"
    else:
        crash = (f"{what} ended the process that imported it and called it on a tiny test "
                 f"network (3→4→1): {describe_exit(proc.exitcode)}; ntkbench does not run it")
    _tried[key] = crash
    return crash
