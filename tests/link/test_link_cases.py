"""The pilot / SLAC conformance cases pass against our own cores and fail against seeded
defects: one deliberately broken implementation per case proves the case can fail."""

from __future__ import annotations

import asyncio

import pytest

from conformance.cases import select
from conformance.cases.link_faults import DEFECTS
from conformance.cases.link_pilot_slac import LinkSut
from conformance.catalogue import TestCase
from conformance.runner import CaseResult, run_case
from conformance.sut import SutEndpoint

CASES = [c for c in select() if "link" in c.tags]
BY_ID = {c.id: c for c in CASES}


async def _launcher(host: str, port: int) -> None:  # never called: the link cases need no V2G peer
    raise AssertionError("not used")


def _run(tc: TestCase, sut: LinkSut | None) -> CaseResult:
    ep = SutEndpoint("::1", 0, name="link") if tc.role == "SECC" else SutEndpoint.evcc(_launcher, "link")
    return asyncio.run(run_case(tc, ep, {"link": sut} if sut is not None else {}))


def test_catalogue_has_the_link_cases() -> None:
    assert len(CASES) >= 15
    assert {c.role for c in CASES} == {"SECC", "EVCC"}
    assert {c.group for c in CASES} == {"SLAC", "CP"}
    assert set(BY_ID) == {target for _sut, target in DEFECTS.values()}, "every case has a defect that must fail it"


@pytest.mark.parametrize("tc", CASES, ids=lambda c: c.id)
def test_passes_against_our_cores(tc: TestCase) -> None:
    r = _run(tc, LinkSut())
    assert r.verdict.value == "pass", (r.reason, [str(e) for e in r.evidence.entries][-10:])
    assert r.checks and all(c.ok for c in r.checks)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_fails_against_its_seeded_defect(defect: str) -> None:
    sut, target = DEFECTS[defect]
    r = _run(BY_ID[target], sut)
    assert r.verdict.value == "fail", (r.verdict, r.reason)
    assert any(not c.ok for c in r.checks)
    print(f"\n{defect}: {target} fails: {r.reason}")


def test_without_a_link_sut_the_cases_are_not_applicable() -> None:
    r = _run(CASES[0], None)
    assert r.verdict.value == "inconclusive" and "link-layer SUT" in r.reason
