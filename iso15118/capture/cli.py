"""``iso15118 decode CAPTURE [options]``: decode a pcap / pcapng capture of a charging session.

Exit status:

====  ==========================================================================================
0     the capture was decoded and nothing in it was damaged or undecodable
1     decoded, but problems were found: capture file damage (truncated / corrupt records), TCP
      gaps, V2GTP framing errors, undecodable EXI payloads, TLS records that did not decrypt
2     usage error (bad option, unreadable key log)
3     the file is not a capture (or cannot be opened)
====  ==========================================================================================

FAILED response codes and timing violations are what the session did, not decoder problems: they
are highlighted and summarised but do not change the exit status.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from typing import Any

__all__ = ["register", "run", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "EXIT_NOT_A_CAPTURE"]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOT_A_CAPTURE = 3

_PROBLEM_KINDS = ("capture", "framing")
_PROGRESS_MIN_BYTES = 2 * 1024 * 1024


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decode",
        help="decode a pcap / pcapng capture of a charging session",
        description=(
            "Decode a packet capture (pcap / pcapng, optionally gzip'ed) of an ISO 15118 / DIN SPEC 70121 "
            "charging session: SLAC, SDP, TCP reassembly, optional TLS decryption, V2GTP framing, EXI "
            "decoding with the negotiated schema."
        ),
        epilog="Exit status: 0 clean, 1 problems found in the capture, 2 usage error, 3 not a capture.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file")
    p.add_argument("--format", choices=("text", "json", "jsonl", "xml"), default="text",
                   help="output format (default: coloured timeline)")
    p.add_argument("--summary", action="store_true",
                   help="summary report (text: instead of the timeline; json/jsonl/xml: appended)")
    p.add_argument("--timeline", action="store_true", help="with --summary in text format: show the timeline too")
    p.add_argument("--message", action="append", metavar="NAME",
                   help="only messages / events with this name (glob, case-insensitive; repeatable), "
                        "e.g. 'CurrentDemand*' or 'CM_SLAC_*'")
    p.add_argument("--session", metavar="ID", help="only events of the session with this SessionID (hex)")
    p.add_argument("--keylog", metavar="FILE", help="SSLKEYLOGFILE (NSS format) to decrypt TLS")
    p.add_argument("--no-decode", action="store_true", help="frame V2GTP only, skip EXI decoding")
    p.add_argument("--no-cache", action="store_true", help="do not memoise decoded payloads")
    p.add_argument("--no-slac", action="store_true", help="hide HomePlug AV / SLAC frames")
    p.add_argument("--absolute-time", action="store_true",
                   help="timeline: UTC time of day instead of seconds from the first event")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar (auto: when stdout is a terminal and the capture is large)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=run)


class _SessionFilter:
    """Keeps the events of one session; events of a connection are held until its SessionID is
    known (the negotiation and SessionSetupReq come before the SECC assigns it)."""

    def __init__(self, sid: str) -> None:
        self.sid = sid.upper().replace(":", "").replace(" ", "")
        self.conn_sid: dict[int, str] = {}
        self.held: dict[int, list[Any]] = {}

    def __call__(self, ev: Any) -> list[Any]:
        conn = ev.conn
        if conn is None:
            return []
        if ev.session_id and ev.session_id.strip("0") and conn not in self.conn_sid:
            self.conn_sid[conn] = ev.session_id.upper()
            held = self.held.pop(conn, [])
            return [*held, ev] if self.conn_sid[conn] == self.sid else []
        if conn in self.conn_sid:
            return [ev] if self.conn_sid[conn] == self.sid else []
        lst = self.held.setdefault(conn, [])
        if len(lst) < 1000:
            lst.append(ev)
        return []


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.pcapio import CaptureFormatError
    from iso15118.capture.render import JsonLinesRenderer, JsonRenderer, TimelineRenderer, XmlRenderer
    from iso15118.capture.summary import SummaryBuilder

    err = Console(stderr=True, soft_wrap=True, highlight=False)
    keylog = None
    if args.keylog:
        from iso15118.capture.tls_decrypt import Keylog

        try:
            keylog = Keylog.load(args.keylog)
        except OSError as exc:
            err.print(f"[red]cannot read key log {args.keylog}: {exc.strerror or exc}[/red]")
            return EXIT_USAGE
        if not len(keylog):
            err.print(f"[yellow]key log {args.keylog} holds no secrets[/yellow]")
    try:
        dec = CaptureDecoder(args.capture, keylog=keylog, decode=not args.no_decode,
                             cache_size=0 if args.no_cache else 4096)
    except CaptureFormatError as exc:
        err.print(f"[red]{exc}[/red]")
        return EXIT_NOT_A_CAPTURE

    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        return _decode(args, dec, out, err, Console, JsonRenderer, JsonLinesRenderer, XmlRenderer,
                       TimelineRenderer, SummaryBuilder)
    finally:
        if args.output:
            out.close()


def _decode(args: argparse.Namespace, dec: Any, out: Any, err: Any, Console: Any, JsonRenderer: Any,
            JsonLinesRenderer: Any, XmlRenderer: Any, TimelineRenderer: Any, SummaryBuilder: Any) -> int:
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    color = {"always": True, "never": False}.get(args.color, is_tty)
    console = Console(file=out, force_terminal=color if args.color != "auto" else None,
                      no_color=not color, highlight=False, soft_wrap=True, markup=False,
                      width=None if is_tty else 160)
    summary_builder = SummaryBuilder() if args.summary else None
    fmt = args.format
    if fmt == "json":
        renderer: Any = JsonRenderer(out, args.capture)
    elif fmt == "jsonl":
        renderer = JsonLinesRenderer(out, args.capture)
    elif fmt == "xml":
        renderer = XmlRenderer(out, args.capture)
    else:
        renderer = TimelineRenderer(console, absolute_time=args.absolute_time)
    show_events = not (fmt == "text" and args.summary and not args.timeline)

    patterns = [m.lower() for m in args.message or []]
    sess_filter = _SessionFilter(args.session) if args.session else None

    def wanted_name(ev: Any) -> bool:
        if not patterns:
            return True
        name = ev.name.lower()
        return any(fnmatch.fnmatchcase(name, p) or name == p for p in patterns)

    problems = 0
    progress_cm = None
    task = None
    want_progress = args.progress == "always" or (
        args.progress == "auto" and sys.stdout.isatty() and dec.reader.size >= _PROGRESS_MIN_BYTES
    )
    if want_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        progress_cm = Progress(TextColumn("decoding"), BarColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                               console=console if (is_tty and fmt == "text") else Console(stderr=True), transient=True)
        progress_cm.start()
        task = progress_cm.add_task("decode", total=dec.reader.size)

    def on_progress(done: int, total: int) -> None:
        if progress_cm is not None and task is not None:
            progress_cm.update(task, completed=done)

    renderer.begin()
    try:
        for ev in dec.events(progress=on_progress if progress_cm else None):
            if ev.level == "error" and (
                ev.kind in _PROBLEM_KINDS
                or (ev.kind == "tcp" and ev.name in ("TCP gap", "TCP snap cut"))
                or (ev.kind == "tls")
                or (ev.kind == "v2g" and ev.decoded is not None and ev.decoded.error is not None)
            ):
                problems += 1
            if summary_builder is not None:
                summary_builder.add(ev)
            if not show_events:
                continue
            if args.no_slac and ev.kind == "slac":
                continue
            batch = sess_filter(ev) if sess_filter is not None else [ev]
            for e in batch:
                if wanted_name(e):
                    renderer.event(e)
    except BrokenPipeError:
        raise
    finally:
        if progress_cm is not None:
            progress_cm.stop()
    summary = None
    if summary_builder is not None:
        summary = summary_builder.result(dec.stats)
    renderer.end(summary)
    return EXIT_PROBLEMS if problems else EXIT_OK
