"""Executors run trials and hand back their records as they finish.

The contract a distributed engine (Dask, Ray, a batch scheduler) implements::

    class Executor:
        def imap_unordered(self, fn, items) -> Iterator[tuple[item, result | BaseException]]
        def shutdown(self, cancel: bool) -> None

``fn`` is a picklable top-level function (``ntkbench.execute.run_trial``); each item is a frozen,
picklable :class:`~ntkbench.config.Trial`. Results are yielded in completion order. An
exception that escapes ``fn`` (a worker process that died) is yielded in place of the result,
so the runner can report it and carry on. ``shutdown(cancel=True)`` must stop promptly: pending
items are dropped and running ones are abandoned (the runner re-runs them next time).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Executor(Protocol):
    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]: ...

    def shutdown(self, cancel: bool) -> None: ...


class SerialExecutor:
    """Runs trials one after another in this process (``--jobs 1``)."""

    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        for item in items:
            yield item, fn(item)

    def shutdown(self, cancel: bool) -> None:
        pass


def _worker_init(threads: int) -> None:
    # The parent handles Ctrl-C and stops the workers; a worker must not die mid-record on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


class ProcessExecutor:
    """Runs trials in ``jobs`` fresh worker processes on this machine.

    Workers are started with ``spawn`` (safe with threaded numerical libraries) and each gets
    ``cpu_count // jobs`` threads, so the machine is used without oversubscription.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self._pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(threads,))
        self._pending: dict[Future, Any] = {}

    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        queue = list(items)
        queue.reverse()
        # Keep a bounded number in flight so that cancelling drops the rest at once.
        while queue or self._pending:
            while queue and len(self._pending) < 2 * self.jobs:
                item = queue.pop()
                self._pending[self._pool.submit(fn, item)] = item
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            for fut in done:
                item = self._pending.pop(fut)
                exc = fut.exception()
                yield item, (exc if exc is not None else fut.result())

    def shutdown(self, cancel: bool) -> None:
        if cancel:
            for fut in self._pending:
                fut.cancel()
            for proc in multiprocessing.active_children():
                proc.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pending.clear()


def make_executor(jobs: int) -> Executor:
    return SerialExecutor() if jobs <= 1 else ProcessExecutor(jobs)
