"""Proof (b): deliberate defects around our SECC make exactly the covering cases fail."""

from __future__ import annotations

import pytest

EXPECTED = {
    "ignore-derate": {"TC_SECC_WC_Derate_001", "TC_SECC_WC_Derate_002", "TC_SECC_WC_Derate_003", "TC_SECC_WC_Reserve_001"},
    "accept-wrong-session-id": {
        "TC_SECC_SessionSetup_004", "TC_SECC_SessionSetup_005", "TC_SECC_Authorization_006",
        "TC_SECC_ChargeParameterDiscovery_004", "TC_SECC_ChargeLoop_006",
    },
    "power-on-after-abort": {
        "TC_SECC_ChargeLoop_004", "TC_SECC_ChargeLoop_006", "TC_SECC_SessionStop_003", "TC_SECC_WC_Abort_003",
        "TC_SECC_WC_Abort_006",
    },
}
"""The cases that cover each defect: derate / reserve cases in Dynamic mode; every case that
sends a wrong SessionID after SessionSetup; every case that aborts a session while power flows
and checks the output with the probe."""


def _failed(camp) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.case_id for r in camp.results if r.verdict.value in ("fail", "error")}


def test_clean_baseline(campaigns) -> None:  # type: ignore[no-untyped-def]
    assert _failed(campaigns.clean) == set(), [(r.case_id, r.reason) for r in campaigns.clean.results if r.verdict.value != "pass"
                                               and r.verdict.value != "inconclusive"]


@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_defect_fails_exactly_the_covering_cases(campaigns, defect) -> None:  # type: ignore[no-untyped-def]
    got = _failed(campaigns.faults[defect])
    print(f"\n{defect}: {len(got)} failing cases of {len(campaigns.fault_selection)}: {sorted(got)}")
    why = {r.case_id: r.reason for r in campaigns.faults[defect].results if r.case_id in got ^ EXPECTED[defect]}
    # the covering cases must fail; more may fail now that every answer's values and every
    # refusal's liveness are judged (the clean baseline proves those checks pass a correct SUT)
    assert EXPECTED[defect] <= got, why
    for r in campaigns.faults[defect].results:
        if r.case_id in got:
            assert r.verdict.value == "fail" and any(not c.ok for c in r.checks), r.reason


def test_late_answer_fails_every_case_with_a_charge_loop(campaigns) -> None:  # type: ignore[no-untyped-def]
    """Coverage of the late ChargeLoopRes defect is data-driven: every case whose clean run
    received a ChargeLoopRes must fail on timing, and no other."""
    covering = {r.case_id for r in campaigns.clean.results
                if any(e.direction == "rx" and e.name.endswith("ChargeLoopRes") for e in r.evidence.entries)}
    got = _failed(campaigns.faults["late-answer"])
    print(f"\nlate-answer: {len(got)} failing, {len(covering)} covering")
    assert covering <= got
    for r in campaigns.faults["late-answer"].results:
        if r.case_id in got:
            assert any("V2G_EVCC_Msg_Timeout" in c.requirement and not c.ok for c in r.checks), r.case_id
