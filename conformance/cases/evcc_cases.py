"""EVCC-under-test cases: the harness is the charger (tester SECC) and deviates on purpose."""

from __future__ import annotations

import dataclasses
from typing import Any

from conformance.cases._common import wrong_id
from conformance.catalogue import CaseContext, case
from conformance.tester_secc import Action, Script, TesterSecc
from iso15118 import messages as m

RC = m.ResponseCode


def _after(secc: TesterSecc, t: float) -> list[str]:
    return [n for tm, n, _ in secc.requests if tm > t]


def _tx_time(ctx: CaseContext, name: str, nth: int = 1) -> float | None:
    hits = [e.t for e in ctx.evidence.messages("tx") if e.name.startswith(name)]
    return hits[nth - 1] if len(hits) >= nth else None


@case("TC_EVCC_SAP_001", "SAP request offers -20 with valid entries", group="SAP",
      purpose="The EVCC offers -20 namespaces with major 1, unique SchemaIDs and priorities 1-20.",
      requirement="digest §2 (AppProtocol 1-20 entries, SchemaID unique, Priority 1..20, -20 major 1)",
      steps=("accept the EVCC", "check its supportedAppProtocolReq", "let the session run"),
      tags=("sap", "evcc"))
async def evcc_sap_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    sap = next((msg for _, n, msg in secc.requests if n == "supportedAppProtocolReq"), None)
    ctx.require("digest §2: supportedAppProtocolReq first", bool(secc.requests) and secc.requests[0][1] == "supportedAppProtocolReq",
                f"first request {secc.requests[0][1] if secc.requests else None}")
    assert sap is not None  # required above
    protos = sap.app_protocol
    ids = [p.schema_id for p in protos]
    ok20 = [p for p in protos if p.protocol_namespace.startswith("urn:iso:std:iso:15118:-20:")]
    ctx.check("digest §2: -20 namespace offered with major 1", bool(ok20) and all(p.version_number_major == 1 for p in ok20),
              f"{[(p.protocol_namespace, p.version_number_major) for p in protos]}")
    ctx.check("digest §2: unique SchemaIDs, priorities 1..20", len(ids) == len(set(ids)) and all(1 <= p.priority <= 20 for p in protos),
              f"SchemaIDs {ids}, priorities {[p.priority for p in protos]}")


@case("TC_EVCC_SessionSetup_001", "New session with SessionID 0, then the assigned ID everywhere", group="SessionSetup",
      purpose="The first SessionSetupReq carries 8 zero bytes; every later request carries the ID the SECC assigned.",
      requirement="digest §6.4 (first SessionSetupReq 8 zero bytes; every later message carries the assigned ID)",
      steps=("run a normal session", "check the SessionID of every request"),
      tags=("session", "session_id", "evcc"))
async def evcc_ss_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    ss = next((msg for _, n, msg in secc.requests if n == "SessionSetupReq"), None)
    ctx.require("digest §3.1: SessionSetupReq sent", ss is not None, "none")
    assert ss is not None
    ctx.check("digest §6.4: SessionSetupReq SessionID = 8 zero bytes", ss.header.session_id == bytes(8), ss.header.session_id.hex())
    later = [(n, msg.header.session_id) for _, n, msg in secc.requests if msg is not None and n not in
             ("supportedAppProtocolReq", "SessionSetupReq")]
    bad = [n for n, sid in later if sid != secc.core.session_id]
    ctx.check("digest §6.4: the assigned SessionID in every later request", bool(later) and not bad,
              f"{len(later)} requests, {len(bad)} with another ID")
    ctx.check("digest §3.1: the session ran to SessionStop", "SessionStopReq" in secc.names(), f"{len(secc.requests)} requests")


class _WrongIdScript(Script):
    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name == "ServiceDiscoveryReq":
            secc.evidence.mark("wrong SessionID in the response")
            bad = dataclasses.replace(res, header=dataclasses.replace(res.header, session_id=wrong_id(secc.core.session_id)))
            return Action("replace", message=bad)
        return Action()


@case("TC_EVCC_SessionSetup_002", "EVCC terminates on a response with a wrong SessionID", group="SessionSetup",
      purpose="A response carrying another SessionID is not accepted by the EVCC.",
      requirement="digest §6.4 (J EVCC terminates on mismatch)",
      steps=("answer ServiceDiscoveryReq with a wrong SessionID", "expect no further session request; connection closed"),
      tags=("session", "session_id", "negative", "evcc"))
async def evcc_ss_002(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_WrongIdScript())
    t = _tx_time(ctx, "ServiceDiscoveryRes")
    ctx.precondition(t is not None, "no ServiceDiscoveryRes sent")
    assert t is not None
    after = [n for n in _after(secc, t) if n != "SessionStopReq"]
    ctx.check("digest §6.4: no further requests after the wrong SessionID", not after, f"after: {after}")
    ctx.check("digest §6.3: the EVCC closes the connection", secc.closed_by_evcc_at is not None, f"closed at {secc.closed_by_evcc_at}")


class _FailedScript(Script):
    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name == "PowerDeliveryReq" and n == 1:
            secc.evidence.mark("FAILED_ContactorError")
            return Action("replace", message=m.PowerDeliveryRes(header=res.header, response_code=RC.FAILED_CONTACTOR_ERROR))
        return Action()


@case("TC_EVCC_PowerDelivery_001", "EVCC stops on FAILED_ContactorError", group="PowerDelivery",
      purpose="A FAILED code ends the session on the EV side too: no charge loop after it.",
      requirement="digest §5.1 (EVCC terminates on any FAILED code)",
      steps=("answer the first PowerDeliveryReq with FAILED_ContactorError", "expect no ChargeLoopReq; connection closed"),
      tags=("powerdelivery", "negative", "evcc", "abort"))
async def evcc_pd_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_FailedScript())
    t = _tx_time(ctx, "PowerDeliveryRes")
    ctx.precondition(t is not None, "no PowerDeliveryRes")
    assert t is not None
    after = _after(secc, t)
    ctx.check("digest §5.1: no energy transfer after FAILED", not any(n.endswith("ChargeLoopReq") for n in after), f"after: {after}")
    ctx.check("digest §6.3: the EVCC closes the connection", secc.closed_by_evcc_at is not None, f"closed at {secc.closed_by_evcc_at}")


class _NotifyScript(Script):
    def __init__(self, kind: str, delay: int) -> None:
        self.kind, self.delay, self.sent = kind, delay, False

    def before(self, secc: TesterSecc, name: str, msg: Any, n: int) -> None:
        if name.endswith("ChargeLoopReq") and n == 3 and not self.sent:
            self.sent = True
            secc.core.notify(self.kind, self.delay)
            secc.evidence.mark(f"EVSE {self.kind} notification")


@case("TC_EVCC_Notification_001", "EVSE Terminate: EV stops at once and terminates", group="Notification",
      purpose="With EVSENotification=Terminate (NotificationMaxDelay 0) the EV's next request is PowerDelivery(Stop), then SessionStop(Terminate).",
      requirement="digest §5.2 (Terminate: J EVCC -> PowerDelivery(Stop) -> [WeldingDetection] -> SessionStop(Terminate))",
      steps=("charge loop", "ChargeLoopRes #3 with EVSEStatus Terminate", "expect PowerDeliveryReq(Stop) next, SessionStop(Terminate)"),
      tags=("notification", "abort", "evcc", "loop"))
async def evcc_notify_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_NotifyScript("Terminate", 0))
    names = secc.names()
    i = [k for k, n in enumerate(names) if n.endswith("ChargeLoopReq")]
    ctx.precondition(len(i) >= 3, f"{len(i)} loops")
    nxt = secc.requests[i[2] + 1] if len(secc.requests) > i[2] + 1 else None
    ok = nxt is not None and nxt[1] == "PowerDeliveryReq" and nxt[2].charge_progress.value == "Stop"
    ctx.check("digest §5.2: next request PowerDeliveryReq(Stop)", ok, f"next: {nxt[1] if nxt else None}")
    stop = next((msg for _, n, msg in secc.requests if n == "SessionStopReq"), None)
    ctx.check("digest §5.2: SessionStop(Terminate)", stop is not None and stop.charging_session.value == "Terminate",
              f"{stop.charging_session.value if stop else None}")


@case("TC_EVCC_Notification_002", "EVSE Pause: EV pauses the session", group="Notification",
      purpose="With EVSENotification=Pause the EV stops power and ends with SessionStop(Pause) within NotificationMaxDelay.",
      requirement="digest §5.2 (Pause, NotificationMaxDelay 60 s Dynamic [V2G20-1850])",
      steps=("charge loop", "ChargeLoopRes #3 with EVSEStatus Pause (60 s)", "expect PowerDelivery(Stop) and SessionStop(Pause) in time"),
      tags=("notification", "pause", "evcc", "loop"))
async def evcc_notify_002(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_NotifyScript("Pause", 60))
    stop = [(tm, msg) for tm, n, msg in secc.requests if n == "SessionStopReq"]
    mark = next((tm for tm, lbl in ctx.evidence.markers if "Pause" in lbl), None)
    ctx.check("digest §5.2: SessionStop(Pause)", bool(stop) and stop[-1][1].charging_session.value == "Pause",
              f"{stop[-1][1].charging_session.value if stop else None}")
    if stop and mark is not None:
        ctx.check("digest §5.2: within NotificationMaxDelay (60 s)", stop[-1][0] - mark <= 60.0, f"{stop[-1][0] - mark:.2f} s")


class _LateScript(Script):
    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name.endswith("ChargeLoopReq") and n == 3:
            secc.evidence.mark("ChargeLoopRes held 1.2 s (limit 0.5 s)")
            return Action("delay", delay=1.2)
        return Action()


@case("TC_EVCC_Timing_001", "EVCC reacts to a performance timeout in the charge loop", group="Timing",
      purpose="A ChargeLoopRes later than 0.5 s: the EVCC gives up (no further requests) and closes the connection.",
      requirement="digest §6.1 (ChargeLoop 0.5 s) / §6.3 (EVCC timeout -> stop, close TCP at 5 s)",
      steps=("hold ChargeLoopRes #3 for 1.2 s", "expect no request after the timeout", "expect TCP closed within 0.5 + 5 + 1 s"),
      tags=("timing", "abort", "evcc", "loop"))
async def evcc_timing_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_LateScript())
    loops = [tm for tm, n, _ in secc.requests if n.endswith("ChargeLoopReq")]
    ctx.precondition(len(loops) >= 3, f"{len(loops)}")
    t3 = loops[2]
    after = _after(secc, t3)
    ctx.check("digest §6.3: no request after the missed response", not after, f"after: {after}")
    closed = secc.closed_by_evcc_at
    ctx.check("digest §6.3: the EVCC closed TCP within 6.5 s", closed is not None and closed - t3 <= 6.5,
              f"{closed - t3:.2f} s after the unanswered request" if closed else "not closed")
    if closed is not None:
        ctx.metric("evcc_close_after_timeout_s", closed - t3)


class _OngoingScript(Script):
    def __init__(self) -> None:
        self.until: float | None = None

    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name == "AuthorizationReq" and n <= 3:
            return Action("replace", message=dataclasses.replace(res, evse_processing=m.Processing.ONGOING))
        return Action()


@case("TC_EVCC_Authorization_001", "EVCC repeats AuthorizationReq while Ongoing", group="Authorization",
      purpose="Ongoing authorization is polled with the same request (only TimeStamp changes) until Finished.",
      requirement="digest §5.4 ([V2G20-1582] resend unaltered except TimeStamp) / §6.2 Ongoing 60 s",
      steps=("answer 3 AuthorizationReq with Ongoing", "check 4 requests, identical but for TimeStamp", "session goes on"),
      tags=("authorization", "evcc"))
async def evcc_auth_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_OngoingScript())
    reqs = [msg for _, n, msg in secc.requests if n == "AuthorizationReq"]
    ctx.check("digest §5.4: AuthorizationReq repeated while Ongoing", len(reqs) >= 4, f"{len(reqs)} AuthorizationReq")
    same = all(dataclasses.replace(r, header=dataclasses.replace(r.header, time_stamp=0)) ==
               dataclasses.replace(reqs[0], header=dataclasses.replace(reqs[0].header, time_stamp=0)) for r in reqs)
    ctx.check("digest §5.4: repeated unaltered except TimeStamp", same, "identical" if same else "differs")
    ctx.check("digest §3.1: session continued to ServiceDiscovery", "ServiceDiscoveryReq" in secc.names(), "")


class _GarbageScript(Script):
    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name == "ServiceDetailReq":
            secc.evidence.mark("malformed EXI response")
            return Action("raw", raw=bytes.fromhex("ffffdeadbeef00112233445566778899"))
        return Action()


@case("TC_EVCC_V2GTP_001", "EVCC terminates on a malformed response", group="V2GTP",
      purpose="An undecodable response must not be acted on; the EVCC ends the session.",
      requirement="digest §1.2 / §6.3 (error -> stop, close)",
      steps=("answer ServiceDetailReq with garbage EXI", "expect no further request; connection closed"),
      tags=("transport", "malformed", "negative", "evcc"))
async def evcc_v2gtp_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_GarbageScript())
    t = _tx_time(ctx, "ServiceDetailRes")
    ctx.precondition(t is not None, "no ServiceDetail")
    assert t is not None
    after = [n for n in _after(secc, t) if n not in ("SessionStopReq", "reconnect", "frame after the end")]
    ctx.check("digest §6.3: no session progress after a malformed response", not after, f"after: {after}")
    closed = secc.closed_by_evcc_at
    ctx.check("digest §6.3: the EVCC closes the connection within 2 + 5 + 1.5 s", closed is not None and closed - t <= 8.5,
              f"closed {closed - t:.2f} s after the malformed response" if closed is not None else "not closed")


@case("TC_EVCC_ChargeLoop_001", "EVCC follows the SECC's Dynamic target power over the loop", group="ChargeLoop",
      purpose="In Dynamic mode the EV's present power in request n+1 equals EVSETargetActivePower of response n (clipped only to "
              "the EV's own limits of that request), cycle after cycle -- not merely stays below it.",
      requirement="digest §3.2 (Dynamic: SECC decides; AC EVPresentActivePower mandatory)",
      steps=("AC_BPT Dynamic session", "compare EVPresentActivePower of request n+1 with EVSETargetActivePower of response n",
             "at least 3 comparable cycles, none off by more than 1 % + 100 W"),
      tags=("loop", "dynamic", "evcc"))
async def evcc_loop_001(ctx: CaseContext) -> None:
    from conformance.cases.evcc_more import follows

    await ctx.run_evcc()
    data = follows(ctx, "digest §3.2: the EV's present power follows the SECC's target", min_pairs=3)
    ctx.check("digest §3.2: energy actually flows (a loop at 0 W proves nothing)", any(abs(p) > 100 for _, p in data),
              f"present powers {[round(p) for _, p in data][:8]}")
