"""The one command line: `hub run|demo|db upgrade|check-config|resync|dlq|sandbox|broker setup`."""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

# eventlet and pkg_resources announce their own deprecation at import; not our users' concern.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return register


@command("check-config")
def check_config(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .validation import validate_mappings

    problems: list[tuple[str, str]] = []
    try:
        load_config(args.file)
    except ConfigError as exc:
        problems.extend(exc.problems)
    problems.extend(validate_mappings())
    for path, message in problems:
        print(f"{path}: {message}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print("config ok")
    return 0


@command("db")
def db(args: argparse.Namespace) -> int:
    from .bootstrap import build_context

    ctx = build_context(upgrade=True)
    print(f"database at head: {ctx.engine.url.render_as_string(hide_password=True)}")
    return 0


@command("demo")
def demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(verbose=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="O2O Hub: stock and orders in sync")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-config", help="validate config.yaml (and the mappings) and list every problem")
    p.add_argument("file", nargs="?", help="config file (default: config.yaml or $HUB_CONFIG)")
    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"])
    p = sub.add_parser("demo", help="play a short scripted day on the embedded mode")
    p.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
