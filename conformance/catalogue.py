"""The test-case catalogue: declarations, selection and the per-run context.

A case is declared with :func:`case` on an ``async def run(ctx)``; the decorator records its
ID (ISO 15118-21 style: ``TC_<SUT role>_<group>_<number>``), purpose, preconditions, the
requirement it checks (digest section / requirement ID), steps and tags.  ``ctx`` gives the
case its tester, evidence and check list; the verdict is computed from the checks:

* a failed check -> **fail** (reason: the first failed check);
* :class:`Inconclusive` raised (precondition not met, SUT does not offer the feature, a
  physical state that cannot be observed) -> **inconclusive**;
* any other exception -> **error** (a harness or transport problem, with the traceback);
* otherwise **pass**, but only if at least one check was made (never a silent pass).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.evidence import Check, Evidence
from conformance.sut import SutEndpoint
from iso15118.session.services import ControlMode, EnergyService


class Inconclusive(Exception):
    """The case cannot decide (precondition not met, feature not offered ...)."""


class Abort(Exception):
    """Stop the case now; the verdict follows from the checks made so far."""


@dataclass(frozen=True)
class TestCase:
    """One catalogue entry."""

    __test__ = False  # not a pytest class

    id: str
    title: str
    group: str
    purpose: str
    requirement: str
    steps: tuple[str, ...]
    preconditions: tuple[str, ...]
    tags: tuple[str, ...]
    role: str
    """``SECC`` (the SUT is a charger; the harness plays the EV) or ``EVCC``."""
    needs: frozenset[str]
    """Capabilities the SUT must have: ``AC``, ``DC``, ``BPT``, ``tls``, ``probe``."""
    run: Callable[[CaseContext], Awaitable[None]] = field(repr=False, compare=False)
    timeout: float = 60.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "group": self.group,
            "role": self.role,
            "purpose": self.purpose,
            "requirement": self.requirement,
            "preconditions": list(self.preconditions),
            "steps": list(self.steps),
            "tags": list(self.tags),
            "needs": sorted(self.needs),
            "timeout": self.timeout,
        }


REGISTRY: dict[str, TestCase] = {}


def case(
    id: str,
    title: str,
    *,
    group: str,
    purpose: str,
    requirement: str,
    steps: Iterable[str],
    preconditions: Iterable[str] = ("SUT reachable on the given endpoint",),
    tags: Iterable[str] = (),
    needs: Iterable[str] = (),
    timeout: float = 60.0,
) -> Callable[[Callable[[CaseContext], Awaitable[None]]], Callable[[CaseContext], Awaitable[None]]]:
    """Register a case (decorator)."""

    def deco(fn: Callable[[CaseContext], Awaitable[None]]) -> Callable[[CaseContext], Awaitable[None]]:
        if id in REGISTRY:
            raise ValueError(f"duplicate case id {id}")
        role = id.split("_")[1]
        REGISTRY[id] = TestCase(
            id, title, group, purpose, requirement, tuple(steps), tuple(preconditions),
            tuple(sorted(set(tags) | {group.lower(), role.lower()})), role, frozenset(needs), fn, timeout,
        )
        return fn

    return deco


class CaseContext:
    """What a running case gets: the SUT, a tester factory, evidence and checks."""

    def __init__(self, tc: TestCase, sut: SutEndpoint, evidence: Evidence, extra: dict[str, Any] | None = None) -> None:
        self.case = tc
        self.sut = sut
        self.evidence = evidence
        self.checks: list[Check] = []
        self.metrics: dict[str, float] = {}
        self.extra = extra or {}
        self.testers: list[Any] = []
        self.liveness_failure = ""
        self.evcc_finished_at: float | None = None
        self.protocol: Any = None
        """DIN / -2 cases: the :class:`conformance.legacy.Proto` under test (the liveness check speaks it)."""
        """Set when a liveness check found the SUT unreachable (the runner then checks the SUT)."""

    # -- checks

    def check(self, requirement: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(requirement, bool(ok), detail))
        self.evidence.note(f"{'PASS' if ok else 'FAIL'} {requirement}: {detail}", "info" if ok else "error")
        return bool(ok)

    def require(self, requirement: str, ok: bool, detail: str) -> None:
        """A check whose failure makes the rest of the case meaningless."""
        if not self.check(requirement, ok, detail):
            raise Abort(detail)

    def precondition(self, ok: bool, detail: str, requirement: str = "precondition: the SUT reaches the step this case tests") -> None:
        """A step the SUT must complete before the tested one.  Not met -> **fail** with the
        evidence: a SUT that misbehaves before the step a case needs has failed (only a feature
        the SUT declares unsupported makes a case not applicable, see :meth:`not_applicable`)."""
        self.require(requirement, ok, detail)

    def inconclusive(self, reason: str) -> None:
        """The harness cannot decide (says why); never used for a misbehaving SUT."""
        raise Inconclusive(reason)

    def not_applicable(self, reason: str) -> None:
        """The SUT declares (PICS) or the probe found the feature unsupported."""
        raise Inconclusive(f"not applicable: {reason}")

    def feature(self, name: str) -> None:
        """Not applicable unless the SUT supports ``name`` (PICS ``[features]``; unknown = supported)."""
        if self.sut.info.features.get(name) is False:
            self.not_applicable(f"the SUT declares '{name}' unsupported")

    def metric(self, name: str, value: float) -> None:
        self.metrics[name] = value

    # -- service choice

    def service(self, *, bpt: bool | None = None, family: str | None = None) -> EnergyService:
        """A service the SUT offers that fits the case (or Inconclusive)."""
        order = [EnergyService.AC_BPT, EnergyService.DC_BPT, EnergyService.AC, EnergyService.DC]
        if bpt is False:
            order = [EnergyService.AC, EnergyService.DC, EnergyService.AC_BPT, EnergyService.DC_BPT]
        for s in order:
            if bpt is not None and s.bpt != bpt:
                continue
            if family is not None and (s.family is None or s.family.value != family):
                continue
            if self.sut.info.offers(s):
                return s
        if self.sut.info.probed and not self.sut.info.services:
            # reachable, but the probe found no energy service at all: that is the SUT's failure,
            # never a campaign of "not applicable"
            self.require("digest §4.1: the SUT offers at least one energy transfer service", False,
                         "the capability probe found none: " + ("; ".join(self.sut.info.notes) or "empty ServiceDiscoveryRes"))
        want = " ".join(x for x in (family, "BPT" if bpt else "non-BPT" if bpt is False else None) if x)
        raise Inconclusive(f"not applicable: the SUT offers no {want or 'energy'} service "
                           f"(offers {', '.join(sorted(s.name for s in self.sut.info.services)) or 'nothing known'})")

    def tester(self, *, service: EnergyService | None = None, mode: ControlMode = ControlMode.DYNAMIC, **kw: Any) -> Any:
        from conformance.tester import TesterEvcc
        from conformance.tester_ev import TesterEV

        if service is None:
            service = self.service()
        ev = kw.pop("ev", None) or TesterEV(control_mode=mode, evcc_id=self.evcc_id())
        ev.control_mode = mode
        t = TesterEvcc(self.sut, self.evidence, self.checks, ev=ev, service=service, control_mode=mode, **kw)
        from conformance.values import ValueChecks

        t.values = ValueChecks(self.checks, self.evidence, lambda: t.core.session_id)
        self.testers.append(t)
        return t

    async def run_evcc(self, script: Any = None, *, timeout: float = 45.0, tls: Any = None, profile: str | None = None) -> Any:
        """EVCC-under-test cases: start a tester SECC (over TLS with the server context ``tls``),
        launch the EVCC under test against it, wait until the session is over; returns the
        :class:`~conformance.tester_secc.TesterSecc`."""
        import asyncio

        from conformance.tester_secc import TesterSecc

        if self.sut.evcc_launcher is None:
            raise Inconclusive("no EVCC under test (--evcc)")
        secc = TesterSecc(self.evidence, self.checks, profile=profile or self.sut.evcc_profile, script=script, tls=tls)
        port = await secc.start()
        self.evidence.note(f"tester SECC listening on [::1]:{port}" + (" (TLS)" if tls is not None else ""))
        if tls is not None:
            trust = self.extra.get("evcc_trust_dir")
            launch = asyncio.ensure_future(self.sut.evcc_tls_launcher("::1", port, trust))
        else:
            launch = asyncio.ensure_future(self.sut.evcc_launcher("::1", port))
        done = asyncio.ensure_future(secc.done.wait())
        try:
            async with asyncio.timeout(timeout * self.sut.time_scale):
                await asyncio.wait({done, launch}, return_when=asyncio.FIRST_COMPLETED)
                if not done.done() and secc.connected_at is not None:
                    await done  # the EVCC is still in its session
                try:
                    out = await launch
                    self.evidence.note(f"EVCC under test finished: {str(out)[:300]}")
                except Exception as exc:  # noqa: BLE001 - the EVCC's own failure is evidence, not a harness error
                    self.evidence.note(f"EVCC under test ended with {type(exc).__name__}: {exc}", "warning")
                self.evcc_finished_at = self.evidence.now()
        except TimeoutError:
            self.evidence.note("EVCC under test did not finish in time", "error")
            launch.cancel()
        finally:
            done.cancel()
            secc.close()
        self.evcc_result = launch
        return secc

    def evcc_id(self) -> str:
        """An EVCCID unique to this case (a probe finds the session by it)."""
        import zlib

        return f"WMIT{zlib.crc32(self.case.id.encode()) & 0xFFFFFF:06X}{len(self.testers):02d}"
