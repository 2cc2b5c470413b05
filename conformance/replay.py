"""Replay a recorded session against a SUT and diff the answers.

Recordings: the harness's own JSONL message logs (``direction`` tx/rx, ``payload_type``,
``exi_hex``), Josev's ``--trace`` JSONL (``dir``, ``payload_type``, ``exi_hex``; requests are
recognised by their names), or a pcap/pcapng read through :mod:`iso15118.capture`.

The EV side of the recording is sent again, message by message, with the SessionID the SUT
assigns, fresh TimeStamps and time anchors; SECC-paced loops (Authorization, ScheduleExchange,
CableCheck Ongoing) are repeated until Finished as often as the SUT needs.  Each answer is
compared with the recorded one, ignoring what must differ (SessionID, timestamps, EVSEID,
GenChallenge, meter IDs) and allowing a tolerance on measured values (voltages, currents,
powers, meter readings).  Differences become failed checks with a field-level diff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.catalogue import CaseContext, TestCase
from conformance.evidence import message_to_dict
from iso15118 import messages as m
from iso15118.transport.v2gtp import schema_key_for

IGNORE = ("session_id", "time_stamp", "time_anchor", "meter_timestamp", "gen_challenge", "evse_id", "meter_id",
          "signature", "departure_time")
MEASURED = ("present", "meter_info", "reading", "target_active_power", "evse_present", "charged_energy", "discharged_energy")
SECC_PACED = ("AuthorizationReq", "ScheduleExchangeReq", "DC_CableCheckReq")


@dataclass
class Recorded:
    t: float
    request: bool
    payload_type: int
    payload: bytes
    name: str


def _name_of(payload_type: int, payload: bytes) -> str:
    key = schema_key_for(payload_type)
    try:
        msg: Any = m.decode(payload, key) if key else None
        return str(msg.ELEMENT[1]) if msg is not None else f"0x{payload_type:04x}"
    except Exception:
        return "?"


CAPTURE_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def is_capture(path: str | Path) -> bool:
    """A pcap / pcapng file (by its magic number)."""
    with open(path, "rb") as f:
        return f.read(4) in CAPTURE_MAGIC


def load_recording(path: str | Path) -> list[Recorded]:
    """JSONL (ours or Josev's trace) or a capture file."""
    p = Path(path)
    if is_capture(p):
        return _load_capture(p)
    out = []
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if "exi_hex" not in d or d.get("payload_type") is None:
            continue
        payload = bytes.fromhex(d["exi_hex"])
        pt = int(d["payload_type"])
        name = d.get("name") or _name_of(pt, payload)
        out.append(Recorded(float(d.get("t", 0.0)), name.endswith("Req"), pt, payload, name))
    return out


def _load_capture(p: Path) -> list[Recorded]:
    from iso15118.capture.analyzer import CaptureDecoder
    from iso15118.capture.events import EV_TO_EVSE

    out = []
    for ev in CaptureDecoder(p).events():
        if ev.kind != "v2g" or ev.payload is None or ev.payload_type is None:
            continue
        out.append(Recorded(ev.ts, ev.direction == EV_TO_EVSE, ev.payload_type, ev.payload, _name_of(ev.payload_type, ev.payload)))
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = d
    return out


def diff(expected: dict[str, Any], actual: dict[str, Any], tolerance: float = 0.1) -> list[str]:
    """Field-level differences that matter (ignored fields skipped, measured values within
    ``tolerance`` relative, or 1 unit absolute)."""
    a, b = _flatten(expected), _flatten(actual)
    out = []
    for k in sorted(set(a) | set(b)):
        leaf = k.rsplit(".", 1)[-1]
        if any(x in k for x in IGNORE):
            continue
        va, vb = a.get(k), b.get(k)
        if va == vb:
            continue
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool) and any(x in k for x in MEASURED):
            if abs(va - vb) <= max(1.0, tolerance * max(abs(va), abs(vb))):
                continue
        out.append(f"{k}: recorded {va!r}, now {vb!r}")
        _ = leaf
    return out


def _refresh(msg: Any, session_id: bytes | None) -> Any:
    """The recorded request with the current SessionID, TimeStamp and time anchors."""
    now = int(time.time())
    if getattr(msg, "header", None) is not None:
        sid = msg.header.session_id if session_id is None else session_id
        msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, session_id=sid, time_stamp=now, signature=None))
    prof = getattr(msg, "ev_power_profile", None)
    if prof is not None:
        msg = dataclasses.replace(msg, ev_power_profile=dataclasses.replace(prof, time_anchor=now))
    return msg


async def replay(ctx: CaseContext, recording: list[Recorded], tolerance: float = 0.1) -> None:
    """Send the recording's requests to the SUT and diff the answers (checks on ``ctx``)."""
    t = ctx.tester()
    await t.connect()
    session_id: bytes | None = None
    items = list(recording)
    i = 0
    compared = mismatched = 0
    last_t = None
    while i < len(items):
        rec = items[i]
        if not rec.request:
            i += 1
            continue
        # the recorded answer: the next non-request
        j = i + 1
        while j < len(items) and items[j].request:
            j += 1
        expected = items[j] if j < len(items) else None
        # skip recorded repeats of SECC-paced loops: we repeat as the SUT needs
        k = i
        while rec.name in SECC_PACED and k + 2 < len(items) and items[k + 2].request and items[k + 2].name == rec.name:
            k += 2
        if k != i:
            expected = items[k + 1] if k + 1 < len(items) else expected
        gap = min(1.0, max(0.0, rec.t - last_t)) if last_t is not None else 0.0
        last_t = rec.t
        await asyncio.sleep(min(gap, 0.3))
        key = schema_key_for(rec.payload_type)
        try:
            msg = m.decode(rec.payload, key)  # type: ignore[arg-type]
        except Exception as exc:
            ctx.check("replay: recorded request decodes", False, f"#{i} {rec.name}: {exc}")
            return
        sid = None if rec.name in ("supportedAppProtocolReq", "SessionSetupReq") else session_id
        msg = _refresh(msg, sid)
        rx = await t.exchange(msg)
        for _ in range(200):
            if not (rx.answered and rec.name in SECC_PACED and getattr(rx.msg, "evse_processing", None) is not None
                    and rx.msg.evse_processing.value != "Finished" and (rx.code or "").startswith("OK")):
                break
            await asyncio.sleep(0.05)
            rx = await t.exchange(_refresh(msg, session_id))
        if rx.answered and rx.name == "SessionSetupRes":
            session_id = rx.msg.header.session_id
        if expected is None:
            break
        want = m.decode(expected.payload, schema_key_for(expected.payload_type))  # type: ignore[arg-type]
        compared += 1
        if not rx.answered:
            ctx.check(f"replay #{compared}: {expected.name} answered", False, rx.error)
            return
        d = diff(message_to_dict(want), message_to_dict(rx.msg), tolerance)
        if rx.name != expected.name:
            d.insert(0, f"message: recorded {expected.name}, now {rx.name}")
        if d:
            mismatched += 1
            ctx.check(f"replay #{compared}: {expected.name} matches the recording", False, "; ".join(d[:8]))
            if rx.name != expected.name or (rx.code or "").startswith("FAILED"):
                return
        i = k + 1
    ctx.check("replay: all answers match the recording (within tolerances)", mismatched == 0,
              f"{compared} responses compared, {mismatched} differ")
    ctx.metric("replay_compared", compared)


def replay_case(path: str | Path, tolerance: float = 0.1) -> TestCase:
    """A catalogue-style case for one recording (not registered; pass it to the runner)."""
    rec = load_recording(path)
    stem = Path(path).stem.replace("-", "_").replace(".", "_")

    async def run(ctx: CaseContext) -> None:
        ctx.evidence.note(f"replaying {path}: {sum(r.request for r in rec)} requests")
        await replay(ctx, rec, tolerance)

    return TestCase(
        id=f"TC_SECC_Replay_{stem}", title=f"Replay of {Path(path).name}", group="Replay",
        purpose="The SUT answers a recorded session as it was answered then (within tolerances).",
        requirement="regression against a recorded session", steps=("send the recorded EV requests", "diff the answers"),
        preconditions=("a recording with both directions",), tags=("replay", "secc"), role="SECC", needs=frozenset(), run=run,
        timeout=120.0,
    )


def write_pcap(entries: list[Any], path: str | Path, server_port: int = 64109) -> int:
    """A case's message log as a pcap of one synthetic TCP connection (EV = client), readable
    by :mod:`iso15118.capture` and Wireshark; returns the number of frames written."""
    import ipaddress

    from iso15118.capture.pcapwriter import PcapWriter, TcpFlowWriter
    from iso15118.transport.v2gtp import encode_frame

    frames = [e for e in entries if e.direction in ("tx", "rx") and e.exi_hex is not None and e.payload_type is not None]
    base = frames[0].wall if frames and frames[0].wall else time.time()
    with PcapWriter(str(path)) as w:
        flow = TcpFlowWriter(w, (ipaddress.IPv6Address("fe80::2").packed, 50322), (ipaddress.IPv6Address("fe80::1").packed, server_port))
        flow.handshake(base - 0.001)
        for e in frames:
            flow.send(base + e.t, 0 if e.direction == "tx" else 1, encode_frame(e.payload_type, bytes.fromhex(e.exi_hex)))
        flow.close(base + (frames[-1].t if frames else 0) + 0.01)
    return len(frames)
