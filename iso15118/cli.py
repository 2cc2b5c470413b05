"""Command line: a thin dispatcher. Each package contributes its sub-commands
through a ``cli`` module with ``register(subparsers)``; the handler is stored as
``func`` on the parsed arguments and returns the process exit status."""

from __future__ import annotations

import argparse
import importlib
import sys

# Packages that contribute sub-commands, in help order.  A package whose ``cli``
# module does not exist yet is simply skipped.
_COMMAND_MODULES = (
    "iso15118.exi.cli",
    "iso15118.capture.cli",
    "iso15118.security.cli",
    "iso15118.session.cli",
    "iso15118.sim.cli",
    "conformance.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iso15118", description="ISO 15118-20 stack, tester and decoder")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
