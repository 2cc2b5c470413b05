"""Campaign runner: probe each SUT, run the selected cases (several SUTs in parallel, optionally
several cases at once per SUT), collect :class:`~conformance.evidence.CaseResult`s."""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.catalogue import Abort, CaseContext, Inconclusive, TestCase
from conformance.evidence import CaseResult, Evidence, Verdict
from conformance.sut import SutEndpoint
from iso15118.session.services import EnergyService

Progress = Callable[[SutEndpoint, TestCase, CaseResult], None]


def _verdict(ctx: CaseContext, exc: BaseException | None) -> tuple[Verdict, str]:
    failed = [c for c in ctx.checks if not c.ok]
    if isinstance(exc, Inconclusive):
        if failed:  # a failure seen before the case gave up still counts
            return Verdict.FAIL, f"{failed[0].requirement}: {failed[0].detail}"
        return Verdict.INCONCLUSIVE, str(exc)
    if exc is not None and not isinstance(exc, Abort):
        if failed:
            return Verdict.FAIL, f"{failed[0].requirement}: {failed[0].detail} (then: {type(exc).__name__}: {exc})"
        return Verdict.ERROR, f"{type(exc).__name__}: {exc}"
    if failed:
        return Verdict.FAIL, f"{failed[0].requirement}: {failed[0].detail}"
    if not ctx.checks:
        return Verdict.ERROR, "the case made no checks (never a silent pass)"
    return Verdict.PASS, f"{len(ctx.checks)} checks passed"


def applicable(tc: TestCase, sut: SutEndpoint) -> str | None:
    """Why ``tc`` cannot run against ``sut`` (None: it can)."""
    if tc.role != sut.role:
        return f"not applicable: a {tc.role}-under-test case, the SUT is an {sut.role}"
    if sut.role == "EVCC":
        return None if sut.evcc_launcher is not None else "no EVCC launcher"
    fam = sut.info.families()
    if "tls" in tc.needs and not sut.tls:
        return "not applicable: needs a TLS endpoint (--tls)"
    if "notls" in tc.needs and sut.tls:
        return "not applicable: needs a plain TCP endpoint"
    if "probe" in tc.needs and sut.probe is None:
        return "needs a power probe (--probe) to observe the output state"
    if "control" in tc.needs and sut.control is None:
        return "needs the lab control interface (--control) to cause grid / EVSE events"
    for f in ("AC", "DC"):
        if f in tc.needs and f not in fam:
            return f"not applicable: the SUT offers no {f} service"
    if "BPT" in tc.needs:
        want = [s for s in sut.info.services if s.bpt and (not ({"AC", "DC"} & tc.needs) or s.ac_dc.value in tc.needs)]
        if not want:
            return "not applicable: the SUT offers no BPT service"
    return None


async def run_case(tc: TestCase, sut: SutEndpoint, extra: dict[str, Any] | None = None) -> CaseResult:
    """Run one case against one SUT; never raises."""
    evidence = Evidence()
    ctx = CaseContext(tc, sut, evidence, extra)
    started = time.time()
    exc: BaseException | None = None
    why = applicable(tc, sut)
    if why is not None:
        exc = Inconclusive(why)
    else:
        try:
            if sut.before_case is not None:
                await sut.before_case()
            evidence.note(f"case {tc.id} against {sut.name}")
            async with asyncio.timeout(tc.timeout):
                await tc.run(ctx)
        except TimeoutError as e:
            exc = e if not ctx.checks else Abort("case timeout")
            if ctx.checks:
                ctx.check("harness: case finished within its time limit", False, f"case took more than {tc.timeout:g} s")
            else:
                exc = RuntimeError(f"case timed out after {tc.timeout:g} s")
        except (Inconclusive, Abort) as e:
            exc = e
        except Exception as e:  # noqa: BLE001 - reported as verdict error with traceback
            exc = e
            evidence.note("harness error:\n" + traceback.format_exc(), "error")
        finally:
            for t in ctx.testers:
                await t.close()
    verdict, reason = _verdict(ctx, exc)
    for t in ctx.testers:
        for name, vals in t.response_times.items():
            key = f"max_rt_{name}"
            ctx.metrics[key] = max(ctx.metrics.get(key, 0.0), max(vals))
    return CaseResult(
        tc.id, tc.title, sut.name, verdict, reason, evidence.now(), evidence, ctx.checks, tc.tags, tc.group,
        tc.requirement, ctx.metrics, started,
    )


async def probe_services(sut: SutEndpoint) -> None:
    """Find out which energy services the SUT offers: one short session per family
    (SupportedAppProtocol -> ... -> ServiceDiscovery, then SessionStop)."""
    from conformance.tester import TesterEvcc
    from conformance.tester_ev import TesterEV

    found: set[EnergyService] = set()
    for fam_services in ((EnergyService.AC_BPT, EnergyService.AC), (EnergyService.DC_BPT, EnergyService.DC)):
        if sut.before_case is not None:
            await sut.before_case()
        ev = TesterEV(services=fam_services, evcc_id="WMIPROBE000000000001")
        t = TesterEvcc(sut, Evidence(), [], ev=ev)
        try:
            held = await t.run(lambda n, msg: n == "ServiceDetailReq", max_time=20)
            if held is not None:
                found |= {EnergyService(s) for s in t.core.offered_services if s in {int(x) for x in EnergyService}}
                import iso15118.messages as m

                await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE))
            else:
                sut.info.notes.append(f"{fam_services[0].ac_dc.value}: {t.ended.reason if t.ended else 'no session'}")
        except Exception as exc:  # noqa: BLE001
            sut.info.notes.append(f"probe {fam_services[0].ac_dc.value}: {type(exc).__name__}: {exc}")
        finally:
            await t.close()
    sut.info.services = found
    sut.info.probed = True


@dataclass
class Campaign:
    """Results of one run over one or more SUTs."""

    results: list[CaseResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float = 0.0
    suts: list[SutEndpoint] = field(default_factory=list)

    def counts(self, sut: str | None = None) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for r in self.results:
            if sut is None or r.sut == sut:
                out[r.verdict.value] += 1
        return out


async def run_sut(
    sut: SutEndpoint, cases: list[TestCase], *, progress: Progress | None = None, probe: bool = True,
    extra: dict[str, Any] | None = None,
) -> list[CaseResult]:
    """All ``cases`` against one SUT (``sut.jobs`` at a time), in catalogue order."""
    if probe and not sut.info.services and sut.role == "SECC":
        await probe_services(sut)
    sem = asyncio.Semaphore(max(1, sut.jobs))
    # long cases first so they overlap with the short ones
    order = sorted(range(len(cases)), key=lambda i: -cases[i].timeout if "long" in cases[i].tags else 0)
    results: list[CaseResult | None] = [None] * len(cases)

    async def one(i: int) -> None:
        async with sem:
            r = await run_case(cases[i], sut, extra)
            results[i] = r
            # Finished results live until the report.  Moving them out of the collector's
            # generations keeps full collections short: a 250 ms GC pause in this process
            # would show up as a late response of the SUT (in-process SUTs) or of the tester.
            gc.freeze()
            if progress is not None:
                progress(sut, cases[i], r)

    await asyncio.gather(*(one(i) for i in order))
    return [r for r in results if r is not None]


async def run_campaign(
    suts: Iterable[SutEndpoint], cases: list[TestCase], *, progress: Progress | None = None, probe: bool = True,
    extra: dict[str, Any] | None = None,
) -> Campaign:
    """Every case against every SUT; SUTs run in parallel."""
    camp = Campaign(suts=list(suts))
    per = await asyncio.gather(*(run_sut(s, cases, progress=progress, probe=probe, extra=extra) for s in camp.suts))
    for rs in per:
        camp.results.extend(rs)
    camp.ended = time.time()
    return camp
