"""Proof for replays: a recorded session (JSONL or pcap) replays cleanly against the same SUT
and shows a field diff against a different one or a tampered recording."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from conformance.cases import select
from conformance.evidence import dump_jsonl
from conformance.local import start_local_secc
from conformance.replay import diff, load_recording, replay_case, write_pcap
from conformance.runner import run_campaign, run_case


def test_replay_jsonl_and_pcap(tmp_path: Path) -> None:
    async def main():  # type: ignore[no-untyped-def]
        wc = await start_local_secc("wall-connector")
        dc = await start_local_secc("dc-bidi")
        try:
            rec = await run_campaign([wc.endpoint()], select(["TC_SECC_Timing_001"]), probe=False)
            entries = rec.results[0].evidence.entries
            (tmp_path / "s.jsonl").write_text(dump_jsonl(entries))
            write_pcap(entries, tmp_path / "s.pcap")
            # tampered: the recorded ServiceDiscoveryRes claimed no renegotiation support
            lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
            for d in lines:
                if d["name"] == "ChargeParameterDiscoveryRes" or d["name"].endswith("ChargeParameterDiscoveryRes"):
                    import dataclasses

                    from iso15118 import messages as m

                    msg = m.decode(bytes.fromhex(d["exi_hex"]), "ac")
                    mode = dataclasses.replace(msg.energy_transfer_mode, evse_maximum_charge_power=m.RationalNumber(value=7, exponent=3))
                    d["exi_hex"] = m.encode(dataclasses.replace(msg, energy_transfer_mode=mode)).hex()
            (tmp_path / "t.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
            same = await run_case(replay_case(tmp_path / "s.jsonl"), wc.endpoint())
            pcap = await run_case(replay_case(tmp_path / "s.pcap"), wc.endpoint())
            other = await run_case(replay_case(tmp_path / "s.jsonl"), dc.endpoint())
            tampered = await run_case(replay_case(tmp_path / "t.jsonl"), wc.endpoint())
            return same, pcap, other, tampered
        finally:
            wc.close()
            dc.close()

    same, pcap, other, tampered = asyncio.run(main())
    assert same.verdict.value == "pass", same.reason
    assert pcap.verdict.value == "pass", pcap.reason
    assert len(load_recording(tmp_path / "s.pcap")) == len(load_recording(tmp_path / "s.jsonl"))
    assert other.verdict.value == "fail" and "Failed_NoNegotiation" in other.reason
    assert tampered.verdict.value == "fail" and "evse_maximum_charge_power" in tampered.reason
    print(f"\nreplay diff vs tampered recording: {tampered.reason}")


def test_diff_tolerances() -> None:
    a = {"header": {"session_id": "aa", "time_stamp": 1}, "evse_present_voltage": 400.0, "response_code": "OK"}
    b = {"header": {"session_id": "bb", "time_stamp": 9}, "evse_present_voltage": 420.0, "response_code": "OK"}
    assert diff(a, b) == []
    b["evse_present_voltage"] = 600.0
    assert diff(a, b) and "evse_present_voltage" in diff(a, b)[0]
    b["response_code"] = "FAILED"
    assert any("response_code" in d for d in diff(a, b))


def test_josev_trace_format(tmp_path: Path) -> None:
    """Josev's --trace lines (t, dir, payload_type, name, exi_hex) load as a recording."""
    from iso15118 import messages as m

    req = m.SupportedAppProtocolReq(app_protocol=[m.AppProtocol(protocol_namespace="urn:iso:std:iso:15118:-20:AC",
                                    version_number_major=1, version_number_minor=0, schema_id=1, priority=1)])
    line = {"t": 1.0, "dir": "rx", "payload_type": 0x8001, "len": 40, "name": "supportedAppProtocolReq", "ns": "x",
            "exi_hex": m.encode(req).hex()}
    (tmp_path / "trace.jsonl").write_text(json.dumps(line) + "\n")
    rec = load_recording(tmp_path / "trace.jsonl")
    assert rec[0].request and rec[0].name == "supportedAppProtocolReq"
