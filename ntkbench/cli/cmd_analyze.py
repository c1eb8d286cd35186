"""``ntkbench analyze ANALYSIS``: analyses without training (a network at initialization, or
its infinite-width limit).

Each analysis is a sub-command with its own options (``ntkbench analyze variance-flow ...``);
add one by adding its parser in :func:`add_parser` and its function to :data:`ANALYSES`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ntkbench.models import ACTIVATIONS

Z = 5.0  # standard errors of the estimated gain within which g(s)/s − 1 counts as zero


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="analyses (variance-flow, isometry, deep-limit, "
                       "length-scale, width)",
                       description="Analyses that need no training (a network at "
                       "initialization, or its infinite-width limit), and fits over a run.")
    analyses = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    vf = analyses.add_parser(
        "variance-flow", help="infinite-width variance map vs a finite network, per layer",
        description="Iterate the infinite-width variance map s_{l+1} = √E[φ(c·s_l·z)²], "
        "z ~ N(0, 1), where s_l is the RMS of the inputs of layer l+1 and c = σ_w·√fan_in is "
        "the gain of the initializer (measured on the drawn width×width hidden layers); print "
        "its fixed points with their stability and, layer by layer, the theory beside the "
        "measured RMS of a finite MLP (standard parameterization, zero biases) initialised by "
        "that initializer; save an SVG plot.")
    _network_arguments(vf)
    _output_arguments(vf, "variance_flow_<activation>_<init>.svg")
    iso = analyses.add_parser(
        "isometry", help="singular values of the input-output Jacobian, per depth",
        description="Dynamical isometry at initialization: the squared singular values of "
        "the Jacobian J_l = ∂x_l/∂x_0 of each hidden layer's post-activations with respect to "
        "the input, for a finite MLP (standard parameterization, zero biases; in-dim = width "
        "by default, so every layer is square): their mean m₁ and variance σ² per depth and "
        "the largest singular value, beside the free-probability prediction of Pennington, "
        "Schoenholz & Ganguli (2017) from each layer's weight spectrum and the variance map. "
        "Isometric means m₁ ≈ 1 and σ² ≈ 0 at every depth.")
    _network_arguments(iso)
    iso.set_defaults(n_inputs=32)
    iso.add_argument("--input-rms", type=float, default=1.0,
                     help="RMS of the Gaussian inputs (default: 1); small inputs put tanh "
                     "near its linear regime, where orthogonal weights can be isometric")
    _output_arguments(iso, "isometry_<activation>_<init>.svg")
    deep = analyses.add_parser(
        "deep-limit", help="kernel-regression classifier of a binary task vs depth",
        description="The infinite-width ReLU network (critical scale σ_w² = 2, no biases) "
        "as a classifier of a binary task as its depth grows: per depth, the test accuracy of "
        "NTK (or NNGP) kernel regression on ±1 targets, its agreement with the majority vote "
        "of the training labels, and the mean and spread of the normalised off-diagonal "
        "kernel, which for the NTK tends to 1/4 (the classifier tends to the majority vote).")
    deep.add_argument("--task", default="mnist_binary",
                      help="a task YAML file or a task name (./tasks, then the built-in "
                      "tasks) with two classes or ±1 targets (default: mnist_binary)")
    deep.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                      help="override a data parameter of the task, e.g. --param n_train=200 "
                      "(repeatable; the value is read as YAML)")
    deep.add_argument("--depths", default="1,2,4,8,16,32,64,128,256,512",
                      help="comma-separated hidden-layer counts (default: powers of 2 to 512)")
    deep.add_argument("--kernel", choices=("ntk", "nngp"), default="ntk")
    deep.add_argument("--seed", type=int, default=0, help="seed of the data split")
    _output_arguments(deep, "deep_limit_<task>_<kernel>.svg")
    ls = analyses.add_parser(
        "length-scale", help="J_λ-optimal receptive-field length scale vs λ",
        description="The length scale l that structured_rf_ntk picks by minimising "
        "J_λ(l) = (1−λ)·tr(Yᵀ(H+reg·I)⁻¹Y) − λ·tr(YᵀHY) on a task's training data, for "
        "several λ: per λ the global minimiser (Newton from the best point of a log-spaced "
        "scan of l), the generalisation and speed terms there, and the minimiser a trial's "
        "calibration finds (Newton from l0).")
    ls.add_argument("--task", default="mnist",
                    help="a task YAML file or a task name with image inputs (default: mnist)")
    ls.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a data parameter of the task (repeatable; YAML value)")
    ls.add_argument("--lams", default="0,0.25,0.5,0.75,0.9,1",
                    help="comma-separated λ values in [0, 1] (default: %(default)s)")
    ls.add_argument("--batch-size", type=int, default=128,
                    help="training rows the objective sees (default: %(default)s; the "
                    "initializer's default is 256)")
    ls.add_argument("--centres", type=int, default=32,
                    help="receptive-field centres averaged in H (default: %(default)s; the "
                    "initializer's default is 64)")
    ls.add_argument("--f-over-s", type=float, default=None,
                    help="smoothness f per unit size s (default: the initializer's, 0.4)")
    ls.add_argument("--l0", type=float, default=None,
                    help="the calibration's starting length scale (default: the "
                    "initializer's, 5)")
    ls.add_argument("--scan", type=int, default=16,
                    help="log-spaced length scales scanned (default: %(default)s)")
    ls.add_argument("--seed", type=int, default=0, help="seed of the data, rows and centres")
    _output_arguments(ls, "length_scale_<task>.svg")
    width = analyses.add_parser(
        "width", help="power-law fit of an NTK measurement against the swept width",
        description="For a run that sweeps model.width: fit y ≈ a·width^p per task and "
        "initializer by least squares on the logs (every ok trial one point), with the 95% "
        "CI of the exponent p. The default measurement, the relative distance of the "
        "empirical NTK at init to its infinite-width value, shrinks as width^(-1/2).")
    width.add_argument("run_dir", help="a run directory written by `ntkbench run`")
    width.add_argument("--measure", default="ntk_init.analytic_distance",
                       help="a results column, e.g. ntk_drift or linearized.gap_test "
                       "(default: ntk_init.analytic_distance)")
    width.add_argument("--json", action="store_true",
                       help="print the fits as JSON instead of the table")
    p.set_defaults(func=run)


def _output_arguments(p: argparse.ArgumentParser, default_plot: str) -> None:
    """``--plot PATH`` / ``--no-plot`` and ``--json``, shared by the analyses that draw."""
    plot = p.add_mutually_exclusive_group()
    plot.add_argument("--plot", metavar="PATH", help="figure to write, SVG, PDF or PNG by its "
                      f"extension (default: {default_plot} in the current directory)")
    plot.add_argument("--no-plot", action="store_true", help="write no plot")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON instead of the table")


def _network_arguments(p: argparse.ArgumentParser) -> None:
    """The options that pick the network at initialization, shared by the analyses."""
    p.add_argument("--activation", required=True, help=f"one of {', '.join(ACTIVATIONS)}")
    p.add_argument("--init", required=True, metavar="NAME",
                   help="a registered initializer (see: ntkbench list initializers)")
    p.add_argument("--init-param", action="append", default=[], metavar="KEY=VALUE",
                   help="initializer parameter, e.g. --init-param gain=2 (repeatable; the "
                   "value is read as YAML)")
    p.add_argument("--depth", type=int, default=20,
                   help="hidden layers (default: 20; variance-flow needs >= 2)")
    p.add_argument("--width", type=int, default=512, help="units per hidden layer "
                   "(default: 512)")
    p.add_argument("--in-dim", type=int, default=None,
                   help="input dimension (default: the width)")
    p.add_argument("--n-inputs", type=int, default=256,
                   help="Gaussian inputs pushed through the network (default: %(default)s); "
                   "their RMS is 1 (isometry: --input-rms), and a data-dependent initializer "
                   "calibrates on them at RMS 1")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    p.add_argument("--backend", default="torch",
                   help="where a data-dependent initializer (lsuv, go, metainit, ...) "
                   "calibrates, on the Gaussian inputs with targets 0 (default: torch)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    return ANALYSES[args.analysis](args)


@dataclass
class _Network:
    """The network an analysis looks at: an MLP with zero biases under standard
    parameterization, its initial weights and the Gaussian analysis inputs (RMS 1)."""

    model: Any
    weights: Any
    x: Any
    params: dict[str, Any]


def _network(args: argparse.Namespace, *, min_depth: int) -> _Network:
    """Build the :class:`_Network` of the options of :func:`_network_arguments`."""
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
    if args.depth < min_depth:
        raise ValueError(f"--depth must be >= {min_depth}, got {args.depth}"
                         + (": the gain c is measured on the width×width hidden layers "
                            "2..depth" if min_depth == 2 else ""))
    width = integer("--width", args.width, minimum=1)
    in_dim = integer("--in-dim", width if args.in_dim is None else args.in_dim, minimum=1)
    n_inputs = integer("--n-inputs", args.n_inputs, minimum=1)
    model = MLP(in_dim=in_dim, width=width, depth=args.depth, activation=args.activation,
                bias=False)
    # A stream of its own: the weights draw from SeedSequence([seed, layer]).
    rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(1,)))
    x = vf.unit_rms_inputs(n_inputs, in_dim, rng)
    batch = probe = None
    if is_data_dependent(entry.obj):  # calibrated on the analysis inputs, targets 0
        batch, probe = make_batch(model, x), backend_probe(model, args.backend)
    weights = initialize_with(model, entry, args.seed, params, batch=batch, probe=probe)
    return _Network(model, weights, x, params)


def _plot_path(args: argparse.Namespace, default: str) -> Path | None:
    """Where the figure goes (``None`` with ``--no-plot``); its folder must exist."""
    path = None if args.no_plot else Path(args.plot or default)
    if path is not None and not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write the plot to {str(path)!r}: folder "
                                f"{str(path.parent)!r} does not exist")
    return path


def variance_flow(args: argparse.Namespace) -> int:
    """Run ``analyze variance-flow`` and print its table (or JSON); returns the exit code."""
    from ntkbench.analysis import variance_flow as vf

    plot_path = _plot_path(args, f"variance_flow_{args.activation}_{args.init}.svg")
    net = _network(args, min_depth=2)
    model, weights, x, params = net.model, net.weights, net.x, net.params
    depth, width, in_dim, n_inputs = model.depth, model.width, model.in_dim, len(x)
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


def isometry(args: argparse.Namespace) -> int:
    """Run ``analyze isometry`` and print its table (or JSON); returns the exit code."""
    from ntkbench.analysis import isometry as iso
    from ntkbench.checks import positive

    rms = positive("--input-rms", args.input_rms)
    plot_path = _plot_path(args, f"isometry_{args.activation}_{args.init}.svg")
    net = _network(args, min_depth=1)
    model = net.model
    measured = iso.jacobian_spectrum(model, net.weights, rms * net.x)
    square = model.in_dim >= model.width
    theory = iso.free_probability_prediction(model, net.weights, rms) if square else None
    if plot_path is not None:
        from ntkbench.analysis.plots import isometry_figure

        isometry_figure(args.activation, args.init, model.width, measured,
                        theory).savefig(plot_path)
    result = {
        "activation": args.activation, "init": args.init, "init_params": net.params,
        "depth": model.depth, "width": model.width, "in_dim": model.in_dim,
        "n_inputs": len(net.x), "input_rms": rms, "seed": args.seed,
        "layers": [{"layer": layer + 1, "mean_sq": _finite(measured.mean_sq[layer]),
                   "var_sq": _finite(measured.var_sq[layer]),
                   "max_sv": _finite(measured.max_sv[layer]),
                   "theory_mean_sq": None if theory is None else _finite(theory[0][layer]),
                   "theory_var_sq": None if theory is None else _finite(theory[1][layer])}
                   for layer in range(model.depth)],
        "plot": None if plot_path is None else str(plot_path),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"dynamical isometry: {args.activation} MLP, {args.init} weights, depth "
          f"{model.depth}, width {model.width}, in_dim {model.in_dim}; {len(net.x)} inputs "
          f"of RMS {rms:g}, seed {args.seed}")
    print("λ = squared singular values of J_l = ∂x_l/∂x_0; m₁ = mean λ, σ² = Var λ "
          "(pooled over inputs); theory: free probability (Pennington et al. 2017)")
    print(f"{'layer':>5}  {'m₁':>9}  {'theory':>9}  {'σ²':>9}  {'theory':>9}  {'max s':>9}")
    for row in result["layers"]:
        print(f"{row['layer']:>5}  {_fmt(row['mean_sq']):>9}  {_fmt(row['theory_mean_sq']):>9}"
              f"  {_fmt(row['var_sq']):>9}  {_fmt(row['theory_var_sq']):>9}"
              f"  {_fmt(row['max_sv']):>9}")
    if not square:
        print(f"no theory: the first layer {model.width}×{model.in_dim} compresses the "
              "Jacobian (use --in-dim >= --width)")
    if plot_path is not None:
        print(f"plot saved to {plot_path}")
    return 0


def _task_config(name: str):
    """A task by file path or by name (``./tasks/<name>.yaml``, then the built-in tasks)."""
    from ntkbench.spec import load_task, task_search_dirs
    from ntkbench.spec.locations import find_task_file

    path = Path(name)
    if not (path.is_file() or path.suffix or "/" in name):
        path = find_task_file(name, task_search_dirs(Path.cwd() / "suite.yaml")) or path
    if not path.is_file():
        raise FileNotFoundError(f"no task {name!r}: not a file, and no {name}.yaml in ./tasks "
                                "or the built-in tasks (see: ntkbench list tasks)")
    return load_task(path)


def _task_params(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The task of ``--task`` and its data parameters with ``--param`` applied (checked
    against what its generator declares)."""
    from ntkbench import registry
    from ntkbench.spec.task import declared_params

    task = _task_config(args.task)
    overrides = _parse_params(args.param, option="--param")
    try:
        known = declared_params(registry.tasks.get(task.data.generator))
    except registry.RegistryError as exc:
        raise ValueError(str(exc)) from None
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"--param {unknown[0]!r} is not a parameter of the "
                         f"{task.data.generator!r} data"
                         f"{registry.suggest(unknown[0], sorted(known))}")
    return task, {**task.data.params, **overrides}


def _comma_list(text: str, option: str, convert: Callable[[str], Any], what: str) -> list:
    """``"1, 2,4"`` → ``[convert("1"), ...]``; a ``ValueError`` naming ``option`` otherwise."""
    try:
        return [convert(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} expects {what} separated by commas, got {text!r}") from None


def length_scale(args: argparse.Namespace) -> int:
    """Run ``analyze length-scale`` and print its table (or JSON); returns the exit code."""
    import numpy as np

    from ntkbench import registry
    from ntkbench.analysis.length_scale import length_scale_curve, monotone_violations
    from ntkbench.initializers.receptive import DEFAULT_F, DEFAULT_S, input_grid

    task, params = _task_params(args)
    f_over_s = DEFAULT_F / DEFAULT_S if args.f_over_s is None else args.f_over_s
    l0 = DEFAULT_S if args.l0 is None else args.l0
    lams = _comma_list(args.lams, "--lams", float, "numbers")
    if not lams or not all(0.0 <= v <= 1.0 for v in lams):
        raise ValueError(f"--lams must list values in [0, 1], got {args.lams!r}")
    if args.batch_size < 2 or args.centres < 1:
        raise ValueError(f"--batch-size must be >= 2 and --centres >= 1, got "
                         f"{args.batch_size} and {args.centres}")
    plot_path = _plot_path(args, f"length_scale_{task.name}.svg")
    data = registry.tasks.get(task.data.generator).obj(seed=args.seed, **params)
    channels, grid = input_grid(data.in_dim, data.input_shape)
    rng = np.random.default_rng(args.seed)
    n = min(args.batch_size, data.n_train)
    rows = np.sort(rng.choice(data.n_train, n, replace=False))
    y = data.target_matrix(data.y_train[rows])  # as a calibration sees it
    table, scan = length_scale_curve(data.x_train[rows], y, grid, lams, channels=channels,
                                     f_over_s=f_over_s, l0=l0, centres=args.centres,
                                     seed=args.seed, n_scan=args.scan)
    title = f"{task.name} ({n} rows, {args.centres} centres, grid {'×'.join(map(str, grid))})"
    if plot_path is not None:
        from ntkbench.analysis.plots import length_scale_figure
        from ntkbench.initializers.receptive import LENGTH_SCALE_SPAN

        length_scale_figure(table, scan, title,
                            upper=LENGTH_SCALE_SPAN * max(grid)).savefig(plot_path)
    violations = monotone_violations(table)
    result = {"task": task.name, "data_params": params, "seed": args.seed, "rows_used": n,
              "grid": list(grid), "channels": channels, "centres": args.centres,
              "f_over_s": f_over_s, "l0": l0, "rows": table.to_dict(orient="records"),
              "scan": scan.to_dict(orient="records"), "monotone_violations": violations,
              "plot": None if plot_path is None else str(plot_path)}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"J_λ-optimal receptive-field length scale: {title}; f = {f_over_s:g}·s")
    print(f"{'λ':>5}  {'l*':>9}  {'J_λ(l*)':>11}  {'G(l*)':>10}  {'S(l*)':>10}  "
          f"{'calibration l':>13}")
    for r in result["rows"]:
        cal = "same" if r["calibration_is_global"] else _fmt(r["calibrated_length_scale"])
        print(f"{r['lam']:>5.3g}  {_fmt(r['length_scale']):>9}  {_fmt(r['j_lambda']):>11}  "
              f"{_fmt(r['inverse_term']):>10}  {_fmt(r['speed_term']):>10}  {cal:>13}")
    print("G = tr(Yᵀ(H+reg·I)⁻¹Y) (small: generalisation), S = tr(YᵀHY) (large: fast "
          "training); calibration: where Newton from l0 stops, as in a trial ('same': the "
          "global minimum)")
    for v in violations:
        print(f"warning: {v} (global minimisers cannot do this: a minimum was missed)")
    if plot_path is not None:
        print(f"plot saved to {plot_path}")
    return 0


def deep_limit(args: argparse.Namespace) -> int:
    """Run ``analyze deep-limit`` and print its table (or JSON); returns the exit code."""
    from ntkbench import registry
    from ntkbench.analysis.deep_limit import deep_limit_curve

    task, params = _task_params(args)
    depths = _comma_list(args.depths, "--depths", int, "integers")
    if not depths or min(depths) < 1:
        raise ValueError(f"--depths must list hidden-layer counts >= 1, got {args.depths!r}")
    plot_path = _plot_path(args, f"deep_limit_{task.name}_{args.kernel}.svg")
    data = registry.tasks.get(task.data.generator).obj(seed=args.seed, **params)
    curve = deep_limit_curve(data.x_train, data.y_train, data.x_test, data.y_test, depths,
                             kernel=args.kernel)
    if plot_path is not None:
        from ntkbench.analysis.plots import deep_limit_figure

        deep_limit_figure(curve, f"{task.name} ({data.n_train} train, "
                          f"{len(data.x_test)} test)", args.kernel).savefig(plot_path)
    result = {"task": task.name, "data_params": params, "seed": args.seed,
              "kernel": args.kernel, "n_train": int(data.n_train),
              "n_test": int(len(data.x_test)), "rows": curve.to_dict(orient="records"),
              "plot": None if plot_path is None else str(plot_path)}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"deep-limit classifier: {args.kernel.upper()} kernel regression of ReLU networks "
          f"(σ_w² = 2, no biases) on {task.name}, {data.n_train} train / {len(data.x_test)} "
          f"test points, ±1 targets, seed {args.seed}")
    print(f"{'depth':>6}  {'test acc.':>9}  {'= majority':>10}  {'= weighted':>10}  "
          f"{'off-diag mean':>13}  {'off-diag std':>12}")
    for row in result["rows"]:
        print(f"{row['depth']:>6}  {_fmt(row['test_accuracy'], '.4f'):>9}  "
              f"{_fmt(row['majority_agreement'], '.4f'):>10}  "
              f"{_fmt(row['weighted_vote_agreement'], '.4f'):>10}  "
              f"{_fmt(row['offdiag_mean'], '.4f'):>13}  {_fmt(row['offdiag_std'], '.2e'):>12}")
    print(f"majority vote of the training labels scores {curve['majority_accuracy'].iloc[0]:.4f}"
          "; '= majority' / '= weighted': share of test points given the class of the majority"
          " vote / of the norm-weighted vote sign Σ y_i/‖x_i‖ (the deep limit for inputs of "
          "unequal norm); off-diag: K_ij/√(K_ii K_jj), i ≠ j, on the training set (NTK → 1/4, "
          "NNGP → 1 with depth)")
    if plot_path is not None:
        print(f"plot saved to {plot_path}")
    return 0


def width_fit(args: argparse.Namespace) -> int:
    """Run ``analyze width`` and print its table (or JSON); returns the exit code."""
    from ntkbench.report.width import width_convergence
    from ntkbench.store import load_results

    fits = width_convergence(load_results(args.run_dir), args.measure)
    if args.json:
        print(json.dumps(fits.to_dict(orient="records"), indent=2, default=str))
        return 0
    from tabulate import tabulate

    print(f"{args.measure} ≈ a · width^p, least squares on the logs (95% CI of p)")
    backends = fits["backend"].nunique() > 1
    rows = [[r.task, r.initializer, *([r.backend] if backends else []),
             ",".join(map(str, r.widths)), r.n_points,
             f"{_fmt(_finite(r.exponent), '.3f')} [{_fmt(_finite(r.exponent_ci_low), '.3f')}, "
             f"{_fmt(_finite(r.exponent_ci_high), '.3f')}]",
             _fmt(_finite(r.prefactor), '.3g'), _fmt(_finite(r.r_squared), '.3f')]
            for r in fits.itertuples()]
    headers = ["task", "initializer", *(["backend"] if backends else []),
               "widths", "points", "exponent p [95% CI]", "a", "R²"]
    print(tabulate(rows, headers, disable_numparse=True))
    return 0


ANALYSES: dict[str, Callable[[argparse.Namespace], int]] = {"variance-flow": variance_flow,
                                                           "isometry": isometry,
                                                           "deep-limit": deep_limit,
                                                           "length-scale": length_scale,
                                                           "width": width_fit}


def _parse_params(items: list[str], option: str = "--init-param") -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects KEY=VALUE (e.g. "
                             f"{'gain=2' if option == '--init-param' else 'n_train=200'}), "
                             f"got {item!r}")
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
