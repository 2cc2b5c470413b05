"""Benchmarks: speed is measured here, never asserted in tests.

    tools/bench                      # every section that is available
    tools/bench --only codec         # one section: codec, typed, security, capture, session, fleet
    tools/bench --peer               # also time Josev's codec (tools/peer/josev exi bench) and print the ratio

Numbers are medians of warm runs in one process on this machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_MESSAGES = ROOT / "fixtures" / "peer" / "bench_messages.jsonl"  # recorded from Josev (see its README)
PEER_TOOLS = ROOT / "tools" / "peer"

# (message name, preferred recording) of the fixed benchmark set
BENCH_SET = [
    ("supportedAppProtocolReq", "dc_bpt_sched"),
    ("SessionSetupReq", "dc_bpt_sched"),
    ("ServiceDiscoveryRes", "dc_bpt_sched"),
    ("DC_ChargeParameterDiscoveryReq", "dc_bpt_sched"),
    ("DC_ChargeLoopReq", "dc_bpt_sched"),
    ("AC_ChargeLoopRes", "ac_bpt_dyn"),
]


def bench_messages(which: str = "small") -> list[dict]:
    """The benchmark set: ``small`` (BENCH_SET below) or ``all`` (every message of the peer's set,
    -20, -2 and DIN)."""
    path = BENCH_MESSAGES
    msgs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if which == "all":
        return msgs
    chosen = []
    for name, pref in BENCH_SET:
        cands = [m for m in msgs if m["name"] == name]
        best = [m for m in cands if m["from"] == pref] or cands
        if best:
            chosen.append(best[0])
    return chosen


def timeit(fn, n: int) -> float:
    """Median microseconds of CPU time per call over 7 batches of n calls (CPU time, so
    other processes on the machine distort it less than wall time would).  ``n = 0``: as many
    calls as fill about 20 ms per batch."""
    fn()
    if n <= 0:
        t = time.process_time()
        k = 0
        while time.process_time() - t < 0.005:
            fn()
            k += 1
        n = max(5, k * 4)
    samples = []
    for _ in range(7):
        t = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - t) / n * 1e6)
    return statistics.median(samples)


def warm_import_ms(key: str) -> float:
    """Wall time of `import iso15118.exi; codec(key)` in a fresh interpreter, warm: byte code
    and the grammar cache already written by a first run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = ("import time; t = time.perf_counter(); from iso15118.exi import codec; codec(%r); "
            "print((time.perf_counter() - t) * 1000)" % key)
    runs = []
    for _ in range(4):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip()))
    return min(runs[1:])


def section_codec(args: argparse.Namespace) -> dict:
    """Per message of the peer's benchmark set: the generated codec (the default path:
    ``codec(key).encode`` / ``decode`` of element trees), the generic codec (the reference), and
    the typed API (``messages.encode`` / ``decode``, where the schema has typed classes)."""
    import iso15118.messages as M
    from iso15118.exi import codec

    load_ms = {key: warm_import_ms(key) for key in ("sap", "common", "dc")}
    print("codec: warm import + grammar load, fresh process: "
          + ", ".join(f"{k} {v:.0f} ms" for k, v in load_ms.items()))
    rows = []
    print(f"{'message':36} {'bytes':>5} {'enc us':>8} {'dec us':>8} {'gen enc':>8} {'gen dec':>8} "
          f"{'typed enc':>9} {'typed dec':>9}")
    n = args.n if args.set == "small" else 0
    for m in bench_messages(args.set):
        c = codec(m["schema"])
        data = bytes.fromhex(m["exi_hex"])
        tree = c.decode(data)
        assert c.encode(tree) == data
        assert c.decode_generic(data) == tree
        enc = timeit(lambda c=c, tree=tree: c.encode(tree), n)
        dec = timeit(lambda c=c, data=data: c.decode(data), n)
        genc = timeit(lambda c=c, tree=tree: c.encode_generic(tree), n)
        gdec = timeit(lambda c=c, data=data: c.decode_generic(data), n)
        tenc = tdec = None
        try:
            msg = M.decode(data, m["schema"])
        except M.MessageValidationError:
            msg = None  # no typed class for this schema (yet)
        if msg is not None and M.encode(msg) == data:
            key = m["schema"]
            tenc = timeit(lambda msg=msg: M.encode(msg), n)
            tdec = timeit(lambda data=data, key=key: M.decode(data, key), n)
        rows.append({"name": m["name"], "schema": m["schema"], "bytes": len(data), "encode_us": enc, "decode_us": dec,
                     "generic_encode_us": genc, "generic_decode_us": gdec, "typed_encode_us": tenc,
                     "typed_decode_us": tdec})
        ts = (f"{tenc:9.1f} {tdec:9.1f}" if tenc is not None and tdec is not None else f"{'-':>9} {'-':>9}")
        print(f"{m['name'][:36]:36} {len(data):5} {enc:8.1f} {dec:8.1f} {genc:8.1f} {gdec:8.1f} {ts}")
    out = {"load_ms": load_ms, "rows": rows}
    if args.peer:
        out["peer"] = peer_codec(args, rows)
    return out


def peer_codec(args: argparse.Namespace, rows: list[dict]) -> dict:
    setup = subprocess.run([str(PEER_TOOLS / "setup")], cwd=tempfile.gettempdir(), capture_output=True, text=True,
                           timeout=900)
    if setup.returncode != 0:
        why = (setup.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"peer: tools/peer/setup failed: {why}")
        return {"error": why}
    env = dict(os.environ, ISO15118_PEER_HOME=setup.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        msgs = Path(tmp) / "msgs.jsonl"
        msgs.write_text("".join(json.dumps(m) + "\n" for m in bench_messages(args.set)))
        res_path = Path(tmp) / "peer.json"
        cmd = [str(PEER_TOOLS / "josev"), "exi", "bench", "--messages", str(msgs), "--n", str(args.peer_n),
               "--warmup", "5", "--json-out", str(res_path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not res_path.exists():
            print(f"peer: josev exi bench failed: {proc.stderr.strip()[-400:]}")
            return {"error": proc.stderr[-400:]}
        peer = json.loads(res_path.read_text())
    print("\npeer (Josev 0.31.2 codec via JVM), median ms, and our speed-up (same run; ours = the default path,")
    print("element trees; typed = messages.encode / decode):")
    print(f"{'message':36} {'enc ms':>8} {'x':>7} {'dec ms':>8} {'x':>7} {'typed x enc':>11} {'typed x dec':>11}")
    out = []
    for ours, theirs in zip(rows, peer["rows"]):
        assert theirs["name"] == ours["name"], (theirs["name"], ours["name"])
        ex = theirs["enc_median_ms"] * 1000 / ours["encode_us"]
        dx = theirs["dec_median_ms"] * 1000 / ours["decode_us"]
        tex = theirs["enc_median_ms"] * 1000 / ours["typed_encode_us"] if ours["typed_encode_us"] else None
        tdx = theirs["dec_median_ms"] * 1000 / ours["typed_decode_us"] if ours["typed_decode_us"] else None
        out.append({"name": ours["name"], "peer_enc_ms": theirs["enc_median_ms"], "peer_dec_ms": theirs["dec_median_ms"],
                    "speedup_encode": ex, "speedup_decode": dx, "speedup_typed_encode": tex,
                    "speedup_typed_decode": tdx, "peer_reencode_identical": theirs.get("reencode_identical")})
        t = (f"{tex:10.0f}x {tdx:10.0f}x" if tex and tdx else f"{'-':>11} {'-':>11}")
        print(f"{ours['name'][:36]:36} {theirs['enc_median_ms']:8.2f} {ex:6.0f}x {theirs['dec_median_ms']:8.2f} "
              f"{dx:6.0f}x {t}")
    worst = min(out, key=lambda r: min(r["speedup_encode"], r["speedup_decode"]))
    print(f"\nworst: {worst['name']} encode {worst['speedup_encode']:.0f}x, decode {worst['speedup_decode']:.0f}x "
          f"({len(out)} messages)")
    return {"rows": out, "jvm_start_ms": peer.get("jvm_start_ms")}


def section_typed(args: argparse.Namespace) -> dict:
    """Typed API on the small set: ``messages.decode`` (generated typed decoders, the default)
    against ``messages.decode_generic`` (generic codec + ``from_tree``, the reference path)."""
    messages = importlib.import_module("iso15118.messages")
    from iso15118.exi import codec

    rows = []
    print(f"{'typed message':34} {'encode us':>10} {'decode us':>10} {'ref dec us':>10} {'tree dec us':>11}")
    for m in bench_messages(args.set):
        data = bytes.fromhex(m["exi_hex"])
        msg = messages.decode(data, m["schema"])
        assert msg == messages.decode_generic(data, m["schema"])
        assert messages.encode(msg) == data
        key = m["schema"]
        enc = timeit(lambda msg=msg: messages.encode(msg), args.n)
        dec = timeit(lambda data=data, key=key: messages.decode(data, key), args.n)
        ref = timeit(lambda data=data, key=key: messages.decode_generic(data, key), args.n)
        raw = timeit(lambda data=data, key=key: codec(key).decode(data), args.n)
        rows.append({"name": m["name"], "encode_us": enc, "decode_us": dec, "reference_decode_us": ref,
                     "tree_decode_us": raw})
        print(f"{m['name']:34} {enc:10.1f} {dec:10.1f} {ref:10.1f} {raw:11.1f}")
    return {"rows": rows}


def _call(module: str, func: str, **kwargs) -> dict:
    mod = importlib.import_module(module)
    res = getattr(mod, func)(**kwargs)
    print(json.dumps(res, indent=1, default=str))
    return res


def section_security(args: argparse.Namespace) -> dict:
    out = {"tls_and_keys": _call("iso15118.security.bench", "bench")}
    try:
        out["signatures"] = _call("iso15118.security.xmldsig", "bench_signatures")
    except (ImportError, AttributeError) as exc:
        print(f"signatures: not available ({exc})")
    return out


def _baseline_code(rev: str) -> Path:
    """The ``iso15118`` package of git revision ``rev`` of this repository, unpacked in a temporary
    directory (to decode with it in the same run: the speed-up over that revision)."""
    dest = Path(tempfile.mkdtemp(prefix="iso15118-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "iso15118"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def section_capture(args: argparse.Namespace) -> dict:
    mod = importlib.import_module("iso15118.capture.bench")
    caps = sorted((ROOT / "fixtures" / "captures").glob("*.pcap"))
    path = max(caps, key=lambda p: p.stat().st_size) if caps else None
    res = mod.bench(str(path), args.capture_repeat)
    print(json.dumps(res, indent=1, default=str))
    # the payload memo off: every payload goes through the EXI decoder (messages per CPU second
    # is the per-core rate); the generated codec (the default) and the generic one; the events'
    # key fields formed too (as the timeline and the JSON show them); same run
    out = {"memo_on": res}
    runs: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("memo_off", {}, {}),
        ("memo_off_with_key_fields", {}, {"fields": True}),
        ("memo_off_generic_codec", {"ISO15118_EXI_GENERIC": "1"}, {}),
    ]
    baseline = _baseline_code(args.capture_baseline) if args.capture_baseline else None
    if baseline is not None:
        runs.append((f"memo_off_at_{args.capture_baseline}", {}, {"code": baseline}))
    try:
        for label, env, kw in runs:
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                r = mod.bench(str(path), args.capture_repeat, cache=False, **kw)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            out[label] = r
            print(f"{label}: {r['messages']} messages, {r['messages_per_s']} msg/s wall, "
                  f"{r['messages_per_cpu_s']} msg per CPU second, {r['decode_errors']} decode errors")
    finally:
        if baseline is not None:
            shutil.rmtree(baseline, ignore_errors=True)
    if baseline is not None:
        old = out[f"memo_off_at_{args.capture_baseline}"]["messages_per_cpu_s"]
        out["memo_off_speedup_over_baseline"] = round(out["memo_off"]["messages_per_cpu_s"] / old, 2) if old else None
        print(f"memo off, messages per CPU second: {out['memo_off']['messages_per_cpu_s']} here, {old} at "
              f"{args.capture_baseline}: x{out['memo_off_speedup_over_baseline']}")
    return out


def section_fleet(args: argparse.Namespace) -> dict:
    """iso15118 decode DIR --workers 1 / 2 with the memo off (messages/s, speed-up, peak memory)."""
    res = importlib.import_module("iso15118.capture.bench").bench_fleet(repeat=args.fleet_repeat, files=args.fleet_files)
    print(json.dumps(res, indent=1, default=str))
    for fmt in ("parquet", "jsonl"):
        one, two = res.get(f"{fmt}_workers_1"), res.get(f"{fmt}_workers_2")
        if one and two:
            print(f"{fmt}: --workers 2 over --workers 1, wall clock x{res.get(f'{fmt}_speedup_2_over_1')} "
                  f"({one['seconds']} s / {two['seconds']} s; cores busy {one['cores_busy']} / {two['cores_busy']} "
                  f"of {res['cpu_count']}, load {res['load_average']}); "
                  f"messages per CPU second of a decoding process: {one['messages_per_worker_cpu_s']} (1), "
                  f"{two['messages_per_worker_cpu_s']} (2)")
    return res


def section_session(args: argparse.Namespace) -> dict:
    return _call("iso15118.sim.bench", "bench", n_sessions=args.sessions)


SECTIONS = {
    "codec": section_codec,
    "typed": section_typed,
    "security": section_security,
    "capture": section_capture,
    "session": section_session,
    "fleet": section_fleet,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--peer", action="store_true", help="also time Josev's codec (sets the peer up with tools/peer/setup)")
    ap.add_argument("--n", type=int, default=2000, help="calls per timing batch (small set; the full set sizes batches itself)")
    ap.add_argument("--set", choices=("small", "all"), default="all",
                    help="codec section: the 6 messages of BENCH_SET, or every message of the peer's set (default)")
    ap.add_argument("--peer-n", type=int, default=20)
    ap.add_argument("--capture-repeat", type=int, default=200)
    ap.add_argument("--capture-baseline", metavar="REV",
                    help="capture: also decode with the iso15118 package of this git revision (same run, same capture)")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--fleet-repeat", type=int, default=100,
                    help="fleet: sessions per capture file (98 messages each; files big enough that starting "
                         "the worker processes does not hide how the decoding scales)")
    ap.add_argument("--fleet-files", type=int, default=8, help="fleet: capture files")
    ap.add_argument("--json", help="also write all results to this file")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(SECTIONS)
    results = {}
    for name in names:
        print(f"\n=== {name}")
        try:
            results[name] = SECTIONS[name](args)
        except (ImportError, AttributeError, FileNotFoundError) as exc:
            print(f"{name}: not available yet ({type(exc).__name__}: {exc})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
