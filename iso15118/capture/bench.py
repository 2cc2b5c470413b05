"""Decoder benchmark: ``bench(path, repeat) -> dict``.

Builds a large capture by repeating a real session ``repeat`` times (each repetition shifted in
time and given its own EV-side TCP port, so it is a new connection), writes it to a temporary
file, then decodes it in a child process and reports V2G messages per second, frames per second,
MB/s and the child's peak resident memory.  The same is done for a capture a quarter the size:
similar peak memory for both shows memory is flat in the capture size.

Not a test: ``tools/bench`` calls it.  Speed is measured, never asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from iso15118.capture.pcapio import open_capture
from iso15118.capture.pcapwriter import PcapWriter

__all__ = ["bench", "bench_fleet", "build_repeated_capture", "DEFAULT_SOURCE"]

DEFAULT_SOURCE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "captures"
    / "Mercedes-Benz_EQE_2023-04-18T15-18-18.778Z-1_config-dc-dinspec.pcap"
)


def _tcp_ports_at(frame: bytes) -> int | None:
    """Offset of the TCP header in an Ethernet / IPv6 or IPv4 frame, else None."""
    if len(frame) < 14:
        return None
    etype = frame[12:14]
    if etype == b"\x86\xdd" and len(frame) >= 58 and frame[20] == 6:
        return 54
    if etype == b"\x08\x00" and len(frame) >= 38 and frame[23] == 6:
        return 14 + (frame[14] & 0x0F) * 4
    return None


def build_repeated_capture(source: str | os.PathLike[str], repeat: int, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``repeat`` copies of ``source`` (an Ethernet capture) one after the other."""
    recs = [(r.ts, r.data) for r in open_capture(source)]
    if not recs:
        raise ValueError(f"{source}: no records")
    # Server ports: senders of SYN+ACK.  Every other TCP port is an EV-side port and gets a new
    # value in each repetition, so each copy is a new connection.
    servers: set[int] = set()
    for _ts, d in recs:
        off = _tcp_ports_at(d)
        if off is not None and d[off + 13] & 0x12 == 0x12:
            servers.add(struct.unpack_from(">H", d, off)[0])
    span = recs[-1][0] - recs[0][0] + 1.0
    frames = 0
    client_port = None
    with PcapWriter(out) as w:
        for r in range(repeat):
            shift = r * span
            for ts, d in recs:
                off = _tcp_ports_at(d)
                if off is not None and servers:
                    sport, dport = struct.unpack_from(">HH", d, off)
                    b = bytearray(d)
                    for pos, port in ((off, sport), (off + 2, dport)):
                        if port not in servers:
                            client_port = client_port or port
                            struct.pack_into(">H", b, pos, 1024 + (port + r * 7919) % 64000)
                    d = bytes(b)
                w.write(ts + shift, d)
                frames += 1
    return {"frames": frames, "bytes": os.path.getsize(out), "client_port": client_port}


_CHILD = r"""
import json, resource, sys, time
from iso15118.capture.analyzer import CaptureDecoder
path, decode, cache, fields = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4] == "1"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if decode:
    from iso15118.capture.decode import decode_payload  # warm the grammars outside the timing
    try:
        from iso15118.exi.codec import get_codec
        for k in ("sap", "din", "iso2"):
            get_codec(k)
    except Exception:
        pass
warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
c = time.process_time()
dec = CaptureDecoder(path, decode=decode, cache_size=cache)
n = 0
for ev in dec.events():
    n += 1
    if fields:  # what the timeline and the JSON show of each event
        ev.fields
dt = time.perf_counter() - t
cpu = time.process_time() - c
s = dec.stats
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "events": n, "frames": s.frames, "messages": s.v2g_messages,
                  "decode_errors": s.decode_errors, "cache_hits": s.cache_hits, "cache_misses": s.cache_misses,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rss_after_imports_kb": warm, "rss_at_start_kb": base}))
"""


def _decode_in_child(path: str, decode: bool, cache_size: int, runs: int = 1, *, fields: bool = False,
                     code: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Decode in a fresh interpreter ``runs`` times; the fastest run (the machine may be shared),
    with every run's seconds and the highest peak RSS.  ``fields``: also form each event's fields,
    as the timeline and the JSON do; ``code``: a directory holding another ``iso15118`` package
    to run instead of this one (an earlier version, for a same-run comparison)."""
    env = None
    if code is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
    results = []
    for _ in range(max(1, runs)):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, path, "1" if decode else "0", str(cache_size), "1" if fields else "0"],
            capture_output=True, text=True, check=True, env=env,
            cwd=code,  # ``python -c`` puts the working directory first on sys.path
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(results, key=lambda r: r["seconds"])
    best = dict(best)
    best["all_seconds"] = [round(r["seconds"], 3) for r in results]
    best["peak_rss_kb"] = max(r["peak_rss_kb"] for r in results)
    return best


def bench(
    path: str | os.PathLike[str] | None = None,
    repeat: int = 200,
    *,
    decode: bool = True,
    cache: bool = True,
    keep: bool = False,
    runs: int = 3,
    fields: bool = False,
    code: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build a capture of ``repeat`` copies of the session in ``path`` (default: a real DIN DC
    session from the fixtures) and measure decoding it.  ``cache=False`` disables the decode memo
    (every payload goes through the EXI decoder); ``decode=False`` measures reading, reassembly
    and framing only; ``fields=True`` also forms every event's fields (the key fields a timeline
    line or a JSON event shows: the decoder forms them when first asked for).  ``code``: decode
    with the ``iso15118`` package in that directory instead (see :func:`_decode_in_child`).  The
    big capture is decoded ``runs`` times (fastest reported: the machine may be busy).  Returns
    the measurements as a dict."""
    source = Path(path) if path is not None else DEFAULT_SOURCE
    tmpdir = Path(tempfile.mkdtemp(prefix="iso15118-capture-bench-"))
    big = tmpdir / "repeated.pcap"
    small = tmpdir / "repeated-quarter.pcap"
    t = time.perf_counter()
    built = build_repeated_capture(source, repeat, big)
    build_s = time.perf_counter() - t
    build_repeated_capture(source, max(1, repeat // 4), small)
    cache_size = 4096 if cache else 0
    run = _decode_in_child(str(big), decode, cache_size, runs, fields=fields, code=code)
    run_small = _decode_in_child(str(small), decode, cache_size, fields=fields, code=code)
    secs = run["seconds"]
    result = {
        "source": str(source),
        "repeat": repeat,
        "decode": decode,
        "cache": cache,
        "fields": fields,
        "capture_mb": round(built["bytes"] / 1e6, 2),
        "frames": run["frames"],
        "messages": run["messages"],
        "decode_errors": run["decode_errors"],
        "seconds": round(secs, 3),
        "all_runs_seconds": run["all_seconds"],
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpu_seconds": round(run["cpu_seconds"], 3),
        "messages_per_s": round(run["messages"] / secs) if secs else None,
        "messages_per_cpu_s": round(run["messages"] / run["cpu_seconds"]) if run["cpu_seconds"] else None,
        "frames_per_s": round(run["frames"] / secs) if secs else None,
        "mb_per_s": round(built["bytes"] / 1e6 / secs, 2) if secs else None,
        "peak_rss_mb": round(run["peak_rss_kb"] / 1024, 1),
        "rss_after_imports_mb": round(run["rss_after_imports_kb"] / 1024, 1),
        "peak_rss_mb_quarter_capture": round(run_small["peak_rss_kb"] / 1024, 1),
        "cache_hits": run["cache_hits"],
        "cache_misses": run["cache_misses"],
        "build_seconds": round(build_s, 3),
    }
    if keep:
        result["capture_path"] = str(big)
    else:
        for p in (big, small):
            p.unlink(missing_ok=True)
        tmpdir.rmdir()
    return result


_FLEET_CHILD = r"""
import json, os, resource, sys, time
from iso15118.capture.batch import expand_inputs, run_local, write_dataset, write_results
from iso15118.capture.job import DecodeOptions
directory, fmt, workers, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
paths, _ = expand_inputs([directory])
opts = DecodeOptions(format=fmt, cache=False)
jobs = []
def results():
    for r in run_local(paths, opts, workers):
        jobs.append((r.pid, r.cpu_seconds, r.peak_rss_kb))
        yield r
t = time.perf_counter()
if fmt == "parquet":
    write_dataset(results(), out, print)
else:
    with open(out, "w", encoding="utf-8") as f:
        write_results(results(), f, opts, True, print)
dt = time.perf_counter() - t
me = resource.getrusage(resource.RUSAGE_SELF)
own = os.getpid()
print(json.dumps({"seconds": dt, "parent_cpu_seconds": me.ru_utime + me.ru_stime,
                  "worker_cpu_seconds": sum(c for p, c, _ in jobs if p != own),
                  "workers_used": len({p for p, _, _ in jobs}),
                  "parent_peak_rss_kb": me.ru_maxrss,
                  "worker_peak_rss_kb": max([r for p, _, r in jobs if p != own], default=0)}))
"""


def _fleet_run(directory: Path, fmt: str, workers: int, out: Path) -> dict[str, Any]:
    """``decode DIRECTORY --no-cache --workers N --format FMT -o OUT`` through the same library
    calls as the command (``batch.run_local`` + the writers), in a fresh interpreter; the workers'
    CPU time and peak RSS come from their job results (fork-server workers are not our children)."""
    proc = subprocess.run([sys.executable, "-c", _FLEET_CHILD, str(directory), fmt, str(workers), str(out)],
                          capture_output=True, text=True, check=False)
    if not proc.stdout.strip():
        raise RuntimeError(proc.stderr[-2000:])
    r = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    r["cpu_seconds"] = r["parent_cpu_seconds"] + r["worker_cpu_seconds"]
    return r


def _dataset_cost(path: Path) -> int:
    """Messages per CPU second of building the dataset's rows and Arrow tables alone, from events
    decoded beforehand (the fleet path's own cost, without the codec's)."""
    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.dataset import DatasetBuilder

    best = None
    messages = 0
    for _ in range(3):
        # decoded afresh each time: the leaf values are formed when the builder first reads them
        dec = CaptureDecoder(path, cache_size=0)
        events = list(dec.events())
        messages = dec.stats.v2g_messages
        c = time.process_time()
        b = DatasetBuilder(str(path))
        for ev in events:
            b.add(ev)
        b.tables(dec.stats)
        cpu = time.process_time() - c
        best = cpu if best is None else min(best, cpu)
    return round(messages / best) if best else 0


def bench_fleet(path: str | os.PathLike[str] | None = None, repeat: int = 100, files: int = 8,
                workers: tuple[int, ...] = (1, 2), runs: int = 2) -> dict[str, Any]:
    """Many captures, many cores: ``files`` copies of a capture of ``repeat`` sessions, decoded
    with the payload memo off as ``iso15118 decode DIR --no-cache --workers N`` does it (its
    library calls) with each worker count, to the Parquet dataset and to JSON Lines; plus the same number of messages through the bare decoder
    (no output) in one process.  Messages per second of wall time (fastest of ``runs``) and per
    CPU second (parent and workers: the per-core rate, which a busy machine distorts less), the
    speed-up of N workers over one, and peak RSS of the parent and of the largest worker (with ``files`` and
    with ``4 * files`` captures: equal peaks mean memory is flat in the number of captures)."""
    source = Path(path) if path is not None else DEFAULT_SOURCE
    tmp = Path(tempfile.mkdtemp(prefix="iso15118-fleet-bench-"))
    try:
        one = tmp / "one.pcap"
        build_repeated_capture(source, repeat, one)
        many = tmp / "captures"
        many.mkdir()
        for i in range(files):
            os.link(one, many / f"c{i:03d}.pcap")
        bare = _decode_in_child(str(one), True, 0, runs)
        rows = _dataset_cost(one)
        msgs_per_file = bare["messages"]
        total = msgs_per_file * files
        out: dict[str, Any] = {
            "source": str(source), "repeat": repeat, "files": files, "messages": total, "cache": False,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "bare_decoder_messages_per_s": round(msgs_per_file / bare["seconds"]),
            "bare_decoder_messages_per_cpu_s": round(msgs_per_file / bare["cpu_seconds"]),
            "dataset_rows_only_messages_per_cpu_s": rows,
        }
        for fmt in ("parquet", "jsonl"):
            for n in workers:
                best: dict[str, Any] | None = None
                for _ in range(max(1, runs)):
                    dest = tmp / f"out-{fmt}-{n}"
                    r = _fleet_run(many, fmt, n, dest)
                    if best is None or r["seconds"] < best["seconds"]:
                        best = r
                    if dest.is_dir():
                        shutil.rmtree(dest)
                    else:
                        dest.unlink(missing_ok=True)
                assert best is not None
                # the decoding processes' own CPU time: the workers', or the parent's when it decodes alone
                decoding_cpu = best["worker_cpu_seconds"] if best["workers_used"] > 1 else best["cpu_seconds"]
                out[f"{fmt}_workers_{n}"] = {
                    "seconds": round(best["seconds"], 3),
                    "messages_per_s": round(total / best["seconds"]),
                    "cpu_seconds": round(best["cpu_seconds"], 3),
                    "messages_per_cpu_s": round(total / best["cpu_seconds"]),
                    "workers_used": best["workers_used"],
                    # CPU seconds per wall second: the cores the run got (the ceiling of its speed-up)
                    "cores_busy": round(best["cpu_seconds"] / best["seconds"], 2),
                    "messages_per_worker_cpu_s": round(total / decoding_cpu) if decoding_cpu else None,
                    "parent_cpu_seconds": round(best["parent_cpu_seconds"], 3),
                    "parent_peak_rss_mb": round(best["parent_peak_rss_kb"] / 1024, 1),
                    "worker_peak_rss_mb": round(best["worker_peak_rss_kb"] / 1024, 1),
                }
            if len(workers) > 1:
                a, b = out[f"{fmt}_workers_{workers[0]}"], out[f"{fmt}_workers_{workers[-1]}"]
                out[f"{fmt}_speedup_{workers[-1]}_over_{workers[0]}"] = round(a["seconds"] / b["seconds"], 2)
        # memory flat in the number of captures: 4x the files
        for i in range(files, 4 * files):
            os.link(one, many / f"c{i:03d}.pcap")
        r = _fleet_run(many, "parquet", max(workers), tmp / "out-4x")
        out[f"parquet_workers_{max(workers)}_4x_files"] = {
            "files": 4 * files, "seconds": round(r["seconds"], 3), "messages_per_s": round(4 * total / r["seconds"]),
            "parent_peak_rss_mb": round(r["parent_peak_rss_kb"] / 1024, 1),
            "worker_peak_rss_mb": round(r["worker_peak_rss_kb"] / 1024, 1),
        }
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", nargs="?")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps(bench(a.capture, a.repeat, decode=not a.no_decode, cache=not a.no_cache, runs=a.runs),
                     indent=2))
