"""Verdicts you can trust: an unreachable SUT is an error (exit 2), capabilities come from a PICS
or the probe, a SUT that goes out of service mid-campaign is blamed once, refusals need
evidence and liveness, and the exit status follows the documented contract."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from conformance.evidence import Verdict
from conformance.faults import start_secc_defect
from conformance.local import start_local_secc
from conformance.mutation import catalogue
from conformance.pics import PicsError, load_pics
from conformance.runner import run_campaign


def select(ids: list[str]) -> list:  # type: ignore[type-arg]
    import fnmatch

    return [c for role in ("SECC", "EVCC") for c in catalogue(role) if any(fnmatch.fnmatchcase(c.id, g) for g in ids)]

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iso15118", "conformance", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_nothing_listening_exits_2_and_says_unreachable() -> None:
    async def port() -> int:
        from conformance.faults import dead_port

        return await dead_port()

    p = asyncio.run(port())
    out = _cli("run", "--sut", f"tcp://[::1]:{p}", "--no-progress", "--id", "TC_SECC_SAP_*")
    print(out.stdout[-1500:])
    assert out.returncode == 2, out.stdout + out.stderr
    assert "SUT unreachable" in out.stdout
    assert "pass" in out.stdout  # the table
    help_ = _cli("run", "--help")
    assert "exit status" in help_.stdout and "2  an error" in help_.stdout


def test_silent_and_random_chargers_pass_nothing() -> None:
    """Also without the reach gate: every case against a silent charger must fail or error on its own
    (silence is never a refusal)."""

    async def main() -> None:
        sut, close = await start_secc_defect("silent-after-accept")
        try:
            sut.jobs = 8
            cases = [c for c in select(["TC_SECC_SAP_*", "TC_SECC_V2GTP_*", "TC_SECC_SessionSetup_00[14]"])]
            camp = await run_campaign([sut], cases, probe=False, reach=False)
        finally:
            close()
        verdicts = {r.case_id: (r.verdict.value, r.reason) for r in camp.results}
        print(verdicts)
        assert not [c for c, (v, _) in verdicts.items() if v == "pass"], verdicts
        assert camp.exit_status() != 0

    asyncio.run(main())


def test_pics_declares_capabilities(tmp_path: Path) -> None:
    f = tmp_path / "wc.toml"
    f.write_text('[services]\nenergy = ["AC_BPT", "AC"]\ncontrol_modes = ["Dynamic"]\nauthorization = ["EIM"]\n'
                 "[features]\npause_resume = false\n")
    info = load_pics(f)
    assert info.features["pause_resume"] is False and info.features["scheduled"] is False

    async def main() -> None:
        wc = await start_local_secc("wall-connector")
        try:
            sut = wc.endpoint()
            sut.info = info
            camp = await run_campaign([sut], select(["TC_SECC_PauseResume_001", "TC_SECC_ScheduleExchange_002",
                                                     "TC_SECC_SessionSetup_001"]), probe=False)
        finally:
            wc.close()
        v = {r.case_id: r for r in camp.results}
        assert v["TC_SECC_PauseResume_001"].verdict is Verdict.INCONCLUSIVE
        assert v["TC_SECC_PauseResume_001"].reason.startswith("not applicable")
        assert v["TC_SECC_ScheduleExchange_002"].reason.startswith("not applicable")
        assert v["TC_SECC_SessionSetup_001"].verdict is Verdict.PASS
        assert camp.exit_status() == 0

    asyncio.run(main())
    bad = tmp_path / "bad.toml"
    bad.write_text('[services]\nenergy = ["AC_TURBO"]\n')
    try:
        load_pics(bad)
    except PicsError as exc:
        assert "AC_TURBO" in str(exc)
    else:
        raise AssertionError("a bad PICS must be refused")


def test_probe_reads_capabilities() -> None:
    async def main() -> None:
        wc = await start_local_secc("wall-connector")
        try:
            sut = wc.endpoint()
            sut.info.services = set()
            camp = await run_campaign([sut], select(["TC_SECC_SessionSetup_001"]))
        finally:
            wc.close()
        cap = camp.suts[0].info.to_json()
        print(cap)
        assert cap["source"] == "probe" and "AC_BPT" in cap["services"]
        assert cap["authorization"] == ["EIM"] and set(cap["control_modes"]) == {"Dynamic", "Scheduled"}
        assert cap["reachable"] is True

    asyncio.run(main())


def test_out_of_service_mid_campaign_is_blamed_once() -> None:
    """A charger that dies on a malformed frame: the case that killed it fails, the rest are errors
    ("not run"), and the campaign says so once."""

    async def main() -> None:
        sut, close = await start_secc_defect("dies-after-malformed")
        try:
            sut.jobs = 1
            # catalogue order: SAP_001, V2GTP_001 (kills it), then the WC cases
            cases = select(["TC_SECC_SAP_001", "TC_SECC_V2GTP_001", "TC_SECC_WC_Power_001", "TC_SECC_WC_Abort_008"])
            camp = await run_campaign([sut], cases, probe=False)
        finally:
            close()
        v = {r.case_id: r for r in camp.results}
        for r in camp.results:
            print(r.case_id, r.verdict.value, r.reason)
        print(camp.notes)
        assert v["TC_SECC_SAP_001"].verdict is Verdict.PASS
        assert v["TC_SECC_V2GTP_001"].verdict is Verdict.FAIL
        assert "unreachable" in v["TC_SECC_V2GTP_001"].reason or "SAP and SessionSetup" in v["TC_SECC_V2GTP_001"].reason
        later = [r for r in camp.results if r.case_id > "TC_SECC_V2GTP_001"]
        assert later and all(r.verdict is Verdict.ERROR for r in later), [(r.case_id, r.reason) for r in later]
        notes = camp.headline()
        assert len(notes) == 1 and "TC_SECC_V2GTP_001" in notes[0], notes
        assert camp.exit_status() == 2

    asyncio.run(main())


def test_exit_status_contract() -> None:
    from conformance.evidence import CaseResult, Evidence
    from conformance.runner import Campaign
    from conformance.sut import SutEndpoint

    def camp(*verdicts: tuple[str, str]) -> Campaign:
        c = Campaign(suts=[SutEndpoint("::1", 1)])
        c.results = [CaseResult(f"TC_SECC_X_{i:03d}", "t", "s", Verdict(v), why, 0.0, Evidence()) for i, (v, why) in enumerate(verdicts)]
        return c

    assert camp(("pass", "ok"), ("inconclusive", "not applicable: no DC")).exit_status() == 0
    assert camp(("pass", "ok"), ("fail", "x")).exit_status() == 1
    assert camp(("fail", "x"), ("error", "boom")).exit_status() == 2
    assert camp(("pass", "ok"), ("inconclusive", "cannot observe the derate")).exit_status() == 2
    c = camp(("pass", "ok"))
    c.suts[0].info.reachable = False
    assert c.exit_status() == 2


def test_probe_finding_nothing_is_a_failure_not_not_applicable() -> None:
    """A charger that completes the handshake but offers no energy service must not turn the
    campaign into a green list of "not applicable"."""
    import dataclasses

    from conformance.faults import DefectProxy

    def no_services(st, name, res):  # type: ignore[no-untyped-def]
        from iso15118 import messages as m

        if name == "ServiceDiscoveryRes":
            return dataclasses.replace(res, response_code=m.ResponseCode.FAILED)
        return res

    async def main() -> None:
        wc = await start_local_secc("wall-connector")
        p = DefectProxy(wc.server.port, down=no_services)
        try:
            sut = wc.endpoint()
            sut.info.services = set()
            sut.port = await p.start()
            camp = await run_campaign([sut], select(["TC_SECC_ServiceDiscovery_001", "TC_SECC_AC_BPT_ChargeLoop_001",
                                                     "TC_SECC_ChargeLoop_005"]))
        finally:
            p.close()
            wc.close()
        for r in camp.results:
            print(r.case_id, r.verdict.value, r.reason)
        assert camp.exit_status() != 0
        assert not [r for r in camp.results if r.verdict is Verdict.PASS]
        assert [r for r in camp.results if r.case_id == "TC_SECC_ChargeLoop_005"][0].verdict is Verdict.FAIL

    asyncio.run(main())


def test_cli_replay_probes_the_sut(tmp_path: Path) -> None:
    """`conformance replay` without --services probes the SUT (a separate SECC process) instead of
    saying it offers nothing known."""
    import socket
    import time

    from conformance.evidence import dump_jsonl

    async def record() -> None:
        wc = await start_local_secc("wall-connector")
        try:
            camp = await run_campaign([wc.endpoint()], select(["TC_SECC_Timing_001"]), probe=False)
        finally:
            wc.close()
        (tmp_path / "s.jsonl").write_text(dump_jsonl(camp.results[0].evidence.entries))

    asyncio.run(record())
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    secc = subprocess.Popen([sys.executable, "-m", "iso15118", "secc", "--profile", "wall-connector", "--host", "::1",
                             "--port", str(port), "--no-tls"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("::1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out = _cli("replay", "--sut", f"tcp://[::1]:{port}", str(tmp_path / "s.jsonl"))
    finally:
        secc.terminate()
        secc.wait(10)
    print(out.stdout[-1500:])
    assert "offers nothing known" not in out.stdout
    assert "probe" in out.stdout and "AC_BPT" in out.stdout  # the capabilities line
    assert out.returncode == 0, out.stdout + out.stderr
