"""Command line: a thin dispatcher. Each package contributes its sub-commands
through a ``cli`` module with ``register(subparsers)``; the handler is stored as
``func`` on the parsed arguments and returns the process exit status."""

from __future__ import annotations

import argparse
import sys

from conformance import cli as conformance_cli
from iso15118.capture import cli as capture_cli
from iso15118.exi import cli as exi_cli
from iso15118.security import cli as security_cli
from iso15118.sim import cli as sim_cli

# Packages that contribute sub-commands, in help order.  Each ``cli`` module imports
# its package lazily inside the handlers, so building the parser stays cheap.
_COMMAND_MODULES = (exi_cli, capture_cli, security_cli, sim_cli, conformance_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iso15118", description="ISO 15118-20 stack, tester and decoder")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _COMMAND_MODULES:
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
