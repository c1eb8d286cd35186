"""Executors run trials and hand back their records as they finish.

The contract a distributed engine (Dask, Ray, a batch scheduler) implements::

    class Executor:
        def imap_unordered(self, fn, items) -> Iterator[tuple[item, result | BaseException]]
        def shutdown(self, cancel: bool) -> None

``fn`` is a picklable top-level function (``ntkbench.execute.run_trial``); each item is a frozen,
picklable :class:`~ntkbench.config.Trial`. Results are yielded in completion order. An item
whose worker died (killed, out of memory, a segfault in native code) more often than the
executor retries it is yielded with a :class:`WorkerDied` in place of its result, so the
runner records it as failed and carries on. ``shutdown(cancel=True)`` must stop promptly:
pending items are dropped and running ones are abandoned (the runner re-runs them next time).

Why the local pool is written here rather than taken from ``concurrent.futures``: when one of
its workers dies, a ``ProcessPoolExecutor`` marks the whole pool broken, fails every pending
future with ``BrokenProcessPool`` and cannot say which item the dead worker held or how it
died. Here each worker holds one item at a time over its own pipe, so a death costs only that
item, whose exit status is known, and a fresh worker takes its place.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: How often a trial whose worker died is tried again on a fresh worker before it is recorded
#: as failed (a one-off kill is retried; a trial that kills its worker every time is not).
RETRIES = 1
_NOTHING = object()
#: The XLA flag that makes JAX's CPU computations single-threaded (one thread per worker).
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false"


class Executor(Protocol):
    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]: ...

    def shutdown(self, cancel: bool) -> None: ...


class WorkerDied(RuntimeError):
    """The worker process running an item died before returning its result."""


class RemoteError(RuntimeError):
    """An exception that escaped ``fn`` in a worker, carried back as its traceback text."""


def describe_exit(exitcode: int | None) -> str:
    """``-9`` → ``"killed by SIGKILL (signal 9; the out-of-memory killer sends this)"``."""
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = {"SIGKILL": "; the out-of-memory killer sends this",
               "SIGSEGV": ": a crash in native code",
               "SIGABRT": ": a native library aborted"}.get(name, "")
        return f"killed by {name} (signal {-exitcode}{why})"
    return f"exited with code {exitcode}"


class SerialExecutor:
    """Runs trials one after another in this process (``--jobs 1``)."""

    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        for item in items:
            yield item, fn(item)

    def shutdown(self, cancel: bool) -> None:
        pass


def _exit_with_parent(parent: int) -> None:
    """Make this worker die with the process that started it, even if that one is SIGKILLed
    (it has no chance to stop us then): the kernel's parent-death signal where there is one,
    and a watchdog thread everywhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="ntkbench-parent-watch", daemon=True).start()


def thread_env(threads: int) -> dict[str, str]:
    """The environment that gives a worker process ``threads`` compute threads.

    It must be in place when the process starts: numpy's OpenBLAS sizes its thread pool when
    numpy is imported, which the worker does before running any of its own code, and a pool
    of idle OpenBLAS threads spinning beside a one-thread torch trial halved the throughput of
    two workers on two cores (measured: ``scripts/bench_throughput.py executors``). With one
    thread, XLA (JAX) is made single-threaded too; with more, it keeps its own pool.
    """
    env = {var: str(threads) for var in
           ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            env["XLA_FLAGS"] = (f"{flags} {XLA_SINGLE_THREAD} "
                                "intra_op_parallelism_threads=1").strip()
    return env


@contextlib.contextmanager
def child_environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in ``os.environ`` while a child process is started (it copies the environment
    then), restored afterwards; this process's libraries are already initialised."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _worker_main(conn: Connection, threads: int, parent: int) -> None:
    # The parent handles Ctrl-C and stops the workers; a worker must not die mid-record on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(parent)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, item = task
        try:
            result = fn(item)
        except BaseException:  # noqa: BLE001 - carried back, the worker goes on
            result = RemoteError(traceback.format_exc(limit=20))
        try:
            conn.send(result)
        except Exception:  # an unpicklable result
            conn.send(RemoteError(traceback.format_exc(limit=5)))


class _Worker:
    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, threads, os.getpid()),
                                name="ntkbench-worker")
        with child_environment(thread_env(threads)):
            self.proc.start()
        child.close()
        self.item: Any = None
        self.busy = False

    def stop(self, kill: bool) -> None:
        if kill:
            if self.proc.is_alive():
                self.proc.terminate()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(timeout=5 if not kill else 2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=2)
        self.conn.close()


class ProcessExecutor:
    """Runs trials in ``jobs`` fresh worker processes on this machine.

    Workers are started with ``spawn`` (safe with threaded numerical libraries), each gets
    ``cpu_count // jobs`` threads, so the machine is used without oversubscription, and each
    exits by itself within a second when this process dies. A worker that dies mid-trial is
    replaced; its trial is tried again :data:`RETRIES` times, then yielded with a
    :class:`WorkerDied` saying how the worker died.
    """

    def __init__(self, jobs: int, retries: int = RETRIES) -> None:
        self.jobs, self.retries = jobs, retries
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self.deaths: list[str] = []  # how each worker that died went, in order

    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        queue: deque[tuple[T, int]] = deque((item, 0) for item in items)
        while queue or any(w.busy for w in self._workers):
            while queue and (len(self._workers) < self.jobs
                             or any(not w.busy for w in self._workers)):
                idle = next((w for w in self._workers if not w.busy), None)
                if idle is None:
                    idle = _Worker(self._ctx, self.threads)
                    self._workers.append(idle)
                item, tries = queue.popleft()
                try:
                    idle.conn.send((fn, item))
                except OSError:  # it died while idle (no trial of ours was lost): replace it
                    queue.appendleft((item, tries))
                    self._workers.remove(idle)
                    idle.stop(kill=True)
                    continue
                idle.item, idle.busy = (item, tries), True
            busy = [w for w in self._workers if w.busy]
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for w in busy:
                if w.conn in ready or w.proc.sentinel in ready:
                    item, tries = w.item
                    try:
                        result = w.conn.recv() if w.conn.poll() else _NOTHING
                    except (EOFError, OSError):
                        result = _NOTHING
                    if result is not _NOTHING:
                        w.busy, w.item = False, None
                        yield item, result
                        continue
                    # the worker died holding this item
                    w.proc.join(timeout=5)
                    how = describe_exit(w.proc.exitcode)
                    self.deaths.append(how)
                    w.conn.close()
                    self._workers.remove(w)
                    if tries < self.retries:
                        queue.appendleft((item, tries + 1))
                    else:
                        yield item, WorkerDied(
                            f"the worker process running this trial died: {how}"
                            + (f" (on each of {tries + 1} tries)" if tries else ""))

    def shutdown(self, cancel: bool) -> None:
        for w in self._workers:
            w.stop(kill=cancel or w.busy)
        self._workers.clear()


def make_executor(jobs: int) -> Executor:
    return SerialExecutor() if jobs <= 1 else ProcessExecutor(jobs)
