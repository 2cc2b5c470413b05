"""Verdicts you can trust: an unreachable SUT is an error (exit 2), capabilities come from a PICS
or the probe, a SUT that goes out of service mid-campaign is blamed once, refusals need
evidence and liveness, and the exit status follows the documented contract."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from conformance.catalogue import select
from conformance.evidence import Verdict
from conformance.faults import start_secc_defect
from conformance.local import start_local_secc
from conformance.pics import PicsError, load_pics
from conformance.runner import run_campaign

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
