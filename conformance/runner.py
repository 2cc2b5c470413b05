"""Campaign runner: reach each SUT first (connect, TLS where asked, SupportedAppProtocol and
SessionSetup), find out or read what it supports, run the selected cases (several SUTs in
parallel, optionally several cases at once per SUT), collect :class:`~conformance.evidence.CaseResult`s.

Verdict rules the runner enforces on top of each case's checks:

* an unreachable SUT (nothing listening, no answer, a failed TLS / SAP / SessionSetup handshake)
  makes every selected case an **error** "SUT unreachable: <why>";
* a SUT that stops accepting connections in the middle of a campaign: the case after which it
  became unreachable **fails** (it took the SUT out of service), the cases not run are errors,
  and the campaign says so once (``Campaign.notes``);
* a case with nothing to evaluate is an **error**, never a pass.

Exit status (:meth:`Campaign.exit_status`): 0 = every selected case passed or is not applicable
(declared unsupported); 1 = at least one case failed; 2 = an error, an unreachable SUT, an
undecided (inconclusive) case, or bad usage.
"""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.catalogue import Abort, CaseContext, Inconclusive, TestCase
from conformance.evidence import CaseResult, Check, Evidence, Verdict
from conformance.sut import SutEndpoint
from iso15118.session.services import EnergyService

Progress = Callable[[SutEndpoint, TestCase, CaseResult], None]
Reach = Callable[[SutEndpoint], Awaitable[str | None]]
"""A reach check: None when the SUT is reachable, else why not."""

UNREACHABLE = "SUT unreachable"
CHAIN_REFUSED = "the SUT's certificate chain breaks the -20 rules"
"""Not unreachable: the SUT answered the TLS handshake, with a chain no -20 vehicle may accept
(positive evidence of a defect, so every selected case fails)."""
NOT_APPLICABLE = "not applicable"


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
        return Verdict.ERROR, "the case made no checks: nothing to evaluate (never a silent pass)"
    return Verdict.PASS, f"{len(ctx.checks)} checks passed"


def applicable(tc: TestCase, sut: SutEndpoint) -> str | None:
    """Why ``tc`` cannot run against ``sut`` (None: it can)."""
    if tc.role != sut.role:
        return f"{NOT_APPLICABLE}: a {tc.role}-under-test case, the SUT is an {sut.role}"
    if sut.role == "EVCC":
        if sut.evcc_launcher is None:
            return "no EVCC launcher"
        if "tls" in tc.needs and sut.evcc_tls_launcher is None:
            return f"{NOT_APPLICABLE}: no TLS launch of the EVCC under test (--evcc-tls CMD / a local: EVCC)"
        for f in sorted(tc.needs - {"tls"}):
            if sut.info.features.get(f) is False:
                return f"{NOT_APPLICABLE}: the EVCC declares '{f}' unsupported"
        return None
    fam = sut.info.families()
    if sut.info.probed and not sut.info.services:
        fam = {"AC", "DC"}  # the probe found nothing: the cases run and fail, never "not applicable"
    if "tls" in tc.needs and not sut.tls:
        return f"{NOT_APPLICABLE}: needs a TLS endpoint (--tls)"
    if "notls" in tc.needs and sut.tls:
        return f"{NOT_APPLICABLE}: needs a plain TCP endpoint"
    if "probe" in tc.needs and sut.probe is None:
        return f"{NOT_APPLICABLE}: the lab has no power probe (--probe) to observe the output state"
    if "control" in tc.needs and sut.control is None:
        return f"{NOT_APPLICABLE}: the lab has no control interface (--control) to cause grid / EVSE events"
    for f in ("AC", "DC"):
        if f in tc.needs and f not in fam:
            return f"{NOT_APPLICABLE}: the SUT offers no {f} service"
    if "BPT" in tc.needs and not (sut.info.probed and not sut.info.services):
        want = [s for s in sut.info.services
                if s.bpt and (not ({"AC", "DC"} & tc.needs) or (s.family is not None and s.family.value in tc.needs))]
        if not want:
            return f"{NOT_APPLICABLE}: the SUT offers no BPT service"
    for f in sorted(tc.needs - {"AC", "DC", "BPT", "tls", "notls", "probe", "control"}):
        if sut.info.features.get(f) is False:
            return f"{NOT_APPLICABLE}: the SUT declares '{f}' unsupported"
    return None


def _result(tc: TestCase, sut: SutEndpoint, verdict: Verdict, reason: str, evidence: Evidence | None = None,
            checks: list[Check] | None = None) -> CaseResult:
    ev = evidence or Evidence()
    if evidence is None:
        ev.note(reason, "error")
    return CaseResult(tc.id, tc.title, sut.name, verdict, reason, ev.now(), ev, checks or [], tc.tags, tc.group,
                      tc.requirement, {}, time.time())


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
            async with asyncio.timeout(tc.timeout * sut.time_scale):
                await tc.run(ctx)
                if "negative" in tc.tags and tc.role == "SECC" and ctx.checks and all(c.ok for c in ctx.checks):
                    # a refusal counts only if the SUT is still in service afterwards
                    for t in ctx.testers:
                        await t.close()
                    await alive(ctx, "liveness after the refusal")
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
                if getattr(t, "values", None) is not None:
                    t.values.finish()
    verdict, reason = _verdict(ctx, exc)
    for t in ctx.testers:
        for name, vals in t.response_times.items():
            key = f"max_rt_{name}"
            ctx.metrics[key] = max(ctx.metrics.get(key, 0.0), max(vals))
    r = CaseResult(
        tc.id, tc.title, sut.name, verdict, reason, evidence.now(), evidence, ctx.checks, tc.tags, tc.group,
        tc.requirement, ctx.metrics, started,
    )
    r.connect = _connect_record(ctx)  # type: ignore[attr-defined]
    return r


def _connect_record(ctx: CaseContext) -> tuple[bool, str]:
    """(some connection of this case succeeded, the last connect error or failed liveness check)."""
    ok = any(getattr(t, "connected", False) for t in ctx.testers)
    errs = [t.connect_error for t in ctx.testers if getattr(t, "connect_error", "")]
    if ctx.liveness_failure:
        errs.append(ctx.liveness_failure)
    return ok, errs[-1] if errs else ""


# ---------------------------------------------------------------------------- reach and capabilities


async def alive(ctx: CaseContext, label: str = "liveness") -> bool:
    """A fresh connection completes SupportedAppProtocol and SessionSetup (in the protocol of a DIN / -2 case)."""
    if ctx.protocol is not None:
        from conformance.tester_legacy import reach_legacy

        why = await reach_legacy(ctx.sut, ctx.protocol, ctx.evidence)
    else:
        why = await reach_sut(ctx.sut, ctx.evidence)
    if why is not None:
        ctx.liveness_failure = why
    return ctx.check(f"{label}: a fresh connection completes SAP and SessionSetup", why is None, why or "new session established")


async def reach_sut(sut: SutEndpoint, evidence: Evidence | None = None) -> str | None:
    """Connect (TLS where asked), complete SupportedAppProtocol and SessionSetup, stop the session.
    Returns None when the SUT is reachable, else why not."""
    import iso15118.messages as m
    from conformance.tester import TesterEvcc
    from conformance.tester_ev import TesterEV

    if sut.role == "EVCC":
        return await reach_evcc(sut, evidence)
    if sut.info.features.get("iso20") is False and sut.tls:  # -2 on TLS 1.2 (facts.transport: no -20 there)
        from conformance.tester_iso2_pnc import reach_iso2_tls

        return await reach_iso2_tls(sut, evidence)
    if sut.info.features.get("iso20") is False:  # a DIN / -2 only charger: the gate speaks what it declares
        from conformance.legacy import DIN, ISO2
        from conformance.tester_legacy import reach_legacy

        proto = ISO2 if sut.info.features.get("iso2") is not False else DIN
        return await reach_legacy(sut, proto, evidence)
    if sut.before_case is not None:
        await sut.before_case()
    services = tuple(sorted(sut.info.services, key=lambda s: (not s.bpt, s.value))) or tuple(EnergyService)
    ev = TesterEV(services=services, evcc_id="WMIREACH000000000001")
    ev_log = evidence or Evidence()
    t = TesterEvcc(sut, ev_log, [], ev=ev)
    try:
        held = await t.run(lambda n, msg: n == "AuthorizationSetupReq", max_time=15)
    except (OSError, TimeoutError) as exc:
        return _refusal(t) or t.connect_error or f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001
        return _refusal(t) or t.connect_error or f"{type(exc).__name__}: {exc}"
    if t.chain_refused:
        return _refusal(t)
    try:
        if held is None:
            if t.ended is not None:
                return f"the SupportedAppProtocol / SessionSetup handshake failed: {t.ended.reason}"
            return "no answer to SupportedAppProtocol / SessionSetup"
        try:
            await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE), timeout=3.0)
        except Exception:  # noqa: BLE001 - reachability is settled
            pass
        return None
    finally:
        await t.close()


def _refusal(t: Any) -> str | None:
    """The gate's reason when the tester refused the SUT's chain in the handshake."""
    return f"{CHAIN_REFUSED}: {t.connect_error}" if getattr(t, "chain_refused", False) else None


async def reach_evcc(sut: SutEndpoint, evidence: Evidence | None = None) -> str | None:
    """The EVCC under test connects to a tester SECC and completes SAP and SessionSetup."""
    from conformance.tester_secc import TesterSecc

    if sut.evcc_launcher is None:
        return "no EVCC launcher"
    if sut.info.features.get("iso20") is False:  # a DIN / -2 only vehicle: the gate speaks what it declares
        from conformance.charger_legacy import reach_legacy_evcc

        return await reach_legacy_evcc(sut, evidence)
    ev = evidence or Evidence()
    secc = TesterSecc(ev, [], profile=sut.evcc_profile)
    port = await secc.start()
    launch = asyncio.ensure_future(sut.evcc_launcher("::1", port))
    try:
        async with asyncio.timeout(60 * sut.time_scale):
            await secc.done.wait()
    except TimeoutError:
        pass
    finally:
        secc.close()
    try:
        await asyncio.wait_for(launch, 15)
    except Exception:  # noqa: BLE001
        launch.cancel()
    names = secc.names()
    if secc.connected_at is None:
        return "the EVCC under test never connected to the tester SECC"
    if "SessionSetupReq" not in names:
        return f"the EVCC under test connected but did not complete SAP and SessionSetup (requests: {names[:4]})"
    return None


async def probe_capabilities(sut: SutEndpoint) -> None:
    """Find out what the SUT supports: one short session per energy family (SupportedAppProtocol
    -> ... -> ServiceDetail, then SessionStop): services, authorization modes, control modes,
    service renegotiation."""
    import iso15118.messages as m
    from conformance.tester import TesterEvcc
    from conformance.tester_ev import TesterEV
    from iso15118.session.services import ParameterSetOffer

    found: set[EnergyService] = set()
    for fam_services in ((EnergyService.AC_BPT, EnergyService.AC), (EnergyService.DC_BPT, EnergyService.DC)):
        if sut.before_case is not None:
            await sut.before_case()
        ev = TesterEV(services=fam_services, evcc_id="WMIPROBE000000000001")
        log = Evidence()
        t = TesterEvcc(sut, log, [], ev=ev)
        try:
            held = await t.run(lambda n, msg: n == "ServiceDetailReq", max_time=20)
            if held is not None:
                found |= {EnergyService(s) for s in t.core.offered_services if s in {int(x) for x in EnergyService}}
                sut.info.authorization |= set(t.core.auth_services)
                sut.info.features["service_renegotiation"] = bool(t.core.renegotiation_supported)
                rx = await t.exchange(held.message)
                if rx.answered and isinstance(rx.msg, m.ServiceDetailRes):
                    for ps in rx.msg.service_parameter_list.parameter_set:
                        sut.info.control_modes.add(ParameterSetOffer.from_message(ps).control_mode.name.capitalize())
                await t.exchange(m.SessionStopReq(header=t.header(), charging_session=m.ChargingSession.TERMINATE), timeout=3.0)
            else:
                sut.info.notes.append(f"{fam_services[0].family.value}: {t.ended.reason if t.ended else 'no session'}")  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001
            sut.info.notes.append(f"probe {fam_services[0].family.value}: {type(exc).__name__}: {exc}")  # type: ignore[union-attr]
        finally:
            await t.close()
    sut.info.services = found
    sut.info.probed = True
    sut.info.source = sut.info.source or "probe"
    if sut.info.authorization:
        sut.info.features.setdefault("pnc", "PnC" in sut.info.authorization)


probe_services = probe_capabilities  # the former name


@dataclass
class Campaign:
    """Results of one run over one or more SUTs."""

    results: list[CaseResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float = 0.0
    suts: list[SutEndpoint] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    """Per SUT, what the report says once (unreachable, out of service after a case)."""

    def counts(self, sut: str | None = None) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for r in self.results:
            if sut is None or r.sut == sut:
                out[r.verdict.value] += 1
        return out

    def headline(self, sut: str | None = None) -> list[str]:
        return [f"{name}: {n}" for name, ns in self.notes.items() if sut is None or name == sut for n in ns]

    def exit_status(self) -> int:
        """0 = every case passed or is not applicable; 1 = a failure; 2 = an error, an
        unreachable SUT or an undecided case."""
        if any(s.info.reachable is False for s in self.suts):
            return 2
        if any(r.verdict is Verdict.ERROR for r in self.results):
            return 2
        if any(r.verdict is Verdict.FAIL for r in self.results):
            return 1
        if any(r.verdict is Verdict.INCONCLUSIVE and not r.reason.startswith(NOT_APPLICABLE) for r in self.results):
            return 2
        return 0


async def run_sut(
    sut: SutEndpoint, cases: list[TestCase], *, progress: Progress | None = None, probe: bool = True,
    extra: dict[str, Any] | None = None, reach: bool | Reach = True, notes: list[str] | None = None,
) -> list[CaseResult]:
    """All ``cases`` against one SUT (``sut.jobs`` at a time), in catalogue order.

    ``reach``: check the SUT is reachable first (connect, SAP, SessionSetup; or the given check,
    e.g. a DIN / -2 one for replays); ``probe``: find out its capabilities when none were declared."""
    notes = notes if notes is not None else []
    mine = [c for c in cases if c.role == sut.role]
    if reach:
        why = await (reach(sut) if callable(reach) else reach_sut(sut))
        sut.info.reachable = why is None
        sut.info.unreachable_reason = why or ""
        if why is not None and why.startswith(CHAIN_REFUSED):
            sut.info.reachable, sut.info.unreachable_reason = True, ""
            notes.append(f"{why} -- every selected case fails: no -20 vehicle may talk to this SUT")
            verdict, msg = Verdict.FAIL, why
        elif why is not None:
            verdict, msg = Verdict.ERROR, f"{UNREACHABLE}: {why}"
            notes.append(f"{msg} -- none of the {len(mine)} selected cases could run")
        if why is not None:
            out = []
            for c in cases:
                r = _result(c, sut, verdict, msg)
                out.append(r)
                if progress is not None:
                    progress(sut, c, r)
            return out
    if probe and not sut.info.services and sut.role == "SECC":
        await probe_capabilities(sut)
    sem = asyncio.Semaphore(max(1, sut.jobs))
    # long cases first so they overlap with the short ones
    order = sorted(range(len(cases)), key=lambda i: -cases[i].timeout if "long" in cases[i].tags else 0)
    results: list[CaseResult | None] = [None] * len(cases)
    finished: list[int] = []
    down: dict[str, str] = {}

    async def one(i: int) -> None:
        async with sem:
            tc = cases[i]
            if down:
                r = _result(tc, sut, Verdict.ERROR, f"not run: {UNREACHABLE} since {down['after']}")
            else:
                r = await run_case(tc, sut, extra)
                ok, err = getattr(r, "connect", (True, ""))
                if err and not down and tc.role == sut.role:
                    why = await reach_sut(sut)
                    if why is not None and not down:
                        blame_i = i if ok or not finished else finished[-1]
                        blame = cases[blame_i]
                        down["after"] = blame.id
                        down["why"] = why
                        notes.append(f"the SUT stopped accepting connections after {blame.id} ({why}); "
                                     "the cases after it were not run")
                        br = r if blame_i == i else results[blame_i]
                        if br is not None:
                            c = Check("safe state: the SUT keeps serving new sessions after this case", False,
                                      f"after this case the SUT became unreachable: {why}")
                            br.checks.append(c)
                            br.verdict, br.reason = Verdict.FAIL, f"{c.requirement}: {c.detail}"
                        if blame_i != i:
                            r.verdict, r.reason = Verdict.ERROR, f"{UNREACHABLE} since {blame.id}: {why}"
            results[i] = r
            finished.append(i)
            # Finished results live until the report.  Moving them out of the collector's
            # generations keeps full collections short: a 250 ms GC pause in this process
            # would show up as a late response of the SUT (in-process SUTs) or of the tester.
            gc.freeze()
            if progress is not None:
                progress(sut, tc, r)

    await asyncio.gather(*(one(i) for i in order))
    return [r for r in results if r is not None]


async def run_campaign(
    suts: Iterable[SutEndpoint], cases: list[TestCase], *, progress: Progress | None = None, probe: bool = True,
    extra: dict[str, Any] | None = None, reach: bool | Reach = True,
) -> Campaign:
    """Every case against every SUT; SUTs run in parallel."""
    camp = Campaign(suts=list(suts))
    for s in camp.suts:
        camp.notes.setdefault(s.name, [])
    per = await asyncio.gather(*(run_sut(s, [c for c in cases if c.role == s.role] or cases, progress=progress,
                                         probe=probe, extra=extra, reach=reach, notes=camp.notes[s.name])
                                 for s in camp.suts))
    for rs in per:
        camp.results.extend(rs)
    camp.notes = {k: v for k, v in camp.notes.items() if v}
    camp.ended = time.time()
    return camp
