"""The capture decoder on real sessions recorded on loopback.

* Josev EVCC against Josev SECC (``tools/peer/josev``), -20 DC_BPT, once over plain TCP (tcpdump,
  pcap) and once over TLS 1.3 (dumpcap, pcapng; both sides write ``--keylog``).  Both sides
  write ``--trace``: every decoded message must be one the endpoints logged sending, in order,
  with the same name, payload type and EXI bytes, and the count per direction must match.
* This project's ``iso15118 secc --once`` / ``iso15118 evcc``, -20 AC_BPT over TLS 1.3 with a
  lab PKI.  Our CLI prints names, not bytes: the decoded names and counts must match what the
  EVCC printed as sent (and the SECC as received), and every payload must decode cleanly.
* A recorded capture cut in the middle of a packet decodes up to the cut, reports the
  truncation and does not crash.

The Josev sessions are recorded once for the module (about 20 s each); the SECC's 5 s teardown
overlaps the next recording.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event
from tests.capture.liverec import (
    REPO,
    Recording,
    SnifferUnavailable,
    TraceLine,
    our_evcc_counts,
    our_evcc_sent,
    our_secc_received,
    record_josev,
    record_ours,
    setup_peer,
    sniffer_tool,
)
from tests.proofs import LIVE_CAPTURES, PEER_SESSIONS, record

pytestmark = pytest.mark.timeout(240)

# -- decoding and comparing ---------------------------------------------------------------


@dataclass
class Decoded:
    """A capture decoded with :class:`CaptureDecoder`: all events and the V2G ones per direction."""

    events: list[Event]
    decoder: CaptureDecoder
    seconds: float

    @property
    def v2g(self) -> list[Event]:
        return [e for e in self.events if e.kind == "v2g"]

    def direction(self, label: str) -> list[Event]:
        return [e for e in self.v2g if e.direction == label]

    def problems(self) -> list[str]:
        """Everything the decoder flagged as an error or as damage, one line each."""
        out = []
        for e in self.events:
            if e.level == "error" or e.kind in ("framing", "capture") or (
                e.kind == "v2g" and (e.decoded is None or e.decoded.error is not None)
            ):
                out.append(f"frame {e.frame}: {e.kind} {e.name} [{e.level}] {e.detail}")
        return out


def decode(capture: Path, keylog: Path | None = None) -> Decoded:
    t0 = time.monotonic()
    dec = CaptureDecoder(capture, keylog=str(keylog) if keylog else None)
    events = list(dec.events())
    return Decoded(events, dec, time.monotonic() - t0)


def _line(name: str, payload_type: int, payload: bytes) -> str:
    """One message for a diff (no index: the hunk headers give the positions, 1-based)."""
    digest = hashlib.sha256(payload).hexdigest()[:16]
    return f"{name:<34} 0x{payload_type:04X} {len(payload):5d} B sha256:{digest}"


def assert_same_messages(what: str, logged: list[TraceLine], decoded: list[Event]) -> None:
    """Same count, names, payload types and EXI bytes, in order; a unified diff otherwise (and the
    hex of the first pair whose bytes differ)."""
    want = [_line(t.name, t.payload_type, t.payload) for t in logged]
    got = [_line(e.name, e.payload_type or 0, e.payload or b"") for e in decoded]
    if want == got:
        return
    diff = list(difflib.unified_diff(want, got, "logged by the endpoint", "decoded from the capture", lineterm="", n=2))
    first = ""
    for i, (t, e) in enumerate(zip(logged, decoded), 1):
        if t.name == e.name and t.payload != (e.payload or b""):
            first = (f"\nfirst same-named message whose bytes differ (message {i}, {t.name}):\n  logged : {t.payload.hex()}\n"
                     f"  decoded: {(e.payload or b'').hex()}")
            break
    pytest.fail(f"{what}: {len(logged)} logged, {len(decoded)} decoded\n" + "\n".join(diff[:80]) + first)


def assert_same_names(what: str, logged: list[str], decoded: list[str]) -> None:
    if logged == decoded:
        return
    diff = difflib.unified_diff(logged, decoded, "logged", "decoded", lineterm="", n=2)
    pytest.fail(f"{what}: {len(logged)} logged, {len(decoded)} decoded\n" + "\n".join(list(diff)[:80]))


# -- recordings ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer_env() -> dict[str, str]:
    env, reason = setup_peer()
    if env is None:
        print(f"Josev recordings skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return env


@pytest.fixture(scope="module")
def josev(peer_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Recording]]:
    """Both Josev sessions: ``plain`` (tcpdump) and ``tls13`` (dumpcap)."""
    plain_tool, tls_tool = sniffer_tool("tcpdump"), sniffer_tool("dumpcap")
    if plain_tool is None or tls_tool is None:
        pytest.skip("neither tcpdump nor dumpcap is installed (tools/test installs them)")
    base = tmp_path_factory.mktemp("josev")
    recs: dict[str, Recording] = {}
    try:
        try:
            recs["plain"] = record_josev(peer_env, base, "plain", tls="none", tool=plain_tool)
            recs["tls13"] = record_josev(peer_env, base, "tls13", tls="tls13", tool=tls_tool)
        except SnifferUnavailable as exc:
            print(f"Josev recordings skipped: {exc}", file=sys.stderr)
            pytest.skip(str(exc))
        for r in recs.values():
            print(f"josev {r.label}: {r.seconds:.1f}s {r.evcc_stdout.strip()}")
        yield recs
    finally:
        for r in recs.values():
            r.stop()


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    tool = sniffer_tool("tcpdump")
    if tool is None:
        pytest.skip("neither tcpdump nor dumpcap is installed (tools/test installs them)")
    try:
        rec = record_ours(tmp_path_factory.mktemp("ours"), tool=tool)
    except SnifferUnavailable as exc:
        print(f"our recording skipped: {exc}", file=sys.stderr)
        pytest.skip(str(exc))
    print(f"ours: {rec.seconds:.1f}s {rec.evcc_stdout.strip().splitlines()[-1:]}")
    return rec


def _session_ok(rec: Recording) -> None:
    assert rec.error is None, f"{rec.label}: the session itself failed, nothing to compare:\n{rec.error}"


# -- Josev against Josev ------------------------------------------------------------------


def _check_josev(rec: Recording, keylog: Path | None) -> Decoded:
    _session_ok(rec)
    evcc_tx, secc_tx = rec.sent("evcc"), rec.sent("secc")
    # The two traces agree with each other (what one side sent, the other received).
    assert [t.payload for t in rec.received("secc")] == [t.payload for t in evcc_tx], "EVCC tx vs SECC rx traces"
    assert [t.payload for t in rec.received("evcc")] == [t.payload for t in secc_tx], "SECC tx vs EVCC rx traces"
    assert evcc_tx and evcc_tx[-1].name == "SessionStopReq" and secc_tx[-1].name == "SessionStopRes"

    d = decode(rec.capture, keylog)
    assert not d.problems(), "\n".join(d.problems())
    assert d.decoder.stats.internal_errors == 0
    assert_same_messages(f"{rec.label} EV->EVSE", evcc_tx, d.direction(EV_TO_EVSE))
    assert_same_messages(f"{rec.label} EVSE->EV", secc_tx, d.direction(EVSE_TO_EV))
    assert d.decoder.stats.v2g_by_direction == {EV_TO_EVSE: len(evcc_tx), EVSE_TO_EV: len(secc_tx)}
    # Capture times: each message within 0.25 s of the sender's log line (same host clock), and
    # each response's measured response time within 50 ms of the one the two traces give.
    late = [(t.name, round(e.ts - t.t, 3)) for t, e in zip(evcc_tx + secc_tx, d.direction(EV_TO_EVSE) +
                                                         d.direction(EVSE_TO_EV)) if abs(e.ts - t.t) > 0.25]
    assert not late, f"capture time vs log time (s): {late}"
    rt = [(res.name, res.response_time, round(s.t - q.t, 3))
          for q, s, res in zip(evcc_tx, secc_tx, d.direction(EVSE_TO_EV))
          if res.response_time is None or abs(res.response_time - (s.t - q.t)) > 0.05]
    assert not rt, f"response times (decoded, from the traces): {rt}"
    assert d.decoder.stats.v2g_connections == 1
    body = d.v2g[2:]
    assert {e.protocol for e in body} == {"-20"}, {e.protocol for e in body}
    assert {e.schema for e in body} == {"common", "dc"}
    # SessionID: the SECC's, on every message after SessionSetupRes.
    sids = {e.session_id for e in d.v2g[3:]}
    assert len(sids) == 1 and next(iter(sids)).strip("0"), sids
    record(LIVE_CAPTURES)
    record(PEER_SESSIONS)
    print(f"{rec.label}: {len(evcc_tx)} + {len(secc_tx)} messages compared byte for byte; "
          f"recorded in {rec.seconds:.1f}s, decoded in {d.seconds:.2f}s")
    return d


def test_josev_plain_tcp(josev: dict[str, Recording]) -> None:
    rec = josev["plain"]
    d = _check_josev(rec, None)
    assert not any(e.tls for e in d.v2g)
    assert d.decoder.stats.tls_connections == 0
    # Josev chooses PnC when offered (it is, even over TCP): the signed AuthorizationReq is big.
    auth = [e for e in d.v2g if e.name == "AuthorizationReq"]
    assert auth and auth[0].payload is not None


def test_josev_tls13(josev: dict[str, Recording]) -> None:
    rec = josev["tls13"]
    if rec.capture.suffix == ".pcapng":  # dumpcap
        assert rec.capture.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    d = _check_josev(rec, rec.keylogs[0])
    assert all(e.tls for e in d.v2g)
    hello = [e for e in d.events if e.name == "TLS ServerHello"]
    assert hello and "TLS 1.3" in hello[0].detail, [(e.name, e.detail) for e in hello]
    assert "tls=TLSv1.3" in rec.evcc_stdout
    # The SECC's key log decrypts the same session to the same messages.
    d2 = decode(rec.capture, rec.keylogs[1])
    assert [(e.name, e.payload) for e in d2.v2g] == [(e.name, e.payload) for e in d.v2g]
    # Without a key log: the session is seen, nothing is decrypted, nothing crashes.
    d3 = decode(rec.capture, None)
    assert not d3.v2g and d3.decoder.stats.internal_errors == 0


def test_josev_tls13_cli_jsonl(josev: dict[str, Recording], tmp_path: Path) -> None:
    """``python -m iso15118 decode --format jsonl --keylog``: exit 0 and the same messages."""
    rec = josev["tls13"]
    _session_ok(rec)
    out = tmp_path / "decoded.jsonl"
    p = subprocess.run([sys.executable, "-m", "iso15118", "decode", str(rec.capture), "--format", "jsonl",
                        "--keylog", str(rec.keylogs[0]), "-o", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]
    v2g = [r for r in rows if r.get("kind") == "v2g"]
    logged = rec.sent("evcc") + rec.sent("secc")
    ev = [r for r in v2g if r["direction"] == EV_TO_EVSE]
    se = [r for r in v2g if r["direction"] == EVSE_TO_EV]
    for label, rows_d, trace in (("EV->EVSE", ev, rec.sent("evcc")), ("EVSE->EV", se, rec.sent("secc"))):
        want = [(t.name, f"0x{t.payload_type:04X}", t.payload.hex().upper()) for t in trace]
        got = [(r["name"], r["payload_type"], r["payload_hex"]) for r in rows_d]
        assert_same_names(f"jsonl {label}", [f"{w[0]} {w[1]} {hashlib.sha256(w[2].encode()).hexdigest()[:12]}" for w in want],
                          [f"{g[0]} {g[1]} {hashlib.sha256(g[2].encode()).hexdigest()[:12]}" for g in got])
    assert len(v2g) == len(logged)
    assert all("message" in r and "decode_error" not in r for r in v2g)


def test_josev_secc_verdicts(josev: dict[str, Recording]) -> None:
    """Josev's SECC (``--once``) says each session passed, with the counts the traces hold."""
    for rec in josev.values():
        _session_ok(rec)
        verdict = rec.secc_verdict()
        assert " PASS " in verdict, f"{rec.label}: {verdict!r} {rec.secc_stdout} {rec.secc_log_tail()}"
        assert f"rx={len(rec.sent('evcc'))} tx={len(rec.sent('secc'))}" in verdict, verdict


# -- our own stack ------------------------------------------------------------------------


def test_our_stack_tls13(ours: Recording) -> None:
    _session_ok(ours)
    sent = our_evcc_sent(ours)
    counts = our_evcc_counts(ours)
    assert counts is not None, ours.evcc_stdout
    tx, rx = counts
    assert sent and len(sent) == tx and sent[-1] == "SessionStopReq", (tx, sent)
    assert our_secc_received(ours) == sent
    record(LIVE_CAPTURES)
    assert "tls=TLSv1.3" in ours.evcc_stdout and "service=AC_BPT" in ours.evcc_stdout
    assert any(ln.startswith("SESSION 1 PASS") for ln in ours.secc_stdout), ours.secc_stdout

    results = []
    for keylog in ours.keylogs:  # the EVCC's and the SECC's key log: the same session
        assert keylog.exists() and keylog.stat().st_size, keylog
        d = decode(ours.capture, keylog)
        assert not d.problems(), f"{keylog.name}:\n" + "\n".join(d.problems())
        assert d.decoder.stats.internal_errors == 0
        up, down = d.direction(EV_TO_EVSE), d.direction(EVSE_TO_EV)
        assert_same_names(f"ours EV->EVSE ({keylog.name})", sent, [e.name for e in up])
        # Our SECC prints no send log: each response answers the request before it.
        assert_same_names(f"ours EVSE->EV ({keylog.name})", [n[:-3] + "Res" for n in sent], [e.name for e in down])
        assert len(down) == rx
        assert all(e.tls for e in d.v2g)
        assert all(e.decoded is not None and e.decoded.error is None and e.decoded.name == e.name for e in d.v2g)
        body = d.v2g[2:]
        assert {e.protocol for e in body} == {"-20"} and {e.schema for e in body} == {"common", "ac"}
        results.append([(e.direction, e.name, e.payload) for e in d.v2g])
    assert results[0] == results[1]
    print(f"ours: {tx} + {rx} messages compared by name/order; recorded in {ours.seconds:.1f}s")


# -- a truncated capture ------------------------------------------------------------------


_LO_TCP_HEADERS = 14 + 40 + 32  # Ethernet + IPv6 + TCP with timestamps, as on lo


def _packet_records(data: bytes) -> list[tuple[int, int]]:
    """``(data offset, captured length)`` of each packet record of a pcap or pcapng file."""
    out: list[tuple[int, int]] = []
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        e = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        off = 0
        while off + 12 <= len(data):
            btype, blen = struct.unpack_from(e + "II", data, off)
            if btype == 6 and off + 28 <= len(data):  # enhanced packet block
                out.append((off + 28, struct.unpack_from(e + "I", data, off + 20)[0]))
            elif btype == 3:  # simple packet block (dumpcap does not write them)
                out.append((off + 12, blen - 16))
            off += max(blen, 12)
        return out
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(e + "I", data, off + 8)[0]
        out.append((off + 16, incl))
        off += 16 + incl
    return out


@pytest.mark.parametrize("which", ["josev-plain", "josev-tls13", "ours"])
def test_truncated_capture(request: pytest.FixtureRequest, tmp_path: Path, which: str) -> None:
    """The capture cut in the middle of a packet record about 60 % into the file: every message
    completed before the cut is decoded as in the full capture, the truncation is reported, and
    nothing crashes (API and CLI)."""
    rec: Recording = (request.getfixturevalue("ours") if which == "ours"
                      else request.getfixturevalue("josev")[which.split("-")[1]])
    _session_ok(rec)
    keylog = rec.keylogs[0] if rec.keylogs else None
    data = rec.capture.read_bytes()
    records = _packet_records(data)
    # The first packet carrying TCP payload from about 60 % into the file on: cut in its payload.
    cut_index = next(i for i, (off, caplen) in enumerate(records, 1)
                     if off >= len(data) * 6 // 10 and caplen > _LO_TCP_HEADERS + 8)
    off, caplen = records[cut_index - 1]
    cut = off + _LO_TCP_HEADERS + (caplen - _LO_TCP_HEADERS) // 2
    short = tmp_path / f"cut{rec.capture.suffix}"
    short.write_bytes(data[:cut])

    full = decode(rec.capture, keylog)
    d = decode(short, keylog)
    assert d.decoder.stats.internal_errors == 0
    trunc = [e for e in d.events if e.kind == "capture" and "truncated" in e.name]
    assert trunc and trunc[0].level == "error", [(e.kind, e.name, e.detail) for e in d.events if e.kind == "capture"]
    assert d.decoder.stats.capture_problems >= 1
    before = [(e.direction, e.name, e.payload) for e in full.v2g if e.frame < cut_index]
    got = [(e.direction, e.name, e.payload) for e in d.v2g]
    assert 0 < len(got) < len(full.v2g)
    assert got == before, (
        f"cut at frame {cut_index}: {len(before)} messages before it in the full capture, {len(got)} decoded\n"
        + "\n".join(difflib.unified_diff([f"{x[0]} {x[1]}" for x in before], [f"{x[0]} {x[1]}" for x in got],
                                         lineterm="", n=1))
    )
    assert all(e.decoded is not None and e.decoded.error is None for e in d.v2g)
    cmd = [sys.executable, "-m", "iso15118", "decode", str(short), "--format", "jsonl"]
    if keylog:
        cmd += ["--keylog", str(keylog)]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    rows = [json.loads(ln) for ln in p.stdout.splitlines() if ln.strip()]
    assert len([r for r in rows if r.get("kind") == "v2g"]) == len(got)
    assert any(r.get("kind") == "capture" and "truncated" in r.get("name", "") for r in rows)
    print(f"{which}: cut at byte {cut} of {len(data)} (inside frame {cut_index} of {len(records)}): "
          f"{len(got)} of {len(full.v2g)} messages decoded")
