"""``ntkbench validate FILE``: check a suite or task file without running anything."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a suite or task YAML file",
                       description="Parse and validate a suite (or a tasks/*.yaml task file); "
                       "print every problem as FILE:LINE: FIELD: MESSAGE and exit 2 if any.")
    p.add_argument("file", help="suite or task YAML file, or the name of a built-in suite")
    p.add_argument("--variant", metavar="NAME",
                   help="check only this variant of the suite (default: the suite and every "
                   "variant it declares)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import yaml

    from ntkbench.spec import load_suite, load_task, suite_path

    path = suite_path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"{args.file!r} does not exist")
    try:
        top = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        top = None  # load_suite reports the syntax error with its line
    if isinstance(top, dict) and "data" in top and "initializers" not in top:
        task = load_task(path)
        print(f"{path}: OK — task {task.name!r} (data: {task.data.generator}, "
              f"metric: {task.metric})")
        return 0
    suite = load_suite(path, variant=args.variant, check_data=True)
    suites = [suite] + [load_suite(path, variant=name, check_data=True)
                        for name in suite.variants]
    for s in suites:
        n = len(s.trials())
        print(f"{path}: OK — suite {s.name!r}: {len(s.tasks)} task(s) × "
              f"{len(s.initializers)} initializer(s) × {len(s.backends)} backend(s) × "
              f"{len(s.seeds)} seed(s)" + (f" × sweep {dict(s.sweep)}" if s.sweep else "")
              + f" = {n} trial(s)")
    return 0
