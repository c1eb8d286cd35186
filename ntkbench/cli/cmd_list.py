"""``ntkbench list initializers|tasks|backends|metrics|suites``: what is registered, with
parameters, and the suites shipped with ntkbench."""

from __future__ import annotations

import argparse

KINDS = ("initializers", "tasks", "backends", "metrics", "suites")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered initializers, tasks, backends, metrics, "
                       "built-in suites",
                       description="Show each registered plugin's name, parameters with "
                       "defaults, origin (builtin, entry point, ...) and summary; or the "
                       "built-in suites with their variants.")
    p.add_argument("kind", choices=KINDS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench import registry
    from ntkbench.initializers.calibration import is_data_dependent

    if args.kind == "suites":
        return _list_suites()
    if args.kind == "metrics":
        from ntkbench.evaluation import METRICS

        for m in METRICS.values():
            better = "lower" if m.goal == "min" else "higher"
            print(f"{m.name:<16} {better} is better; {', '.join(m.kinds)} — {m.description}")
        return 0
    reg = {"initializers": registry.initializers, "tasks": registry.tasks,
           "backends": registry.backends}[args.kind]
    entries = list(reg)
    width = max((len(e.name) for e in entries), default=0)
    for e in entries:
        params = ", ".join(p.describe() for p in e.params) or "no parameters"
        tags = e.origin + (", data-dependent" if is_data_dependent(e.obj) else "")
        print(f"{e.name:<{width}}  ({params})  [{tags}]")
        if e.summary():
            print(f"{'':<{width}}  {e.summary()}")
    return 0


def _list_suites() -> int:
    """Each built-in suite: name, trial count, variants, description (``ntkbench run NAME``)."""
    from ntkbench.spec import load_suite
    from ntkbench.spec.locations import builtin_suites

    paths = builtin_suites()
    width = max((len(p.stem) for p in paths), default=0)
    for path in paths:
        suite = load_suite(path)
        variants = f"; variants: {', '.join(suite.variants)}" if suite.variants else ""
        print(f"{path.stem:<{width}}  {len(suite.trials())} trials{variants}")
        if suite.description:
            print(f"{'':<{width}}  {suite.description}")
    return 0
