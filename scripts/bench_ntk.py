#!/usr/bin/env python
"""Time ``ntkbench.empirical_ntk`` against the bare computation and two torch.func recipes.

For every (n, depth) cell of an MLP ``in_dim → width × depth → out_dim`` this runs

- ``ntkbench``: ``nb.empirical_ntk(model, weights, x, dtype=..., device=...)``, numpy in and
  numpy out, exactly what a user calls;
- ``ntkbench_jax`` (needs ``jax``; in the defaults when it is installed): the same call with
  ``backend="jax"``;
- ``floor``: the least work the layer-structured kernel needs, in plain torch on tensors
  already on the device (``benchmarks/ntk_methods.py: floor_ntk``);
- ``floor_jax`` (with ``jax``): the JAX engine's own compiled kernel on arrays already on the
  device, nothing copied in or out: ``ntkbench_jax / floor_jax`` is what the call around it
  costs, ``floor_jax / floor`` is XLA's arithmetic against torch's;
- ``jacobian``: torch.func per-example Jacobians ``vmap(jacrev(f))`` contracted over parameters;
- ``ntk_vp``: torch.func NTK-vector products, ``vmap`` over VJP∘JVP;
- ``ntk_vp_pairwise`` (only with ``--methods``): the tutorial's literal double ``vmap`` over
  example pairs, which expands weight tangents per pair.

Each method runs once as a warm-up and then ``--repeats`` times (ntkbench and the floor take
turns, so that both see the same load on a shared machine); the table shows the median and the
minimum, the ratio of medians to the floor, the largest relative deviation from a float64
reference (the floor in float64: max |K − K_ref| / max |K_ref|), and the peak memory that one
call (the warm-up) added.
Cells whose estimated memory or time exceed ``--max-memory-gb`` / ``--max-seconds`` are
skipped, and so are repeats that would overrun ``--max-seconds``.

On a small shared machine (2 CPUs, 2 torch threads) any other busy process makes OpenMP's
spinning threads wait for the scheduler, and small operations then take milliseconds: the
header prints the load average, and a cell whose floor is far off its neighbours was disturbed.
``OMP_WAIT_POLICY=PASSIVE`` in the environment avoids most of that.

Examples::

    python scripts/bench_ntk.py                       # CPU, float32, 2 threads, full grid
    python scripts/bench_ntk.py --n 256 --depth 3 --repeats 10
    python scripts/bench_ntk.py --device cuda --threads 16 --markdown
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Appended, not prepended: ``benchmarks`` comes from this checkout, while ``ntkbench`` is the
# importable one (the editable install, or an export of another commit put on PYTHONPATH).
sys.path.append(str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ntkbench as nb  # noqa: E402
from benchmarks import ntk_methods as nm  # noqa: E402

_JAX = importlib.util.find_spec("jax") is not None
DEFAULT_METHODS = ("ntkbench", *(("ntkbench_jax",) if _JAX else ()), "floor",
                   *(("floor_jax",) if _JAX else ()), "jacobian", "ntk_vp")
# torch.func recipes reach a fraction of the matrix-product rate (memory-bound Jacobian
# writes, vmap bookkeeping); used only to predict whether a cell fits its time budget.
EFFICIENCY = {"ntkbench": 0.5, "ntkbench_jax": 0.5, "floor": 0.5, "floor_jax": 0.5,
              "jacobian": 0.35, "ntk_vp": 0.35, "ntk_vp_pairwise": 0.2}
REFERENCE = {"n": 256, "depth": 3, "width": 512, "in_dim": 784, "out_dim": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[64, 256, 1024],
                   help="numbers of examples (x1 = x2, the Gram matrix); default 64 256 1024")
    p.add_argument("--depth", type=int, nargs="+", default=[1, 3, 6],
                   help="numbers of hidden layers; default 1 3 6")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--in-dim", type=int, default=784)
    p.add_argument("--out-dim", type=int, default=1)
    p.add_argument("--activation", default="relu", choices=sorted(nm.ACTIVATIONS))
    p.add_argument("--dtype", default="float32", choices=sorted(nm.DTYPES))
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="time budget of one method in one cell, warm-up included (default 30)")
    p.add_argument("--max-memory-gb", type=float, default=6.0,
                   help="skip a method whose estimated memory exceeds this (default 6)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   choices=list(nm.METHODS), help="default: " + " ".join(DEFAULT_METHODS))
    p.add_argument("--check-float64", action="store_true",
                   help="also run every method once in float64 and report its deviation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print a GitHub Markdown table")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error(f"--device cuda: torch {torch.__version__} sees no CUDA GPU")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if "floor" not in args.methods:
        args.methods = ["floor", *args.methods]         # the ratio column needs it
    return args


# ----------------------------------------------------------------------------- measurement


class PeakMemory:
    """Peak memory added while a block runs: CUDA allocator peak, or the process's peak RSS.

    On the CPU the kernel's high-water mark (``VmHWM``) is reset through
    ``/proc/self/clear_refs``; where that is not possible the result is ``None``.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"
        self.base = 0.0

    @staticmethod
    def _status(key: str) -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) * 1024
        raise KeyError(key)

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.base = self._status("VmRSS")
        except OSError:
            self.base = math.nan

    def stop(self) -> float | None:
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        if math.isnan(self.base):
            return None
        try:
            return max(self._status("VmHWM") - self.base, 0.0)
        except (OSError, KeyError):
            return None


@dataclass
class Result:
    method: str
    times: list[float] = field(default_factory=list)
    error: float | None = None
    error64: float | None = None
    memory: float | None = None
    skipped: str | None = None
    note: str = ""


def rel_error(K: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(K - ref)) / np.max(np.abs(ref)))


def jax_floor(model: nb.MLP, weights: list, x_np: np.ndarray, dtype: str,
              device: str) -> Callable[[], object]:
    """The JAX engine's single compiled kernel call on device-resident weights and inputs."""
    from ntkbench.backends import jax_backend as jb

    net = jb.Network(model, weights, dtype=dtype, device=device)
    xa = net._array(x_np)
    static = {"scales": tuple(net.scales), "bias": model.bias, "out_dim": model.out_dim,
              "full": False, "per_layer": False, "activation": model.activation}
    return lambda: jb._whole_kernel(net.params, xa, None, **static).block_until_ready()


def as_numpy(K: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(K, torch.Tensor):
        return K.detach().double().cpu().numpy()
    return np.asarray(K, dtype=np.float64)


def calibrate(dtype: torch.dtype, device: str) -> float:
    """Matrix-product rate (flop/s) of this device and thread count, for time estimates."""
    size = 1024
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    best = math.inf
    for _ in range(3):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_methods(fns: dict[str, Callable[[], object]], estimates: dict[str, tuple[float, float]],
                *, device: str, repeats: int, budget: float, rate: float, max_bytes: float,
                ref: np.ndarray) -> list[Result]:
    """Warm up each method of ``fns`` (checking it against ``ref`` and taking its peak memory),
    then time up to ``repeats`` rounds in which the methods run in turn, each within its own
    ``budget`` of seconds. Interleaving makes every method see the same machine conditions,
    which matters on a CPU shared with other work."""
    results = {name: Result(name) for name in fns}
    spent: dict[str, float] = {}
    for name, fn in fns.items():
        res = results[name]
        flop, nbytes = estimates[name]
        est_seconds = flop / (rate * EFFICIENCY[name])
        if nbytes > max_bytes:
            res.skipped = (f"est. memory {fmt_bytes(nbytes)} > --max-memory-gb "
                           f"{max_bytes / 1e9:g}")
            continue
        if 2 * est_seconds > budget:
            res.skipped = (f"est. {fmt_seconds(est_seconds)} per run; warm-up + 1 run "
                           f"> --max-seconds {budget:g}")
            continue
        mem = PeakMemory(device)
        try:
            mem.start()
            t0 = time.perf_counter()
            out = fn()
            sync(device)
            spent[name] = time.perf_counter() - t0
            res.memory = mem.stop()
            res.error = rel_error(as_numpy(out), ref)
            del out
        except (RuntimeError, MemoryError) as exc:      # torch.OutOfMemoryError included
            res.skipped = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
            res.memory = None
    active = [name for name in fns if name in spent]
    for _ in range(repeats):
        for name in list(active):
            res = results[name]
            expected = statistics.median(res.times) if res.times else spent[name]
            if spent[name] + expected > budget:
                active.remove(name)
                continue
            t0 = time.perf_counter()
            fns[name]()
            sync(device)
            dt = time.perf_counter() - t0
            res.times.append(dt)
            spent[name] += dt
    for name in spent:
        res = results[name]
        if not res.times:
            res.skipped = (f"warm-up took {fmt_seconds(spent[name])}; no timed run fits "
                           f"--max-seconds {budget:g}")
        elif len(res.times) < repeats:
            res.note = f"{len(res.times)} of {repeats} runs (time budget)"
    return list(results.values())


# ------------------------------------------------------------------------------------ cells


def run_cell(args: argparse.Namespace, n: int, depth: int, rate: float) -> tuple[int,
                                                                                list[Result]]:
    model = nb.MLP(in_dim=args.in_dim, width=args.width, depth=depth, out_dim=args.out_dim,
                   activation=args.activation)
    nm.check_supported(model)
    weights = nb.initialize(model, "he_normal", seed=args.seed)
    x_np = np.random.default_rng(args.seed + 1).standard_normal((n, args.in_dim))
    itemsize = torch.empty((), dtype=nm.DTYPES[args.dtype]).element_size()

    def tensors(dtype: str) -> tuple[nm.Params, torch.Tensor]:
        return (nm.to_torch(weights, dtype, args.device),
                torch.as_tensor(x_np, dtype=nm.DTYPES[dtype], device=args.device))

    params64, x64 = tensors("float64")
    ref = as_numpy(nm.floor_ntk(params64, x64, activation=args.activation))

    def make(dtype: str) -> dict[str, Callable[[], object]]:
        params, x = tensors(dtype)
        net, values = nm.sequential(params, args.activation)
        return {
            "ntkbench": lambda: nb.empirical_ntk(model, weights, x_np, dtype=dtype,
                                                 device=args.device),
            "ntkbench_jax": lambda: nb.empirical_ntk(model, weights, x_np, dtype=dtype,
                                                     device=args.device, backend="jax"),
            "floor": lambda: nm.floor_ntk(params, x, activation=args.activation),
            "floor_jax": (jax_floor(model, weights, x_np, dtype, args.device)
                          if "floor_jax" in args.methods else None),
            "jacobian": lambda: nm.jacobian_contraction_ntk(net, values, x),
            "ntk_vp": lambda: nm.ntk_vector_products_ntk(net, values, x),
            "ntk_vp_pairwise": lambda: nm.ntk_vector_products_ntk(net, values, x,
                                                                  pairwise=True),
        }

    fns = make(args.dtype)
    # ntkbench and the floor take turns (their ratio is the headline); each torch.func recipe
    # runs on its own so that a slow one never delays the others.
    fast = [m for m in args.methods if m in ("ntkbench", "ntkbench_jax", "floor", "floor_jax")]
    groups = [fast] + [[m] for m in args.methods if m not in fast]
    by_name: dict[str, Result] = {}
    for group in groups:
        estimates = {m: nm.cost_estimate(m, n, n, model.dims, itemsize) for m in group}
        for res in run_methods({m: fns[m] for m in group}, estimates, device=args.device,
                               repeats=args.repeats, budget=args.max_seconds, rate=rate,
                               max_bytes=args.max_memory_gb * 1e9, ref=ref):
            by_name[res.method] = res
    results = [by_name[m] for m in args.methods]
    del fns
    if args.check_float64:
        fns64 = make("float64")
        for res in results:
            if res.skipped:
                continue
            try:
                res.error64 = rel_error(as_numpy(fns64[res.method]()), ref)
            except (RuntimeError, MemoryError) as exc:
                res.note = (res.note + "; " if res.note else "") + \
                    f"float64 check failed: {type(exc).__name__}"
    return model.n_params(), results


# -------------------------------------------------------------------------------- printing


def fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "n/a"
    if b >= 1e9:
        return f"{b / 1e9:.2f} GB"
    return f"{b / 1e6:.0f} MB"


def device_description(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(args: argparse.Namespace, rate: float) -> list[str]:
    lines = [
        f"torch {torch.__version__}, numpy {np.__version__}, ntkbench {nb.__version__}, "
        f"Python {platform.python_version()}",
        f"device: {args.device} — {device_description(args.device)}; "
        f"torch threads: {torch.get_num_threads()}; dtype: {args.dtype}",
        f"model: MLP {args.in_dim} → {args.width} × depth → {args.out_dim}, "
        f"{args.activation}, he_normal seed {args.seed}; x1 = x2 ~ N(0, 1); "
        f"ntkbench from {Path(nb.__file__).parent}",
        f"timing: 1 warm-up + median/min of up to {args.repeats} runs (ntkbench and floor "
        f"interleaved); budgets "
        f"{args.max_seconds:g} s and {args.max_memory_gb:g} GB per method and cell; "
        f"matmul rate {rate / 1e9:.1f} GFLOP/s",
    ]
    omp = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
           if k in os.environ}
    if omp:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in omp.items()))
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        cpus = os.cpu_count() or 1
        busy = " — other processes compete for the CPUs" if (
            args.device == "cpu" and load + args.threads > cpus + 0.5) else ""
        lines.append(f"load average at start: {load:.2f}{busy}")
    lines.append("err: max |K − K_ref| / max |K_ref| against the floor computed in float64"
                 + ("; err f64: the method itself run in float64" if args.check_float64 else ""))
    lines.append("peak mem: " + ("CUDA allocator peak of the warm-up call above what was "
                                 "allocated before"
                                 if args.device == "cuda" else
                                 "growth of the process's peak RSS during the warm-up call"))
    return lines


def table_rows(args: argparse.Namespace,
               cells: list[tuple[int, int, int, list[Result]]]) -> tuple[list[str],
                                                                        list[list[str]]]:
    cols = ["n", "depth", "params", "method", "median", "min", "runs", "× floor", "err"]
    if args.check_float64:
        cols.append("err f64")
    cols += ["peak mem", "note"]
    rows = []
    for n, depth, n_params, results in cells:
        floor = next((r for r in results if r.method == "floor" and r.times), None)
        floor_med = statistics.median(floor.times) if floor else None
        for r in results:
            row = [str(n), str(depth), f"{n_params:,}", r.method]
            if r.times:
                med = statistics.median(r.times)
                ratio = f"{med / floor_med:.2f}" if floor_med else "—"
                row += [fmt_seconds(med), fmt_seconds(min(r.times)), str(len(r.times)), ratio]
            else:
                row += ["skipped", "—", "0", "—"]
            row.append("—" if r.error is None else f"{r.error:.1e}")
            if args.check_float64:
                row.append("—" if r.error64 is None else f"{r.error64:.1e}")
            row.append(fmt_bytes(r.memory) if r.times else "—")
            row.append(f"skipped ({r.skipped})" if r.skipped else r.note)
            rows.append(row)
    return cols, rows


def render_text(cols: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    left = {"method", "note"}
    out = []
    for line in [cols, ["-" * w for w in widths], *rows]:
        cells = [v.ljust(w) if c in left else v.rjust(w)
                 for v, w, c in zip(line, widths, cols, strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def render_markdown(cols: list[str], rows: list[list[str]]) -> str:
    left = {"method", "note"}
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join(":---" if c in left else "---:" for c in cols) + "|"]
    out += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in rows]
    return "\n".join(out)


def reference_ratio(args: argparse.Namespace,
                    cells: list[tuple[int, int, int, list[Result]]]) -> str | None:
    if (args.width, args.in_dim, args.out_dim) != (REFERENCE["width"], REFERENCE["in_dim"],
                                                   REFERENCE["out_dim"]):
        return None
    for n, depth, _, results in cells:
        if (n, depth) != (REFERENCE["n"], REFERENCE["depth"]):
            continue
        times = {r.method: r.times for r in results if r.times}
        if "ntkbench" in times and "floor" in times:
            med = statistics.median(times["ntkbench"]) / statistics.median(times["floor"])
            best = min(times["ntkbench"]) / min(times["floor"])
            return (f"reference workload (n=256, depth=3, {args.dtype}, {args.device}, "
                    f"{torch.get_num_threads()} threads): ntkbench / floor = {med:.2f}× "
                    f"(medians), {best:.2f}× (minima); target ≤ 1.3×")
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rate = calibrate(nm.DTYPES[args.dtype], args.device)
    lines = header(args, rate)
    if args.markdown:
        print("\n".join(f"- {line}" for line in lines) + "\n", flush=True)
    else:
        print("\n".join(lines) + "\n", flush=True)
    cells = []
    for n in args.n:
        for depth in args.depth:
            n_params, results = run_cell(args, n, depth, rate)
            cells.append((n, depth, n_params, results))
            done = ", ".join(f"{r.method} {fmt_seconds(statistics.median(r.times))}"
                             if r.times else f"{r.method} skipped" for r in results)
            print(f"# n={n} depth={depth}: {done}", file=sys.stderr, flush=True)
    cols, rows = table_rows(args, cells)
    print(render_markdown(cols, rows) if args.markdown else render_text(cols, rows))
    summary = reference_ratio(args, cells)
    if summary:
        print("\n" + summary)
    load = f", load average at end {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"\ntotal wall time {fmt_seconds(time.perf_counter() - started)}{load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
