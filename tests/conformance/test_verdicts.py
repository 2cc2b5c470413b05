"""Verdict rules: never a silent pass; errors, inconclusive and failures keep their reasons."""

from __future__ import annotations

import asyncio

from conformance.catalogue import Inconclusive, TestCase
from conformance.evidence import Verdict
from conformance.runner import run_case
from conformance.sut import SutEndpoint, SutInfo


def _case(fn, needs=()):  # type: ignore[no-untyped-def]
    return TestCase("TC_SECC_Unit_001", "unit", "Unit", "p", "digest §0", ("s",), ("p",), ("unit",), "SECC", frozenset(needs), fn, 5.0)


def _run(fn, needs=(), sut=None):  # type: ignore[no-untyped-def]
    sut = sut or SutEndpoint("::1", 9, info=SutInfo(set()))
    return asyncio.run(run_case(_case(fn, needs), sut))


def test_no_checks_is_an_error_not_a_pass() -> None:
    async def run(ctx):  # type: ignore[no-untyped-def]
        pass

    r = _run(run)
    assert r.verdict is Verdict.ERROR and "no checks" in r.reason


def test_failed_check_wins() -> None:
    async def run(ctx):  # type: ignore[no-untyped-def]
        ctx.check("digest §6.1", True, "fine")
        ctx.check("digest §6.2", False, "too late")
        raise Inconclusive("later")

    r = _run(run)
    assert r.verdict is Verdict.FAIL and "too late" in r.reason


def test_exception_is_error_with_traceback() -> None:
    async def run(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    r = _run(run)
    assert r.verdict is Verdict.ERROR and "boom" in r.reason
    assert any("Traceback" in e.name for e in r.evidence.entries)


def test_inconclusive_and_not_applicable() -> None:
    async def run(ctx):  # type: ignore[no-untyped-def]
        ctx.inconclusive("SUT offers no PnC")

    assert _run(run).verdict is Verdict.INCONCLUSIVE
    r = _run(run, needs=("tls",))
    assert r.verdict is Verdict.INCONCLUSIVE and "TLS" in r.reason


def test_unreachable_sut_is_an_error() -> None:
    async def run(ctx):  # type: ignore[no-untyped-def]
        from conformance.tester import TesterEvcc

        t = TesterEvcc(ctx.sut, ctx.evidence, ctx.checks)
        await t.connect()

    r = _run(run)
    assert r.verdict is Verdict.ERROR
