"""One capture decoded to one output: what ``iso15118 decode CAPTURE`` does for each capture,
whether it runs alone, in a worker process of ``--workers N`` or on a Dask worker.

:class:`DecodeOptions` holds the output options (plain data: it is pickled to the workers);
:func:`render_capture` writes a capture's timeline / JSON / JSON Lines / XML to a text stream and
returns the capture's exit status.  The same function serves every path, so the bytes a capture
produces do not depend on how many workers there are.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "DecodeOptions",
    "SessionFilter",
    "render_capture",
    "is_problem",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "EXIT_NOT_A_CAPTURE",
]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOT_A_CAPTURE = 3

_PROBLEM_KINDS = ("capture", "framing")
PROGRESS_MIN_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class DecodeOptions:
    """The options of ``iso15118 decode`` that shape one capture's output."""

    format: str = "text"  # text | json | jsonl | xml | parquet
    summary: bool = False
    timeline: bool = False
    message: tuple[str, ...] = ()
    session: str | None = None
    keylog: str | None = None
    decode: bool = True
    cache: bool = True
    no_slac: bool = False
    absolute_time: bool = False
    color: str = "auto"


def is_problem(ev: Any) -> bool:
    """A decoder problem (exit status 1): capture damage, framing damage, TCP gaps, TLS records
    that did not decrypt, undecodable payloads.  FAILED codes and timing are what the session did."""
    return ev.level == "error" and (
        ev.kind in _PROBLEM_KINDS
        or (ev.kind == "tcp" and ev.name in ("TCP gap", "TCP snap cut"))
        or (ev.kind == "tls")
        or (ev.kind == "v2g" and ev.decoded is not None and ev.decoded.error is not None)
    )


class SessionFilter:
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


def load_keylog(path: str | None) -> Any:
    """The key log of ``--keylog`` (None when not given); OSError when unreadable."""
    if not path:
        return None
    from iso15118.capture.tls_decrypt import Keylog

    return Keylog.load(path)


def render_capture(path: str, opts: DecodeOptions, out: IO[str], *, keylog: Any = None,
                   progress: Callable[[Any], Any] | None = None) -> int:
    """Decode ``path`` and write it to ``out`` in ``opts.format``; returns the exit status
    (0 clean, 1 problems).  Raises :class:`~iso15118.capture.pcapio.CaptureFormatError` when the
    file is not a capture.  ``progress(decoder)``, when given, returns a context manager and a
    callback ``(done, total)`` (the single-capture CLI shows a bar)."""
    from rich.console import Console

    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.render import JsonLinesRenderer, JsonRenderer, TimelineRenderer, XmlRenderer
    from iso15118.capture.summary import SummaryBuilder

    dec = CaptureDecoder(path, keylog=keylog, decode=opts.decode, cache_size=4096 if opts.cache else 0)
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    color = {"always": True, "never": False}.get(opts.color, is_tty)
    console = Console(file=out, force_terminal=color if opts.color != "auto" else None,
                      no_color=not color, highlight=False, soft_wrap=True, markup=False,
                      width=None if is_tty else 160)
    summary_builder = SummaryBuilder() if opts.summary else None
    fmt = opts.format
    renderer: Any
    if fmt == "json":
        renderer = JsonRenderer(out, path)
    elif fmt == "jsonl":
        renderer = JsonLinesRenderer(out, path)
    elif fmt == "xml":
        renderer = XmlRenderer(out, path)
    else:
        renderer = TimelineRenderer(console, absolute_time=opts.absolute_time)
    show_events = not (fmt == "text" and opts.summary and not opts.timeline)

    patterns = [m.lower() for m in opts.message]
    sess_filter = SessionFilter(opts.session) if opts.session else None

    def wanted_name(ev: Any) -> bool:
        if not patterns:
            return True
        name = ev.name.lower()
        return any(fnmatch.fnmatchcase(name, p) or name == p for p in patterns)

    problems = 0
    bar: Any = None
    on_progress = None
    if progress is not None:
        bar, on_progress = progress(dec)
    renderer.begin()
    try:
        for ev in dec.events(progress=on_progress):
            if is_problem(ev):
                problems += 1
            if summary_builder is not None:
                summary_builder.add(ev)
            if not show_events:
                continue
            if opts.no_slac and ev.kind == "slac":
                continue
            batch = sess_filter(ev) if sess_filter is not None else [ev]
            for e in batch:
                if wanted_name(e):
                    renderer.event(e)
    finally:
        if bar is not None:
            bar.stop()
    summary = summary_builder.result(dec.stats) if summary_builder is not None else None
    renderer.end(summary)
    return EXIT_PROBLEMS if problems else EXIT_OK


def terminal_progress(out: IO[str], fmt: str, mode: str) -> Callable[[Any], Any] | None:
    """The progress-bar hook of :func:`render_capture` for a terminal (None when not wanted)."""
    if mode == "never":
        return None

    def make(dec: Any) -> tuple[Any, Any]:
        if not (mode == "always" or (sys.stdout.isatty() and dec.reader.size >= PROGRESS_MIN_BYTES)):
            return None, None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        is_tty = bool(getattr(out, "isatty", lambda: False)())
        console = Console(file=out) if (is_tty and fmt == "text") else Console(stderr=True)
        bar = Progress(TextColumn("decoding"), BarColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                       console=console, transient=True)
        bar.start()
        task = bar.add_task("decode", total=dec.reader.size)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        return bar, on_progress

    return make
