"""``ntkbench``: run suites, validate specs, list plugins, publish leaderboards."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ntkbench._version import __version__
from ntkbench.cli import (
    cmd_analyze,
    cmd_compare,
    cmd_data,
    cmd_leaderboard,
    cmd_list,
    cmd_merge,
    cmd_report,
    cmd_run,
    cmd_validate,
)

COMMANDS = (cmd_run, cmd_validate, cmd_list, cmd_leaderboard, cmd_report, cmd_compare,
            cmd_merge, cmd_analyze, cmd_data)


class UsageError(Exception):
    """A mistake in what the user asked for: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntkbench",
        description="Benchmark weight initializers through the Neural Tangent Kernel.")
    parser.add_argument("--version", action="version", version=f"ntkbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ntkbench.spec import SpecError
    from ntkbench.store import StoreWriteError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, argv) or 0
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (UsageError, FileNotFoundError, ValueError) as exc:
        print(f"ntkbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except StoreWriteError as exc:  # disk full, read-only: what failed and what was kept
        print(f"ntkbench {args.command}: error: {exc.strerror}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ntkbench list initializers | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
