"""``iso15118 decode CAPTURE... [options]``: decode pcap / pcapng captures of charging sessions;
``iso15118 query DIR SQL`` and ``iso15118 report DIR`` over the Parquet dataset it writes.

``decode`` takes files, directories (searched recursively) and globs; ``--workers N`` decodes on N
processes and ``--scheduler tcp://HOST:PORT`` on a Dask cluster, the output in input order and
the same whatever runs it (:mod:`iso15118.capture.batch`).  ``--format parquet -o DIR`` writes
the dataset (:mod:`iso15118.capture.dataset`, docs/dataset.md).

Exit status of ``decode`` (several captures: the worst of them):

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
import glob
import os
import sys
from typing import Any

__all__ = ["register", "run", "run_query", "run_report", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "EXIT_NOT_A_CAPTURE"]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOT_A_CAPTURE = 3


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
    p.add_argument("capture", metavar="CAPTURE", nargs="+",
                   help="pcap / pcapng files, directories (searched recursively for *.pcap, *.pcapng, *.cap, "
                        "*.pcap.gz, *.pcapng.gz) or globs ('captures/**/*.pcap')")
    p.add_argument("--format", choices=("text", "json", "jsonl", "xml", "parquet"), default="text",
                   help="output format (default: coloured timeline); parquet: a dataset directory (-o DIR), "
                        "see docs/dataset.md. Several captures: each capture's output in input order "
                        "(json: one document per capture; text: a '=== CAPTURE' line before each)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="decode N captures at a time in worker processes (default 1)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="decode on the Dask distributed cluster with this scheduler (needs dask[distributed])")
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
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of stdout (parquet: the dataset directory)")
    p.set_defaults(func=run)

    q = subparsers.add_parser(
        "query",
        help="run SQL (DuckDB) over a capture dataset",
        description="Run one SQL statement with DuckDB over a dataset written by 'decode --format parquet'; "
                    "its tables are views named captures, messages, sessions, events (docs/dataset.md).",
        epilog="Example: iso15118 query ds \"SELECT name, quantile_cont(response_time_s, 0.95) FROM messages "
               "WHERE response_time_s IS NOT NULL GROUP BY name\"",
    )
    q.add_argument("dataset", metavar="DIR", help="dataset directory")
    q.add_argument("sql", metavar="SQL", help="the statement")
    q.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: a table)")
    q.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    q.set_defaults(func=run_query)

    r = subparsers.add_parser(
        "report",
        help="draw the fleet view of a capture dataset (self-contained HTML)",
        description="Response-time distributions per message and charger, failure codes per vehicle, SOC and "
                    "power curves, timing violations: one HTML file with inline SVG (no network).",
    )
    r.add_argument("dataset", metavar="DIR", help="dataset directory (decode --format parquet)")
    r.add_argument("-o", "--output", metavar="FILE", default="fleet.html", help="HTML file (default fleet.html)")
    r.set_defaults(func=run_report)


_FLEET_HINT = "needs the fleet extra: pip install 'iso15118-bpt[fleet]'"


def _installed(name: str) -> bool:
    try:
        if name == "pyarrow":
            import pyarrow  # noqa: F401
        elif name == "duckdb":
            import duckdb  # noqa: F401
        elif name == "distributed":
            import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _missing(err: Any, modules: tuple[str, ...]) -> bool:
    """True (after one line on stderr) when a fleet dependency is not installed."""
    gone = [m for m in modules if not _installed(m)]
    if gone:
        err.print(f"[red]{', '.join(gone)} not installed: this {_FLEET_HINT}[/red]")
    return bool(gone)


def _options(args: argparse.Namespace) -> Any:
    from iso15118.capture.job import DecodeOptions

    return DecodeOptions(
        format=args.format, summary=args.summary, timeline=args.timeline, message=tuple(args.message or ()),
        session=args.session, keylog=args.keylog, decode=not args.no_decode, cache=not args.no_cache,
        no_slac=args.no_slac, absolute_time=args.absolute_time, color=args.color,
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    err = Console(stderr=True, soft_wrap=True, highlight=False)
    if args.workers < 1:
        err.print("[red]--workers must be at least 1[/red]")
        return EXIT_USAGE
    if args.format == "parquet" and not args.output:
        err.print("[red]--format parquet needs -o DIR (the dataset directory)[/red]")
        return EXIT_USAGE
    if args.format == "parquet" and (args.message or args.session or args.no_slac):
        err.print("[red]--message, --session and --no-slac do not apply to --format parquet: the dataset holds every "
                  "event (select with 'iso15118 query')[/red]")
        return EXIT_USAGE
    if (args.format == "parquet" and _missing(err, ("pyarrow",))) or (args.scheduler and _missing(err, ("distributed",))):
        return EXIT_USAGE
    if args.keylog:
        from iso15118.capture.job import load_keylog

        try:
            keylog = load_keylog(args.keylog)
        except OSError as exc:
            err.print(f"[red]cannot read key log {args.keylog}: {exc.strerror or exc}[/red]")
            return EXIT_USAGE
        if not len(keylog):
            err.print(f"[yellow]key log {args.keylog} holds no secrets[/yellow]")
    one = args.capture[0]
    single = (len(args.capture) == 1 and not os.path.isdir(one) and not glob.has_magic(one) and args.workers == 1
              and not args.scheduler and args.format != "parquet")
    if single:
        return _run_one(args, err)
    return _run_many(args, err)


def _run_one(args: argparse.Namespace, err: Any) -> int:
    """One capture, streamed to the output as it is decoded (with a progress bar on a terminal)."""
    from iso15118.capture.job import load_keylog, render_capture, terminal_progress
    from iso15118.capture.pcapio import CaptureFormatError

    path = args.capture[0]
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        return render_capture(path, _options(args), out, keylog=load_keylog(args.keylog),
                              progress=terminal_progress(out, args.format, args.progress))
    except CaptureFormatError as exc:
        err.print(f"[red]{exc}[/red]")
        return EXIT_NOT_A_CAPTURE
    finally:
        if args.output:
            out.close()


def _run_many(args: argparse.Namespace, err: Any) -> int:
    from iso15118.capture.batch import combine_status, expand_inputs, run_dask, run_local, write_dataset, write_results

    paths, missing = expand_inputs(args.capture)
    status = EXIT_OK
    for spec in missing:
        err.print(f"[red]{spec}: no capture there[/red]")
        status = EXIT_USAGE
    if not paths:
        return status or EXIT_USAGE
    opts = _options(args)

    def on_error(r: Any) -> None:
        err.print(f"[red]{r.error}[/red]")

    results = run_dask(paths, opts, args.scheduler) if args.scheduler else run_local(paths, opts, args.workers)
    if args.format == "parquet":
        st, rows = write_dataset(results, args.output, on_error)
        err.print(f"{len(paths)} captures -> {args.output}: " + ", ".join(f"{t} {n}" for t, n in rows.items()) + " rows")
        return combine_status(status, st)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        return combine_status(status, write_results(results, out, opts, len(paths) > 1, on_error))
    finally:
        if args.output:
            out.close()


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, highlight=False)


def run_query(args: argparse.Namespace) -> int:
    if _missing(_stderr(), ("duckdb",)):
        return EXIT_USAGE
    from iso15118.capture.query import QueryError, connect, write_result

    try:
        con = connect(args.dataset)
    except QueryError as exc:
        print(f"iso15118 query: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        cols, rows = con.run(args.sql)
    except QueryError as exc:
        print(f"iso15118 query: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        write_result(cols, rows, args.format, out)
    finally:
        if args.output:
            out.close()
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    if _missing(_stderr(), ("duckdb",)):
        return EXIT_USAGE
    from iso15118.capture.fleetreport import fleet_html
    from iso15118.capture.query import QueryError, connect

    try:
        con = connect(args.dataset)
    except QueryError as exc:
        print(f"iso15118 report: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    html = fleet_html(con)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(html)
    print(f"wrote {args.output} ({len(html) // 1024} KiB)", file=sys.stderr)
    return EXIT_OK


