"""Command line: a thin dispatcher. Each package contributes its sub-commands
through a ``cli`` module with ``register(subparsers)``; the handler is stored as
``func`` on the parsed arguments and returns the process exit status.

Every command fails like a tool, and this module is the one place that makes it so: a bad flag, a
missing file, a refused connection or any other error ends the command with ONE line on stderr
(``iso15118 COMMAND: error: ...``) and an exit status from this table, never a traceback
(``ISO15118_TRACEBACK=1`` shows it, for debugging):

====  =========================================================================================
0     success
1     a finding: a failed session or check, problems found in a capture, an input the codec refused
2     usage error (bad flag or value) or an error that stopped the command (missing file,
      connection refused or reset, TLS failure, ...)
3     the input is not what the command reads (``decode``: not a capture file)
130   interrupted (Ctrl-C)
====  =========================================================================================
"""

from __future__ import annotations

import argparse
import errno
import os
import ssl
import sys
from typing import NoReturn

from conformance import cli as conformance_cli
from iso15118.capture import cli as capture_cli
from iso15118.exi import cli as exi_cli
from iso15118.security import cli as security_cli
from iso15118.sim import cli as sim_cli

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_ERROR = 2
EXIT_NOT_INPUT = 3
EXIT_INTERRUPTED = 130

EPILOG = ("exit status: 0 success, 1 a finding (failed session or check, problems in a capture), 2 usage "
          "error or an error that stopped the command (missing file, refused connection, ...), 3 not a "
          "capture / not the expected input, 130 interrupted")


class ToolArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``PROG: error: ...; see PROG --help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

# Packages that contribute sub-commands, in help order.  Each ``cli`` module imports
# its package lazily inside the handlers, so building the parser stays cheap.
_COMMAND_MODULES = (exi_cli, capture_cli, security_cli, sim_cli, conformance_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(prog="iso15118", description="ISO 15118-20 stack, tester and decoder", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _COMMAND_MODULES:
        mod.register(sub)
    return parser


def _endpoint(args: argparse.Namespace) -> str:
    host, port = getattr(args, "host", None), getattr(args, "port", None)
    if host is None or port is None:
        return ""
    return f" [{host}]:{port}" if ":" in str(host) else f" {host}:{port}"


def describe_failure(exc: BaseException, args: argparse.Namespace) -> str:
    """The one line that tells what stopped the command."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return f"cannot connect to{_endpoint(args) or ' the peer'}: connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed{' with' + _endpoint(args) if _endpoint(args) else ''}: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"connection{_endpoint(args)} failed: {exc.strerror or exc or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    prog = " ".join(["iso15118", *[str(v) for k, v in vars(args).items() if k.endswith("command") and v][:2]])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except SystemExit as exc:  # a handler's own sys.exit("message") / raise SystemExit(status)
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(f"{prog}: error: {exc.code}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the one place where any error becomes one line and status 2
        if os.environ.get("ISO15118_TRACEBACK"):
            raise
        print(f"{prog}: error: {describe_failure(exc, args)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
