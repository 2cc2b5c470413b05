"""pytest plugin: run conformance cases from a firmware team's own test suite.

Enable it with ``-p conformance.pytest_plugin`` (or ``pytest_plugins = ["conformance.pytest_plugin"]``
in a conftest), then either point it at a SUT on the command line::

    pytest -p conformance.pytest_plugin --conformance-sut tcp://[::1]:15119 \\
           --conformance-id 'TC_SECC_SAP_*' --conformance-tag derate --conformance-html report.html

with a test module containing ``from conformance.pytest_plugin import test_conformance``, or
write tests of your own::

    @pytest.mark.conformance(ids=["TC_SECC_WC_Derate_*"])
    def test_derate(conformance_result):
        assert_conformance(conformance_result)

Override the ``conformance_sut`` fixture to start the firmware (or a HIL rig) yourself and
return a :class:`conformance.sut.SutEndpoint`.  Verdicts map to pytest outcomes: pass -> pass,
fail / error -> failure with reason, checks and the tail of the message log, inconclusive ->
skip with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conformance.cases import select
from conformance.catalogue import TestCase
from conformance.evidence import CaseResult, Verdict
from conformance.sut import SutEndpoint

_RESULTS: list[CaseResult] = []
_SUTS: dict[str, SutEndpoint] = {}


def pytest_addoption(parser: Any) -> None:
    g = parser.getgroup("iso15118 conformance")
    g.addoption("--conformance-sut", default=None, help="SUT URL (tcp://[::1]:PORT, tls://...)")
    g.addoption("--conformance-id", action="append", default=[], help="case ID glob (repeatable)")
    g.addoption("--conformance-tag", action="append", default=[], help="required tag (repeatable)")
    g.addoption("--conformance-tls", action="store_true", help="TLS to the SUT")
    g.addoption("--conformance-pki", default=None, help="PKI directory for TLS")
    g.addoption("--conformance-services", default=None, help="declare services (AC_BPT,AC) instead of probing")
    g.addoption("--conformance-html", default=None, help="write an HTML report of the cases run")
    g.addoption("--conformance-junit", default=None, help="write a JUnit report of the cases run")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "conformance(ids=[...], tags=[...]): which conformance cases a test runs")


def pytest_generate_tests(metafunc: Any) -> None:
    if "conformance_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("conformance")
    ids = list((marker.kwargs.get("ids") if marker else None) or metafunc.config.getoption("--conformance-id") or [])
    tags = list((marker.kwargs.get("tags") if marker else None) or metafunc.config.getoption("--conformance-tag") or [])
    role = marker.kwargs.get("role", "SECC") if marker else "SECC"
    cases = select(ids, tags, role)
    metafunc.parametrize("conformance_case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def conformance_sut(request: Any) -> SutEndpoint:
    """The SUT from ``--conformance-sut`` (override this fixture to start your own)."""
    url = request.config.getoption("--conformance-sut")
    if not url:
        pytest.skip("no --conformance-sut given")
    sut = SutEndpoint.parse(url, tls=request.config.getoption("--conformance-tls"), pki=request.config.getoption("--conformance-pki"))
    services = request.config.getoption("--conformance-services")
    if services:
        from iso15118.session.services import EnergyService

        sut.info.services = {EnergyService[s.strip()] for s in services.split(",") if s.strip()}
    return sut


def run_case_sync(case: TestCase, sut: SutEndpoint) -> CaseResult:
    """Run one case to completion (its own event loop); probes the SUT's services first if needed."""
    from conformance.runner import probe_services, run_case

    async def main() -> CaseResult:
        if not sut.info.services and sut.role == "SECC":
            await probe_services(sut)
        return await run_case(case, sut)

    return asyncio.run(main())


@pytest.fixture
def conformance_result(conformance_case: TestCase, conformance_sut: SutEndpoint) -> CaseResult:
    r = run_case_sync(conformance_case, conformance_sut)
    _RESULTS.append(r)
    _SUTS[conformance_sut.name] = conformance_sut
    return r


def describe(r: CaseResult, log_lines: int = 25) -> str:
    checks = "\n".join(f"  [{'ok' if c.ok else 'FAIL'}] {c.requirement}: {c.detail}" for c in r.checks)
    tail = "\n".join(f"  {e.t:8.3f} {e.direction:4} {e.name} {e.response_code or ''} {e.detail}".rstrip()
                     for e in r.evidence.entries[-log_lines:])
    return f"{r.case_id} {r.verdict.value.upper()}: {r.reason}\nchecks:\n{checks}\nlog (last {log_lines}):\n{tail}"


def assert_conformance(r: CaseResult) -> None:
    """pass -> return; inconclusive -> skip; fail / error -> pytest failure with the evidence."""
    if r.verdict is Verdict.PASS:
        return
    if r.verdict is Verdict.INCONCLUSIVE:
        pytest.skip(f"inconclusive: {r.reason}")
    pytest.fail(describe(r), pytrace=False)


def test_conformance(conformance_result: CaseResult) -> None:
    """Import this into a test module to run the selected catalogue cases."""
    assert_conformance(conformance_result)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if not _RESULTS:
        return
    from conformance.report import write_html, write_junit
    from conformance.runner import Campaign

    camp = Campaign(results=list(_RESULTS), suts=list(_SUTS.values()))
    camp.started = min(r.started for r in _RESULTS)
    camp.ended = max(r.started + r.duration for r in _RESULTS)
    html = session.config.getoption("--conformance-html")
    junit = session.config.getoption("--conformance-junit")
    if html:
        write_html(camp, html)
    if junit:
        write_junit(camp, junit)
