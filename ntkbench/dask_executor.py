"""Running trials on a Dask cluster (``ntkbench run --scheduler ADDRESS`` or ``--cluster local:N``).

Trials are Dask tasks: each worker process runs one trial at a time and sends its record back
to this process (the client), which writes it into the run directory atomically, as a local
run does, so workers need no shared file system. What they do need: ntkbench and the backend
installed, file plugins at the same path (or installed as a package), and downloaded data sets
in their own cache (``ntkbench data download`` on each machine, or a shared ``$NTKBENCH_DATA``).

Worker loss is Dask's to handle: the scheduler gives a trial whose worker died (killed, out of
memory, a segfault) to another worker, up to ``distributed.scheduler.allowed-failures`` times
(set here for a local cluster from ``retries``; a remote scheduler uses its own setting), then
the trial is yielded with a :class:`~ntkbench.executors.WorkerDied` and recorded ``failed``.

GPU trials (device ``cuda`` or ``cuda:N``) ask for one unit of the worker resource ``GPU``, so
a cluster whose GPU workers were started with ``--resources GPU=1`` (one per GPU) runs one
trial per GPU at a time; with ``device: auto`` the trial runs wherever it lands and records
the device it found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ntkbench.executors import RETRIES, RemoteError, WorkerDied, thread_env

T = TypeVar("T")

INSTALL_HINT = ('the Dask executor needs dask.distributed: pip install "ntkbench[dask]" '
                '(or pip install "dask[distributed]")')


def parse_cluster(spec: str) -> int:
    """``"local:4"`` → 4 (the number of worker processes of a local Dask cluster)."""
    kind, _, n = spec.partition(":")
    if kind != "local" or not n.isdigit() or int(n) < 1:
        raise ValueError(f"--cluster expects local:N with N >= 1 worker processes, got {spec!r}")
    return int(n)


def _resources(item: Any) -> dict[str, float] | None:
    device = str(getattr(item, "device", ""))
    return {"GPU": 1} if device.startswith("cuda") else None


class DaskExecutor:
    """Runs trials on a ``dask.distributed`` cluster: an existing one at ``address``
    (``tcp://host:8786``), or a :class:`~distributed.LocalCluster` of ``local_workers``
    processes on this machine (one thread each; ``cpu_count // local_workers`` compute
    threads per trial, as the local pool gives)."""

    def __init__(self, address: str | None = None, local_workers: int | None = None,
                 retries: int = RETRIES) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        if (address is None) == (local_workers is None):
            raise ValueError("give the address of a Dask scheduler or a number of local workers")
        for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                     "distributed.worker", "distributed.core"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.cluster = None
        if address is not None:
            # waits up to distributed.comm.timeouts.connect (Dask's default: 30 s)
            self.client = Client(address)
        else:
            threads = max(1, (os.cpu_count() or 1) // local_workers)
            env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}),
                   **thread_env(threads)}
            with dask.config.set({"distributed.scheduler.allowed-failures": retries,
                                  "distributed.worker.daemon": False,
                                  "distributed.nanny.pre-spawn-environ": env}):
                self.cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self._futures: dict[Any, Any] = {}

    @property
    def where(self) -> str:
        """The scheduler and its workers, for the run's log."""
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        return (f"Dask scheduler {info.get('address')}: {len(workers)} worker(s), "
                f"{threads} thread(s)")

    def imap_unordered(self, fn: Callable[[T], Any],
                       items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        for item in items:
            future = self.client.submit(fn, item, pure=False, resources=_resources(item),
                                        key=f"trial-{getattr(item, 'trial_hash', id(item))}")
            self._futures[future] = item
        for future in as_completed(list(self._futures)):
            item = self._futures.pop(future)
            try:
                result = future.result()
            except KilledWorker as exc:
                result = WorkerDied(f"the Dask workers running this trial died ({exc}); the "
                                    "scheduler stopped retrying it")
            except Exception as exc:  # noqa: BLE001 - an exception that escaped fn
                result = RemoteError(f"{type(exc).__name__}: {exc}")
            future.release()
            yield item, result

    def shutdown(self, cancel: bool) -> None:
        if self.client.status in ("closing", "closed"):
            return
        if cancel and self._futures:
            self.client.cancel(list(self._futures), force=True)
        self._futures.clear()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
