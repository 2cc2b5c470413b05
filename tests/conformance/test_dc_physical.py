"""The physical-limits cases (conformance/cases/dc_physical.py) pass against our DC charger
and fail against the seeded fault that echoes the EV's voltage (the simulator before its clamp)."""

from __future__ import annotations

import asyncio

import pytest

from conformance.cases import select
from conformance.faults_dc import EchoEVVoltage
from conformance.local import start_local_secc
from conformance.runner import run_case

pytestmark = pytest.mark.timeout(180)
CASES = ("TC_SECC_DC_Physical_001", "TC_SECC_DC_Physical_002")


async def _run(wrap: object = None) -> dict[str, tuple[str, str]]:
    loc = await start_local_secc("dc-bidi", wrap=wrap)  # type: ignore[arg-type]
    try:
        sut = loc.endpoint()
        out = {}
        for tc in select(CASES):
            r = await run_case(tc, sut)
            out[tc.id] = (r.verdict.value, r.reason)
        return out
    finally:
        loc.close()


def test_clean_dc_charger_passes() -> None:
    res = asyncio.run(_run())
    print(res)
    assert set(res) == set(CASES)
    assert all(v == "pass" for v, _ in res.values()), res


def test_seeded_fault_fails_both_cases() -> None:
    res = asyncio.run(_run(EchoEVVoltage))
    print(res)
    assert all(v == "fail" for v, _ in res.values()), res
    assert "1234.5" in res["TC_SECC_DC_Physical_001"][1] or "EVSEPresentVoltage" in res["TC_SECC_DC_Physical_001"][1]
