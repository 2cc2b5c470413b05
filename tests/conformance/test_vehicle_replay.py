"""Proof for the real-vehicle replay (conformance/vehicle_replay.py): recorded DIN / -2 vehicles
against Josev's SECC (an implementation nobody here wrote) reach SessionStop with a diff against
the recorded charger; an unreachable SUT is an error; what the replay reads from a capture.  The
whole fleet against our SECC, and our SECC made to refuse, close or differ:
test_vehicle_replay_ours.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conformance.recording import RecordingError, read_sessions
from conformance.runner import run_case
from conformance.sut import SutEndpoint
from conformance.vehicle_replay import replay_campaign, vehicle_replay_case
from tests.conformance.josev import JosevSecc, free_port
from tests.proofs import PEER_SESSIONS, record

FIX = Path(__file__).resolve().parents[2] / "fixtures"
DIN_DC = FIX / "captures" / "Mercedes-Benz_EQE_2023-04-18T15-18-18.778Z-1_config-dc-dinspec.pcap"
ISO2_DC = FIX / "vehicles" / "Opel_Mokka-E_iso_15118-2_DC_2023-04-14T14-19-47.742Z-2_config-dc-iso2.pcap"
ISO2_AC = FIX / "captures" / "Mercedes-Benz_EQE_2023-04-18T15-20-45.345Z-3_config-ac-iso2.pcap"
TESLA_PADDED = FIX / "vehicles" / "Tesla_Model_3_2023-04-06T11-52-31.423Z-tesla_model_3_dinspec_DC.pcap"
NO_V2G = FIX / "vehicles" / "Fiat_Scudo_2024-02-20T09-37-13.153Z-2_iso2_dc.pcap"


def test_recordings_read_as_sessions() -> None:
    """What the replay takes from a capture: the vehicle's requests paired with the recorded
    answers; a padded request read without its padding; a capture without V2G is refused."""
    din = read_sessions(DIN_DC)
    assert len(din) == 1 and din[0].protocol == "din" and din[0].family == "DC" and din[0].reached_stop
    names = [ex.name for ex in din[0].exchanges]
    assert names[:3] == ["supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq"] and names[-1] == "SessionStopReq"
    assert all(ex.response_name == ex.name[:-3] + "Res" for ex in din[0].exchanges)
    ac = read_sessions(ISO2_AC)[0]
    assert ac.protocol == "iso2" and ac.family == "AC" and not ac.reached_stop  # the capture ends in the charge loop
    tesla = read_sessions(TESLA_PADDED)[0]
    padded = [ex for ex in tesla.exchanges if ex.note]
    assert [ex.name for ex in padded] == ["ContractAuthenticationReq"] * 3
    assert len(padded[0].payload) == 14 and "1 trailing byte" in padded[0].note and not tesla.problems
    from iso15118.exi.codec import get_codec

    assert padded[0].request is not None and get_codec("din").encode(padded[0].request) == padded[0].payload[:-1]
    with pytest.raises(RecordingError, match="no V2G session"):
        read_sessions(NO_V2G)


def test_unreachable_sut_is_an_error() -> None:
    sessions = read_sessions(ISO2_AC)

    async def main() -> Any:
        return await replay_campaign([SutEndpoint.parse(f"tcp://[::1]:{free_port()}")], sessions)

    camp = asyncio.run(main())
    assert [r.verdict.value for r in camp.results] == ["error"]
    assert camp.results[0].reason.startswith("SUT unreachable") and camp.exit_status() == 2


@pytest.fixture(scope="module")
def josev_replays(peer_env: dict[str, str]) -> dict[str, Any]:
    """Three Josev SECCs in parallel (DIN DC, -2 DC, -2 AC; each serves one session at a time and
    tears it down for 5 s) replaying one DIN DC, one -2 DC and one -2 AC vehicle."""
    din_dc, iso2_dc, iso2_ac = (read_sessions(p)[0] for p in (DIN_DC, ISO2_DC, ISO2_AC))
    slow = 4.0  # Josev's JVM codec on a loaded 2-core machine: 12 s of grace before an answer is missing

    def endpoint(j: JosevSecc) -> SutEndpoint:
        sut: SutEndpoint = j.endpoint()
        sut.time_scale = slow
        return sut

    async def main() -> dict[str, Any]:
        peers = [JosevSecc(peer_env, "DC", ("--auth", "EIM", "--protocols", "DIN_SPEC_70121")),
                 JosevSecc(peer_env, "DC", ("--auth", "EIM", "--protocols", "ISO_15118_2")),
                 JosevSecc(peer_env, "AC", ("--auth", "EIM", "--protocols", "ISO_15118_2"))]
        await asyncio.gather(*(j.start() for j in peers))
        try:
            results = await asyncio.gather(*(run_case(vehicle_replay_case(s), endpoint(j))
                                             for s, j in zip((din_dc, iso2_dc, iso2_ac), peers, strict=True)))
            await asyncio.gather(*(j.before_case() for j in peers))  # Josev's SESSION line comes before READY
            return {"results": list(results), "sessions": [line for j in peers for line in j.sessions]}
        finally:
            await asyncio.gather(*(j.stop() for j in peers))

    return asyncio.run(main())


def test_josev_serves_the_recorded_vehicles(josev_replays: dict[str, Any]) -> None:
    results = josev_replays["results"]
    assert len(results) == 3
    for r in results:
        rep = r.evidence.annex["replay"]
        assert r.verdict.value == "pass", r.reason
        assert rep["reached_stop"] and rep["refusal"] is None and rep["protocol"] == rep["recorded_protocol"]
        # a different charger: the diff is evidence, present and not a failure
        assert rep["differing"] > 0 and rep["compared"] >= rep["differing"]
        print(f"\n{r.case_id}: {rep['sent']} requests, {rep['differing']}/{rep['compared']} answers differ, "
              f"appended {rep['appended']}, extra {rep['extra']}, skipped {rep['skipped']}")
    din, dc, ac = (r.evidence.annex["replay"] for r in results)
    assert din["protocol"] == "din" and not din["appended"]  # the recording has its own SessionStop
    assert dc["protocol"] == "iso2" and not dc["appended"]
    assert ac["appended"] == ["PowerDeliveryReq(stop)", "SessionStopReq"]  # cut in the ChargingStatus loop
    # Josev's own account: every replayed session ended with a successful SessionStop
    assert len(josev_replays["sessions"]) == 3 and all(" PASS " in s for s in josev_replays["sessions"]), \
        josev_replays["sessions"]
    record(PEER_SESSIONS, len(results))
    record("real vehicle sessions replayed against Josev's SECC", len(results))
