"""``ntkbench analyze ANALYSIS``: analyses of a network at initialization, without training.

Each analysis is a sub-command with its own options (``ntkbench analyze variance-flow ...``);
add one by adding its parser in :func:`add_parser` and its function to :data:`ANALYSES`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ntkbench.models import ACTIVATIONS

Z = 5.0  # standard errors of the estimated gain within which g(s)/s − 1 counts as zero


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="analyses at initialization (variance-flow)",
                       description="Analyses of a network at initialization that need no "
                       "training.")
    analyses = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    vf = analyses.add_parser(
        "variance-flow", help="infinite-width variance map vs a finite network, per layer",
        description="Iterate the infinite-width variance map s_{l+1} = √E[φ(c·s_l·z)²], "
        "z ~ N(0, 1), where s_l is the RMS of the inputs of layer l+1 and c = σ_w·√fan_in is "
        "the gain of the initializer (measured on the drawn width×width hidden layers); print "
        "its fixed points with their stability and, layer by layer, the theory beside the "
        "measured RMS of a finite MLP (standard parameterization, zero biases) initialised by "
        "that initializer; save an SVG plot.")
    vf.add_argument("--activation", required=True, help=f"one of {', '.join(ACTIVATIONS)}")
    vf.add_argument("--init", required=True, metavar="NAME",
                    help="a registered initializer (see: ntkbench list initializers)")
    vf.add_argument("--init-param", action="append", default=[], metavar="KEY=VALUE",
                    help="initializer parameter, e.g. --init-param gain=2 (repeatable; the "
                    "value is read as YAML)")
    vf.add_argument("--depth", type=int, default=20, help="hidden layers (default: 20, >= 2)")
    vf.add_argument("--width", type=int, default=512, help="units per hidden layer "
                    "(default: 512)")
    vf.add_argument("--in-dim", type=int, default=None,
                    help="input dimension (default: the width)")
    vf.add_argument("--n-inputs", type=int, default=256,
                    help="Gaussian inputs of RMS 1 pushed through the network (default: 256)")
    vf.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    vf.add_argument("--backend", default="torch",
                    help="where a data-dependent initializer (lsuv, go, metainit, ...) "
                    "calibrates, on the Gaussian inputs with targets 0 (default: torch)")
    plot = vf.add_mutually_exclusive_group()
    plot.add_argument("--plot", metavar="PATH", help="figure to write, SVG, PDF or PNG by its "
                      "extension (default: variance_flow_<activation>_<init>.svg in the "
                      "current directory)")
    plot.add_argument("--no-plot", action="store_true", help="write no plot")
    vf.add_argument("--json", action="store_true",
                    help="print the result as JSON instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    return ANALYSES[args.analysis](args)


def variance_flow(args: argparse.Namespace) -> int:
    """Run ``analyze variance-flow`` and print its table (or JSON); returns the exit code."""
    import numpy as np

    from ntkbench import registry
    from ntkbench.analysis import variance_flow as vf
    from ntkbench.checks import integer
    from ntkbench.initializers import initialize_with, make_batch
    from ntkbench.initializers.calibration import backend_probe, is_data_dependent
    from ntkbench.models import MLP

    if args.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {args.activation!r}"
                         f"{registry.suggest(args.activation, ACTIVATIONS)}")
    try:
        entry = registry.initializers.get(args.init)
    except registry.RegistryError as exc:
        raise ValueError(f"{exc} (see: ntkbench list initializers)") from None
    params = _parse_params(args.init_param)
    if args.depth < 2:
        raise ValueError(f"--depth must be >= 2, got {args.depth}: the gain c is measured on "
                         "the width×width hidden layers 2..depth")
    depth = args.depth
    width = integer("--width", args.width, minimum=1)
    in_dim = integer("--in-dim", width if args.in_dim is None else args.in_dim, minimum=1)
    n_inputs = integer("--n-inputs", args.n_inputs, minimum=1)
    plot_path = None if args.no_plot else Path(
        args.plot or f"variance_flow_{args.activation}_{args.init}.svg")
    if plot_path is not None and not plot_path.parent.is_dir():
        raise FileNotFoundError(f"cannot write the plot to {str(plot_path)!r}: folder "
                                f"{str(plot_path.parent)!r} does not exist")

    model = MLP(in_dim=in_dim, width=width, depth=depth, activation=args.activation, bias=False)
    # A stream of its own: the weights draw from SeedSequence([seed, layer]).
    rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(1,)))
    x = vf.unit_rms_inputs(n_inputs, in_dim, rng)
    batch = probe = None
    if is_data_dependent(entry.obj):  # calibrated on the analysis inputs, targets 0
        batch, probe = make_batch(model, x), backend_probe(model, args.backend)
    weights = initialize_with(model, entry, args.seed, params, batch=batch, probe=probe)
    gain = vf.weight_gain(model, weights, range(1, depth))
    first = vf.weight_gain(model, weights, [0])
    rtol = max(Z * gain.stderr / gain.value, 1e-9) if gain.value > 0 else 1e-9
    points = vf.fixed_points(args.activation, gain.value, rtol=rtol)
    theory = vf.iterate(args.activation, gain.value, 1.0, depth, c_first=first.value)
    measured = vf.measured_flow(model, weights, x)

    if plot_path is not None:
        _write_plot(plot_path, args.activation, args.init, width, theory, measured)
    if not (gain.zero_mean and first.zero_mean):
        print(f"note: the weights of {args.init!r} have a nonzero mean; the variance map "
              "assumes zero-mean weights, so expect theory and measurement to disagree",
              file=sys.stderr)
    result = {
        "activation": args.activation, "init": args.init, "init_params": params,
        "depth": depth, "width": width, "in_dim": in_dim, "n_inputs": n_inputs,
        "seed": args.seed, "gain": gain.value, "gain_stderr": gain.stderr,
        "first_layer_gain": first.value,
        "fixed_points": {"every_s": points.every_s,
                         "points": [{"s": p.s, "slope": p.slope, "stable": p.stable,
                                     "marginal": p.marginal} for p in points.points]},
        "layers": [{"layer": layer, "theory": _finite(t), "measured": _finite(m),
                    "ratio": _ratio(m, t)}
                   for layer, (t, m) in enumerate(zip(theory, measured, strict=True))],
        "plot": None if plot_path is None else str(plot_path),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))  # default: a YAML date parameter
        return 0
    _print_text(result)
    return 0


ANALYSES: dict[str, Callable[[argparse.Namespace], int]] = {"variance-flow": variance_flow}


def _parse_params(items: list[str]) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--init-param expects KEY=VALUE (e.g. gain=2), got {item!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            params[key.strip()] = value  # not YAML: keep the text, the initializer judges it
    return params


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _ratio(measured: float, theory: float) -> float | None:
    if not (math.isfinite(measured) and math.isfinite(theory)) or theory == 0:
        return None
    return float(measured / theory)


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _describe(point: dict[str, Any]) -> str:
    verdict = "stable" if point["stable"] else "unstable"
    if point["marginal"]:
        verdict += (" (marginal: |g′| ≈ 1, approached as a power of the depth)"
                    if point["stable"] else " (marginal: |g′| ≈ 1)")
    return f"s* = {point['s']:<10.4g} g′(s*) = {point['slope']:<8.4f} {verdict}"


def _print_text(r: dict[str, Any]) -> None:
    print(f"variance flow: {r['activation']} MLP, {r['init']} weights, depth {r['depth']}, "
          f"width {r['width']}, in_dim {r['in_dim']}; {r['n_inputs']} inputs of RMS 1, "
          f"seed {r['seed']}")
    print(f"gain c = σ_w·√fan_in = {r['gain']:.4f} ± {r['gain_stderr']:.4f} (hidden "
          f"{r['width']}×{r['width']} layers 2..{r['depth']}); first layer "
          f"c₁ = {r['first_layer_gain']:.4f} (fan_in {r['in_dim']})")
    print(f"fixed points of s ↦ √E[{r['activation']}(c·s·z)²], z ~ N(0, 1):")
    if r["fixed_points"]["every_s"]:
        print("  every s is a fixed point (marginal: g′ = 1): the variance is preserved at any "
              "scale")
    for point in r["fixed_points"]["points"]:
        print("  " + _describe(point))
    print(f"{'layer':>5}  {'theory s_l':>11}  {'measured':>11}  {'ratio':>7}")
    for row in r["layers"]:
        print(f"{row['layer']:>5}  {_fmt(row['theory']):>11}  {_fmt(row['measured']):>11}  "
              f"{_fmt(row['ratio'], '.3f'):>7}")
    print(f"ratio = measured / theory; at finite width it wanders, typically by up to about "
          f"√(l/width) = {math.sqrt(r['depth'] / r['width']):.2f} at layer {r['depth']}")
    if r["plot"] is not None:
        print(f"plot saved to {r['plot']}")


def _write_plot(path: Path, activation: str, init: str, width: int, theory, measured) -> None:
    from ntkbench.analysis.plots import variance_flow_figure

    fig = variance_flow_figure(activation, init, width, list(theory), list(measured))
    fig.savefig(path)  # the format follows the extension: .svg, .pdf, .png
