"""Many captures: expand files / directories / globs, decode each capture as one job, on one
core, on a pool of worker processes (``--workers N``) or on a Dask cluster (``--scheduler``).

Each job decodes one capture with :func:`iso15118.capture.job.render_capture` (text / JSON /
JSON Lines / XML) or :class:`iso15118.capture.dataset.DatasetBuilder` (Parquet), exactly as a
one-capture run does, and the results are written in input order whatever finishes first: the
output does not depend on the number of workers.

Memory stays flat: a job holds one capture's state; a local worker writes its output (text, or
the capture's Arrow tables) to a spool file that the parent reads in turn and deletes; pool workers (started from a fork server) are replaced after
``MAX_TASKS_PER_CHILD`` captures (nothing a long run leaks can pile up); the Dask path keeps at
most a few jobs per worker in flight.

Dask workers read the captures by the paths given (a shared file system), and send the output
back in memory: the command writes it.
"""

from __future__ import annotations

import glob
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from iso15118.capture.job import (
    EXIT_NOT_A_CAPTURE,
    EXIT_OK,
    EXIT_PROBLEMS,
    DecodeOptions,
    is_problem,
    load_keylog,
    render_capture,
)

__all__ = [
    "CAPTURE_SUFFIXES",
    "Job",
    "JobResult",
    "expand_inputs",
    "run_job",
    "run_local",
    "run_dask",
    "MAX_TASKS_PER_CHILD",
]

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
MAX_TASKS_PER_CHILD = 16
"""Captures a pool worker decodes before a fresh process replaces it."""


def _is_capture_name(name: str) -> bool:
    return name.lower().endswith(CAPTURE_SUFFIXES)


def expand_inputs(specs: Iterable[str]) -> tuple[list[str], list[str]]:
    """(captures, directories and globs that matched nothing).

    A file named explicitly is always read (a missing one too: decoding reports it); a directory is searched recursively and a glob
    (``*``, ``?``, ``[...]``, ``**``) expanded, both keeping files whose names end in
    :data:`CAPTURE_SUFFIXES`.  Each expansion is sorted; duplicates are dropped (first kept)."""
    out: list[str] = []
    seen: set[str] = set()
    missing: list[str] = []

    def add(p: str) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    def walk(d: str) -> list[str]:
        found: list[str] = []
        for root, dirs, files in os.walk(d):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in files if _is_capture_name(f))
        return sorted(found)

    for spec in specs:
        found: list[str]
        if os.path.isdir(spec):
            found = walk(spec)
        elif not glob.has_magic(spec):
            found = [spec]  # a file (a missing one is reported by the decoder: status 3)
        else:
            found = []
            for m in sorted(glob.glob(spec, recursive=True)):
                if os.path.isdir(m):
                    found.extend(walk(m))
                elif _is_capture_name(m):
                    found.append(m)
        if not found:
            missing.append(spec)
        for p in found:
            add(p)
    return out, missing


@dataclass(frozen=True)
class Job:
    index: int
    path: str
    opts: DecodeOptions
    spool: str | None = None
    """Local runs: a directory for the output (the parent reads and deletes it); None: in memory."""


@dataclass
class JobResult:
    index: int
    path: str
    status: int
    error: str | None = None
    """The one-line reason a capture could not be read (status 3) or its key log could not be."""
    text: str | None = None
    spool_file: str | None = None
    tables: dict[str, Any] = field(default_factory=dict)
    """Parquet: ``{table: pyarrow.Table}`` (in memory), or ``{table: Arrow IPC file}`` in the spool."""
    messages: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_kb: int = 0
    pid: int = 0


def run_job(job: Job) -> JobResult:
    """Decode one capture (in whatever process runs this).  Never raises for a bad capture."""
    from iso15118.capture.pcapio import CaptureFormatError

    t, c = time.perf_counter(), time.process_time()
    res = JobResult(job.index, job.path, EXIT_OK, pid=os.getpid())
    try:
        keylog = load_keylog(job.opts.keylog)
    except OSError as exc:
        res.status, res.error = 2, f"cannot read key log {job.opts.keylog}: {exc.strerror or exc}"
        return res
    try:
        if job.opts.format == "parquet":
            _dataset_job(job, keylog, res)
        else:
            _render_job(job, keylog, res)
    except CaptureFormatError as exc:
        res.status, res.error = EXIT_NOT_A_CAPTURE, str(exc)
        if job.opts.format == "parquet":
            from iso15118.capture.dataset import capture_row, to_table

            res.tables = {"captures": to_table("captures", [capture_row(job.path, res.status, res.error, None, None, None)])}
    except OSError as exc:  # unreadable file: the same as a one-capture run reports it
        res.status, res.error = EXIT_NOT_A_CAPTURE, f"{job.path}: {exc.strerror or exc}"
    res.seconds = time.perf_counter() - t
    res.cpu_seconds = time.process_time() - c
    res.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return res


def _render_job(job: Job, keylog: Any, res: JobResult) -> None:
    import io

    if job.spool is not None:
        fd, name = tempfile.mkstemp(prefix=f"{job.index:06d}-", suffix=".out", dir=job.spool)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                res.status = render_capture(job.path, job.opts, f, keylog=keylog)
        except BaseException:
            os.unlink(name)
            raise
        res.spool_file = name
    else:
        buf = io.StringIO()
        res.status = render_capture(job.path, job.opts, buf, keylog=keylog)
        res.text = buf.getvalue()


def _dataset_job(job: Job, keylog: Any, res: JobResult) -> None:
    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.dataset import DatasetBuilder, capture_row, to_table

    opts = job.opts
    dec = CaptureDecoder(job.path, keylog=keylog, decode=opts.decode, cache_size=4096 if opts.cache else 0)
    builder = DatasetBuilder(job.path)
    problems = 0
    first = last = None
    for ev in dec.events():
        if is_problem(ev):
            problems += 1
        if first is None:
            first = ev.ts
        last = ev.ts
        builder.add(ev)
    res.status = EXIT_PROBLEMS if problems else EXIT_OK
    res.messages = dec.stats.v2g_messages
    tables = builder.tables(dec.stats)
    tables["captures"] = to_table("captures", [capture_row(job.path, res.status, None, dec.stats, first, last)])
    res.tables = _spool_tables(job, tables) if job.spool is not None else tables


def _spool_tables(job: Job, tables: dict[str, Any]) -> dict[str, Any]:
    """Write the tables to Arrow IPC files in the spool: the parent reads them when their turn
    comes, so captures that finish early do not wait in its memory."""
    import pyarrow as pa

    assert job.spool is not None
    out = {}
    for name, table in tables.items():
        path = os.path.join(job.spool, f"{job.index:06d}-{name}.arrow")
        with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        out[name] = path
    return out


def _load_tables(tables: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa

    out = {}
    for name, t in tables.items():
        if isinstance(t, str):
            with pa.memory_map(t) as src:
                out[name] = pa.ipc.open_file(src).read_all()
            os.unlink(t)
        else:
            out[name] = t
    return out


# --------------------------------------------------------------------------------------------
# Runners: each yields the results in job order.


_PRELOAD = ["iso15118.cli", "iso15118.capture.batch", "iso15118.capture.dataset", "iso15118.capture.render"]
"""Imported once in the fork server, so that a fresh worker starts in milliseconds (the command's
own main module, which a new worker runs again, then finds them loaded)."""


def _executor(workers: int, max_tasks_per_child: int) -> Any:
    """A process pool whose workers are replaced after ``max_tasks_per_child`` captures, started
    from a fork server (a clean process, no thread of pyarrow or rich in it), else spawned.  A
    worker that dies (killed, out of memory) breaks the pool: the run stops with an error instead
    of waiting for a result that never comes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx: Any
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
    else:
        ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx, max_tasks_per_child=max_tasks_per_child)


def run_local(paths: list[str], opts: DecodeOptions, workers: int,
              max_tasks_per_child: int = MAX_TASKS_PER_CHILD) -> Iterator[JobResult]:
    """Decode ``paths`` on ``workers`` processes (1: in this process); results in input order."""
    spool = tempfile.mkdtemp(prefix="iso15118-decode-")
    jobs = [Job(i, p, opts, spool) for i, p in enumerate(paths)]
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield run_job(job)
            return
        from concurrent.futures.process import BrokenProcessPool

        with _executor(min(workers, len(jobs)), max_tasks_per_child) as pool:
            try:
                yield from pool.map(run_job, jobs)
            except BrokenProcessPool:
                raise RuntimeError("a worker process died (killed, or out of memory?): the run stopped") from None
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def run_dask(paths: list[str], opts: DecodeOptions, scheduler: str, *,
             in_flight_per_worker: int = 2, on_client: Callable[[Any], None] | None = None) -> Iterator[JobResult]:
    """Decode ``paths`` on the Dask cluster at ``scheduler`` (``tcp://HOST:PORT``); results in
    input order.  Outputs come back in memory (the workers need not share a file system); at
    most ``in_flight_per_worker`` jobs per worker are submitted at a time."""
    from distributed import Client

    with Client(scheduler, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        if on_client is not None:
            on_client(client)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = max(2, n_workers * in_flight_per_worker)
        jobs = deque(Job(i, p, opts, None) for i, p in enumerate(paths))
        run_id = uuid.uuid4().hex[:12]  # keys unique to this run: never a result of an earlier one
        pending: deque[Any] = deque()
        while jobs or pending:
            while jobs and len(pending) < window:
                job = jobs.popleft()
                pending.append(client.submit(run_job, job, pure=False, key=f"iso15118-decode-{run_id}-{job.index}"))
            fut = pending.popleft()
            result: JobResult = fut.result()
            fut.release()
            yield result


def write_results(results: Iterable[JobResult], out: IO[str], opts: DecodeOptions, several: bool,
                  on_error: Callable[[JobResult], None]) -> int:
    """Stream text results to ``out`` in order; returns the combined exit status."""
    worst = EXIT_OK
    for r in results:
        if r.error is not None:
            on_error(r)
        else:
            if several and opts.format == "text":
                out.write(f"=== {r.path}\n")
            if r.spool_file is not None:
                with open(r.spool_file, encoding="utf-8") as f:
                    shutil.copyfileobj(f, out)
                os.unlink(r.spool_file)
            elif r.text is not None:
                out.write(r.text)
        worst = combine_status(worst, r.status)
    return worst


def write_dataset(results: Iterable[JobResult], directory: str, on_error: Callable[[JobResult], None]) -> tuple[int, dict[str, int]]:
    """Append each capture's tables to the dataset in ``directory``; (exit status, rows per table)."""
    from iso15118.capture.dataset import DatasetWriter

    worst = EXIT_OK
    with DatasetWriter(directory) as w:
        for r in results:
            if r.error is not None:
                on_error(r)
            w.write(_load_tables(r.tables))
            worst = combine_status(worst, r.status)
        rows = dict(w.rows)
    return worst, rows


def combine_status(a: int, b: int) -> int:
    """The exit status of several captures: the worst (3 not a capture > 2 > 1 problems > 0)."""
    return max(a, b)
