"""The vehicle side of the catalogue (EVCC under test), ISO 15118-21 style: the harness is the
charger (tester SECC) and deviates on purpose.  Same evidence and verdict rules as the SECC side:
the deviation must have happened (else the EVCC failed before the step), a refusal needs positive
evidence (no further request, the connection closed in time), and loop-following is judged over
the whole loop, never vacuously."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from conformance.catalogue import CaseContext, case
from conformance.tester_secc import Action, Script, TesterSecc
from iso15118 import messages as m
from iso15118.session.services import ControlMode, ParameterSetOffer, rn, to_decimal
from iso15118.transport.v2gtp import encode_header

RC = m.ResponseCode
APR = m.AppProtocolResponseCode
CLOSE_LIMIT = 2.0 + 5.0 + 1.5
"""digest §6.3: an EVCC that gives up closes TCP 5 s after the timeout that ended it (+1.5 s)."""
IGNORED = ("SessionStopReq", "reconnect", "frame after the end")


def _f(x: Any) -> float | None:
    return float(to_decimal(x)) if x is not None else None


def _sid(secc: TesterSecc, res: Any) -> Any:
    return res.header


# ---------------------------------------------------------------------------------------------- scripts


class Deviate(Script):
    """Deviate on the ``nth`` request called ``on`` (``on`` ending in ``*``: any name with that start)."""

    def __init__(self, on: str, act: Callable[[TesterSecc, Any, Any], Action], nth: int = 1, label: str = "") -> None:
        self.on, self.act, self.nth, self.label = on, act, nth, label or on
        self.at: float | None = None
        self.fired = 0

    def _match(self, name: str) -> bool:
        return name.endswith(self.on[1:]) if self.on.startswith("*") else name == self.on

    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if self._match(name) and n == self.nth and self.at is None:
            self.at = secc.evidence.now()
            self.fired += 1
            secc.evidence.mark(f"deviation: {self.label}")
            return self.act(secc, req, res)
        return Action()


def failed(code: Any) -> Callable[[TesterSecc, Any, Any], Action]:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        from iso15118.session.secc import minimal_response

        return Action("replace", message=minimal_response(req.ELEMENT[1], res.header, code))
    return act


def replace(**fields: Any) -> Callable[[TesterSecc, Any, Any], Action]:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        return Action("replace", message=dataclasses.replace(res, **fields))
    return act


def late(seconds: float) -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("delay", delay=seconds)


def drop() -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("drop")


def close() -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("close")


def raw(payload: bytes, payload_type: int | None = None) -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("raw", raw=payload, payload_type=payload_type)


def frame(build: Callable[[Any], bytes]) -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("frame", raw=build(res))


def wrong_type(other: Callable[[Any], Any]) -> Callable[[TesterSecc, Any, Any], Action]:
    return lambda secc, req, res: Action("replace", message=other(res))


def wrong_sid(secc: TesterSecc, req: Any, res: Any) -> Action:
    bad = bytes(b ^ 0x5A for b in secc.core.session_id)
    return Action("replace", message=dataclasses.replace(res, header=dataclasses.replace(res.header, session_id=bad)))


def _bad_header(res: Any) -> bytes:
    body = m.encode(res)
    h = bytearray(encode_header(0x8002, len(body)))
    h[0], h[1] = 0x02, 0xFD
    return bytes(h) + body


def _oversized(res: Any) -> bytes:
    return encode_header(0x8002, 0x7FFFFFF0) + bytes(64)


# ---------------------------------------------------------------------------------------------- checks


def after(secc: TesterSecc, t: float, ignore: tuple[str, ...] = IGNORED) -> list[str]:
    return [n for tm, n, _ in secc.requests if tm > t and n not in ignore]


async def expect_gives_up(ctx: CaseContext, secc: TesterSecc, dev: Deviate, requirement: str) -> None:
    """The EVCC does not act on the deviation: no further session request, no energy transfer,
    and it closes the connection within the allowed time."""
    ctx.precondition(dev.at is not None, f"the EVCC never sent the request the deviation answers ({dev.on})")
    assert dev.at is not None
    nxt = after(secc, dev.at)
    ctx.check(f"{requirement}: no further session request", not nxt, f"after the deviation: {nxt[:6]}" if nxt else "none")
    closed = secc.closed_by_evcc_at
    took = closed - dev.at if closed is not None else None
    ctx.check("digest §6.3: the EVCC closes the connection (timeout + 5 s close, +1.5 s)",
              took is not None and took <= CLOSE_LIMIT + _delay(dev),
              f"closed {took:.2f} s after the deviation" if took is not None else "connection never closed by the EVCC")


def _delay(dev: Deviate) -> float:
    return getattr(dev, "extra", 0.0)


def loop_pairs(ctx: CaseContext) -> list[tuple[Any, Any]]:
    """(ChargeLoopRes sent by the tester, the EVCC's next ChargeLoopReq) pairs."""
    out: list[tuple[Any, Any]] = []
    pending = None
    for e in ctx.evidence.entries:
        if e.direction == "tx" and e.name.endswith("ChargeLoopRes") and e.decoded:
            pending = e
        elif e.direction == "rx" and e.name.endswith("ChargeLoopReq") and pending is not None:
            out.append((pending, e))
            pending = None
    return out


def _target(res: dict[str, Any]) -> float | None:
    cm = res.get("control_mode") or {}
    v = cm.get("evse_target_active_power")
    return float(v) if v is not None else None


def _present(req: dict[str, Any]) -> float | None:
    cm = req.get("control_mode") or {}
    v = cm.get("ev_present_active_power")
    return float(v) if v is not None else None


def _ev_max(req: dict[str, Any], key: str) -> float | None:
    v = (req.get("control_mode") or {}).get(key)
    return float(v) if v is not None else None


def follows(ctx: CaseContext, requirement: str, *, since: float = 0.0, min_pairs: int = 3) -> list[tuple[float, float]]:
    """Over the loop: the EV's present power in request n+1 follows the SECC's target in response
    n (equal within 1 % + 100 W, clipped only to the EV's own limits of that request)."""
    pairs = [(r, q) for r, q in loop_pairs(ctx) if r.t >= since]
    data: list[tuple[float, float]] = []
    bad: list[str] = []
    for res, req in pairs:
        tgt, pres = _target(res.decoded or {}), _present(req.decoded or {})
        if tgt is None or pres is None:
            continue
        lim = _ev_max(req.decoded or {}, "ev_maximum_charge_power" if tgt >= 0 else "ev_maximum_discharge_power")
        want = tgt if lim is None else (min(tgt, lim) if tgt >= 0 else max(tgt, -lim))
        data.append((want, pres))
        if abs(pres - want) > 0.01 * abs(want) + 100:
            bad.append(f"t={req.t:.2f}: present {pres:.0f} W vs target {want:.0f} W")
    ctx.check(requirement, len(data) >= min_pairs and not bad,
              f"{len(data)} cycles compared (need >= {min_pairs}), {len(bad)} not following" + (f"; first {bad[0]}" if bad else ""))
    return data


def first_req(secc: TesterSecc, name: str) -> Any:
    return next((msg for _, n, msg in secc.requests if n == name), None)


def reqs(secc: TesterSecc, name: str) -> list[Any]:
    return [msg for _, n, msg in secc.requests if n == name]


# ---------------------------------------------------------------------------------------------- give-up cases


def _rn_power(res: Any, watts: float) -> Any:
    cm = res.control_mode
    return dataclasses.replace(res, control_mode=dataclasses.replace(cm, evse_target_active_power=rn(watts)))


GIVE_UP: list[tuple[str, str, str, int, Callable[[TesterSecc, Any, Any], Action], str, tuple[str, ...], float]] = [
    ("TC_EVCC_SAP_002", "Failed_NoNegotiation ends the attempt", "supportedAppProtocolReq", 1,
     replace(response_code=APR.FAILED_NO_NEGOTIATION, schema_id=None), "digest §2 (Failed_NoNegotiation: no common protocol)",
     ("sap", "negative"), 0.0),
    ("TC_EVCC_SAP_003", "SAP answered with a SchemaID that was not offered", "supportedAppProtocolReq", 1,
     replace(schema_id=99), "digest §2 (SchemaID identifies an offered entry)", ("sap", "negative"), 0.0),
    ("TC_EVCC_SAP_005", "Late SupportedAppProtocolRes (2.6 s > 2 s)", "supportedAppProtocolReq", 1, late(2.6),
     "digest §6.1 (supportedAppProtocolReq 2 s) / §6.3", ("sap", "timing", "late", "negative"), 2.6),
    ("TC_EVCC_SAP_006", "No SupportedAppProtocolRes at all", "supportedAppProtocolReq", 1, drop(),
     "digest §6.1 / §6.3 (timeout -> stop, close)", ("sap", "timing", "missing", "negative"), 0.0),
    ("TC_EVCC_SessionSetup_003", "SessionSetupRes FAILED ends the session", "SessionSetupReq", 1, failed(RC.FAILED),
     "digest §5.1 (EVCC terminates on any FAILED code)", ("session", "negative"), 0.0),
    ("TC_EVCC_SessionSetup_004", "Wrong SessionID in the charge loop", "*ChargeLoopReq", 2, wrong_sid,
     "digest §6.4 (a response with another SessionID is not accepted)", ("session", "session_id", "loop", "negative"), 0.0),
    ("TC_EVCC_Authorization_004", "AuthorizationRes FAILED: no service discovery, no charging", "AuthorizationReq", 1,
     failed(RC.FAILED), "digest §5.1 / §8.1 (not authorized: no energy transfer)", ("authorization", "negative"), 0.0),
    ("TC_EVCC_Authorization_005", "AuthorizationSetupRes FAILED", "AuthorizationSetupReq", 1, failed(RC.FAILED),
     "digest §5.1", ("authorization", "negative"), 0.0),
    ("TC_EVCC_ServiceDiscovery_005", "ServiceDiscoveryRes FAILED", "ServiceDiscoveryReq", 1, failed(RC.FAILED),
     "digest §5.1", ("services", "negative"), 0.0),
    ("TC_EVCC_ServiceDetail_001", "ServiceDetailRes FAILED_ServiceIDInvalid", "ServiceDetailReq", 1,
     failed(RC.FAILED_SERVICE_ID_INVALID), "digest §4.2 / §5.1", ("services", "negative"), 0.0),
    ("TC_EVCC_ServiceSelection_001", "ServiceSelectionRes FAILED_ServiceSelectionInvalid", "ServiceSelectionReq", 1,
     failed(RC.FAILED_SERVICE_SELECTION_INVALID), "digest §4.2 / §5.1", ("services", "negative"), 0.0),
    ("TC_EVCC_ChargeParameterDiscovery_003", "CPD answered FAILED_WrongChargeParameter", "*ChargeParameterDiscoveryReq", 1,
     failed(RC.FAILED_WRONG_CHARGE_PARAMETER), "digest §4.3 / §5.1", ("cpd", "negative"), 0.0),
    ("TC_EVCC_ScheduleExchange_006", "ScheduleExchangeRes FAILED", "ScheduleExchangeReq", 1, failed(RC.FAILED),
     "digest §5.1", ("schedule", "negative"), 0.0),
    ("TC_EVCC_PowerDelivery_002", "PowerDeliveryRes FAILED_PowerDeliveryNotApplied", "PowerDeliveryReq", 1,
     failed(RC.FAILED_POWER_DELIVERY_NOT_APPLIED), "digest §5.1 / §5.3", ("powerdelivery", "negative", "abort"), 0.0),
    ("TC_EVCC_ChargeLoop_009", "ChargeLoopRes FAILED mid-loop stops the energy transfer", "*ChargeLoopReq", 3,
     failed(RC.FAILED), "digest §5.1 (FAILED ends the session)", ("loop", "negative", "abort"), 0.0),
    ("TC_EVCC_V2GTP_002", "Response with V2GTP version 0x02", "ServiceDiscoveryReq", 1, frame(_bad_header),
     "digest §1.2 (receivers reject version != 0x01)", ("transport", "v2gtp", "malformed", "negative"), 0.0),
    ("TC_EVCC_V2GTP_003", "Response in the wrong payload type (0x8003 for a common message)", "ServiceDiscoveryReq", 1,
     lambda secc, req, res: Action("send", payload_type=0x8003), "digest §1.2 (payload type selects the grammar)",
     ("transport", "v2gtp", "negative"), 0.0),
    ("TC_EVCC_V2GTP_004", "Response of the wrong message type", "AuthorizationSetupReq", 1,
     wrong_type(lambda res: m.SessionSetupRes(header=res.header, response_code=RC.OK, evse_id="DE*TST*E1")),
     "digest §3.3 (the response must match the request)", ("transport", "sequence", "negative"), 0.0),
    ("TC_EVCC_V2GTP_006", "Empty payload as the response", "ServiceDetailReq", 1, raw(b""),
     "digest §1.2 (payload = EXI message)", ("transport", "v2gtp", "malformed", "negative"), 0.0),
    ("TC_EVCC_V2GTP_007", "Oversized announced length", "ServiceDetailReq", 1, frame(_oversized),
     "digest §1.2 (implementation limits; never wait for 2 GB)", ("transport", "v2gtp", "oversized", "negative"), 0.0),
    ("TC_EVCC_V2GTP_008", "Malformed EXI in the charge loop", "*ChargeLoopReq", 2,
     raw(bytes.fromhex("80ffee00112233445566778899aabbcc")), "digest §1.2 / §6.3", ("transport", "malformed", "loop", "negative"), 0.0),
    ("TC_EVCC_Timing_002", "Late SessionSetupRes (2.6 s > 2 s)", "SessionSetupReq", 1, late(2.6),
     "digest §6.1 (SessionSetup 2 s) / §6.3", ("timing", "late", "negative"), 2.6),
    ("TC_EVCC_Timing_004", "Missing PowerDeliveryRes", "PowerDeliveryReq", 1, drop(),
     "digest §6.1 (PowerDelivery 2 s) / §6.3 (timeout -> stop, close)", ("timing", "missing", "negative"), 0.0),
    ("TC_EVCC_Timing_008", "Late ServiceDetailRes (5.6 s > 5 s)", "ServiceDetailReq", 1, late(5.6),
     "digest §6.1 (ServiceDetail 5 s) / §6.3", ("timing", "late", "negative"), 5.6),
    ("TC_EVCC_Timing_009", "Late AuthorizationRes (2.6 s > 2 s)", "AuthorizationReq", 1, late(2.6),
     "digest §6.1 (Authorization 2 s) / §6.3", ("timing", "late", "negative", "authorization"), 2.6),
]


def _give_up_case(on: str, nth: int, act: Callable[[TesterSecc, Any, Any], Action], requirement: str,
                  extra: float) -> Callable[[CaseContext], Any]:
    async def run(ctx: CaseContext) -> None:
        dev = Deviate(on, act, nth)
        dev.extra = extra  # type: ignore[attr-defined]
        secc = await ctx.run_evcc(dev)
        await expect_gives_up(ctx, secc, dev, requirement)
        if "ChargeLoop" in on:
            return
        loops = [n for n in after(secc, dev.at or 0.0) if n.endswith("ChargeLoopReq") or n == "PowerDeliveryReq"]
        ctx.check("digest §5.1: no energy transfer after the deviation", not loops, f"{len(loops)} energy-transfer requests")
    return run


for _id, _title, _on, _nth, _act, _req, _tags, _extra in GIVE_UP:
    case(_id, _title, group=_id.split("_")[2], purpose=f"{_title}: the EVCC must not act on it; it ends the session and closes.",
         requirement=_req, steps=(f"answer {_on} #{_nth} with the deviation", "expect no further session request",
                                  "expect the EVCC to close TCP in time"),
         tags=(*_tags, "evcc"), timeout=40.0)(_give_up_case(_on, _nth, _act, _req, _extra))


# ---------------------------------------------------------------------------------------------- SAP / session / auth


@case("TC_EVCC_SAP_004", "OK_SuccessfulNegotiationWithMinorDeviation is accepted", group="SAP",
      purpose="A minor-deviation SAP answer is a successful negotiation: the EVCC continues with SessionSetupReq.",
      requirement="digest §2 (Version check; minor deviation is OK)", steps=("answer SAP with the minor-deviation code",
                                                                             "expect SessionSetupReq next"),
      tags=("sap", "evcc"))
async def evcc_sap_004(ctx: CaseContext) -> None:
    dev = Deviate("supportedAppProtocolReq", replace(response_code=APR.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION))
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no supportedAppProtocolReq")
    nxt = after(secc, dev.at or 0.0, ("reconnect",))
    ctx.check("digest §2: SessionSetupReq follows a minor-deviation negotiation", bool(nxt) and nxt[0] == "SessionSetupReq",
              f"next: {nxt[:1]}")


@case("TC_EVCC_SessionSetup_005", "EVCCID present and plausible", group="SessionSetup",
      purpose="SessionSetupReq carries the EVCCID (1..255 characters, printable).",
      requirement="digest §6.4 / X:CT evccIDType (1..255)", steps=("run a session", "check EVCCID"), tags=("session", "evcc"))
async def evcc_ss_005(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    ss = first_req(secc, "SessionSetupReq")
    ctx.precondition(ss is not None, "no SessionSetupReq")
    ok = 1 <= len(ss.evcc_id) <= 255 and ss.evcc_id.isprintable()
    ctx.check("X:CT EVCCID 1..255 printable characters", ok, repr(ss.evcc_id))


@case("TC_EVCC_Authorization_002", "EIM selected with an EIM element when only EIM is offered", group="Authorization",
      purpose="With AuthorizationServices=[EIM] the EVCC selects EIM and sends EIM_AReqAuthorizationMode.",
      requirement="digest §8.1 ([V2G20-2567]) / §5.1 AuthorizationReq", steps=("run a session", "check AuthorizationReq"),
      tags=("authorization", "eim", "evcc"))
async def evcc_auth_002(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    a = first_req(secc, "AuthorizationReq")
    ctx.precondition(a is not None, "no AuthorizationReq")
    ctx.check("digest §8.1: EIM selected with the EIM element", a.selected_authorization_service.value == "EIM"
              and isinstance(a.authorization_mode, m.EIMAReqAuthorizationMode),
              f"{a.selected_authorization_service.value} {type(a.authorization_mode).__name__}")


def _offer_pnc(only: bool) -> Callable[[TesterSecc, Any, Any], Action]:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        svcs = [m.Authorization.PNC] if only else [m.Authorization.EIM, m.Authorization.PNC]
        return Action("replace", message=dataclasses.replace(res, authorization_services=svcs,
                      authorization_mode=m.PnCASResAuthorizationMode(gen_challenge=bytes(range(16)), supported_providers=None)))
    return act


@case("TC_EVCC_Authorization_006", "PnC offered over plain TCP is not used", group="Authorization",
      purpose="Plug & Charge needs TLS: offered over plain TCP (a broken charger), the EVCC must not send a PnC AuthorizationReq.",
      requirement="digest §1.3 (PnC without TLS must not be used) / §8.1", steps=("offer PnC only over TCP",
                                                                                "expect no PnC AuthorizationReq"),
      tags=("authorization", "pnc", "negative", "evcc"))
async def evcc_auth_006(ctx: CaseContext) -> None:
    dev = Deviate("AuthorizationSetupReq", _offer_pnc(True), label="PnC only, plain TCP")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no AuthorizationSetupReq")
    pnc = [a for a in reqs(secc, "AuthorizationReq") if a.selected_authorization_service.value == "PnC"]
    ctx.check("digest §1.3: no PnC over plain TCP", not pnc, f"{len(pnc)} PnC AuthorizationReq")
    ctx.check("digest §8.1: no energy transfer without authorization", "PowerDeliveryReq" not in secc.names(),
              f"requests {secc.names()[:8]}")


@case("TC_EVCC_Authorization_007", "EIM and PnC offered over plain TCP: EIM is chosen", group="Authorization",
      purpose="With both offered on plain TCP the EVCC authorizes with EIM and the session goes on.",
      requirement="digest §1.3 / §8.1", steps=("offer EIM and PnC over TCP", "expect EIM and a charge loop"),
      tags=("authorization", "pnc", "eim", "evcc"))
async def evcc_auth_007(ctx: CaseContext) -> None:
    dev = Deviate("AuthorizationSetupReq", _offer_pnc(False), label="EIM+PnC, plain TCP")
    secc = await ctx.run_evcc(dev)
    a = first_req(secc, "AuthorizationReq")
    ctx.precondition(a is not None, "no AuthorizationReq")
    ctx.check("digest §1.3: EIM over plain TCP", a.selected_authorization_service.value == "EIM",
              a.selected_authorization_service.value)
    ctx.check("digest §3.1: the session reaches the charge loop", any(n.endswith("ChargeLoopReq") for n in secc.names()),
              f"{len(secc.requests)} requests")


class _Ongoing(Script):
    def __init__(self, on: str, rounds: int) -> None:
        self.on, self.rounds = on, rounds

    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        if name == self.on and n <= self.rounds:
            return Action("replace", message=dataclasses.replace(res, evse_processing=m.Processing.ONGOING))
        return Action()


@case("TC_EVCC_Authorization_008", "Authorization Ongoing for ever: the EVCC gives up within 60 s", group="Authorization",
      purpose="An authorization that never finishes must not keep the vehicle waiting past V2G_EVCC_Ongoing_Timeout.",
      requirement="digest §6.2 (V2G_EVCC_Ongoing_Timeout 60 s) / §6.3", steps=("answer every AuthorizationReq Ongoing",
                                                                              "expect the EVCC to stop within 60 s + 6.5 s"),
      tags=("authorization", "timing", "long", "evcc"), timeout=95.0)
async def evcc_auth_008(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_Ongoing("AuthorizationReq", 10_000), timeout=85.0)
    times = [tm for tm, n, _ in secc.requests if n == "AuthorizationReq"]
    ctx.precondition(bool(times), "no AuthorizationReq")
    span = times[-1] - times[0]
    closed = secc.closed_by_evcc_at
    ctx.check("digest §6.2: no AuthorizationReq after V2G_EVCC_Ongoing_Timeout (60 s, +1 s)", span <= 61.0,
              f"{len(times)} requests over {span:.1f} s")
    ctx.check("digest §6.3: the EVCC ends the session within 60 + 6.5 s", closed is not None and closed - times[0] <= 66.5,
              f"closed {closed - times[0]:.1f} s after the first AuthorizationReq" if closed else "never closed")
    ctx.check("digest §8.1: no energy transfer without authorization", "ServiceDiscoveryReq" not in secc.names(),
              f"{secc.names()[-3:]}")


# ---------------------------------------------------------------------------------------------- services


def _only_modes(mode: ControlMode) -> Callable[[TesterSecc, Any, Any], Action]:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        sets = [ps for ps in res.service_parameter_list.parameter_set if ParameterSetOffer.from_message(ps).control_mode is mode]
        return Action("replace", message=dataclasses.replace(
            res, service_parameter_list=dataclasses.replace(res.service_parameter_list, parameter_set=sets)))
    return act


@case("TC_EVCC_ServiceSelection_002", "The EVCC selects an offered service and parameter set", group="ServiceSelection",
      purpose="ServiceSelectionReq names a ServiceID from ServiceDiscoveryRes and a ParameterSetID from ServiceDetailRes.",
      requirement="digest §4.2 ([V2G20-...] selection from the offers)", steps=("run a session", "compare selection and offers"),
      tags=("services", "evcc"))
async def evcc_ssel_002(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    sel = first_req(secc, "ServiceSelectionReq")
    ctx.precondition(sel is not None, "no ServiceSelectionReq")
    offered = [e.decoded for e in ctx.evidence.messages("tx", "ServiceDiscoveryRes")]
    ids = [s["service_id"] for s in (offered[0] or {}).get("energy_transfer_service_list", {}).get("service", [])] if offered else []
    det = [e.decoded for e in ctx.evidence.messages("tx", "ServiceDetailRes")]
    sets = [p["parameter_set_id"] for d in det for p in (d or {}).get("service_parameter_list", {}).get("parameter_set", [])]
    chosen = sel.selected_energy_transfer_service
    ctx.check("digest §4.2: selected ServiceID was offered", chosen.service_id in ids, f"{chosen.service_id} of {ids}")
    ctx.check("digest §4.2: selected ParameterSetID was offered", chosen.parameter_set_id in sets, f"{chosen.parameter_set_id} of {sets}")


@case("TC_EVCC_ServiceDiscovery_002", "Only a service the vehicle cannot use is offered", group="ServiceDiscovery",
      purpose="ServiceDiscoveryRes offers only WPT (ServiceID 3): the EVCC must not select anything and ends with SessionStop.",
      requirement="digest §4.1 (Service IDs) / §4.2", steps=("offer only ServiceID 3", "expect no ServiceSelectionReq, SessionStop"),
      tags=("services", "negative", "evcc"))
async def evcc_sd_002(ctx: CaseContext) -> None:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        lst = m.ServiceList(service=[m.Service(service_id=3, free_service=False)])
        return Action("replace", message=dataclasses.replace(res, energy_transfer_service_list=lst))
    dev = Deviate("ServiceDiscoveryReq", act, label="only WPT offered")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no ServiceDiscoveryReq")
    nxt = after(secc, dev.at or 0.0, ("reconnect",))
    ctx.check("digest §4.2: no selection of a service the EV cannot use", "ServiceSelectionReq" not in nxt
              and "ServiceDetailReq" not in [n for n in nxt if True][:1] or not nxt, f"after: {nxt[:4]}")
    ctx.check("digest §3.3: the EVCC ends the session (SessionStop) or closes", not nxt or nxt[0] == "SessionStopReq",
              f"after: {nxt[:4]}")


@case("TC_EVCC_ServiceDiscovery_003", "Unusual offer order and extra services", group="ServiceDiscovery",
      purpose="Services listed in an unusual order with extra IDs (3, 4) and a VAS list: the EVCC still asks details only for "
              "offered services and selects one of the negotiated family.",
      requirement="digest §4.1 / §2 last paragraph (services of the negotiated family)", steps=("reorder and extend the offer",
                                                                                                 "check ServiceDetail / Selection"),
      tags=("services", "evcc"))
async def evcc_sd_003(ctx: CaseContext) -> None:
    def act(secc: TesterSecc, req: Any, res: Any) -> Action:
        mine = [s for s in res.energy_transfer_service_list.service]
        lst = m.ServiceList(service=[m.Service(service_id=4, free_service=True), *reversed(mine), m.Service(service_id=3, free_service=False)])
        vas = m.ServiceList(service=[m.Service(service_id=65, free_service=True)])
        return Action("replace", message=dataclasses.replace(res, energy_transfer_service_list=lst, vas_list=vas))
    dev = Deviate("ServiceDiscoveryReq", act, label="unusual offer")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no ServiceDiscoveryReq")
    fam = {1, 5} if (secc.core.family is None or secc.core.family.value == "AC") else {2, 6}
    det = [d.service_id for d in reqs(secc, "ServiceDetailReq")]
    sel = first_req(secc, "ServiceSelectionReq")
    ctx.check("digest §4.2: ServiceDetailReq only for offered services of the family", bool(det) and set(det) <= fam, f"{det}")
    ctx.check("digest §4.2: a service of the negotiated family selected", sel is not None
              and sel.selected_energy_transfer_service.service_id in fam,
              f"{sel.selected_energy_transfer_service.service_id if sel else None}")


@case("TC_EVCC_ServiceRenegotiation_001", "ServiceRenegotiation notification: stop, renegotiate or terminate", group="Notification",
      purpose="EVSENotification ServiceRenegotiation: the EV stops power (PowerDelivery Stop) and, since the charger supports "
              "renegotiation, ends with SessionStop(ServiceRenegotiation) and a new ServiceDiscoveryReq.",
      requirement="digest §5.2 (ServiceRenegotiation) / §5.3 / [V2G20-1477]",
      steps=("ChargeLoopRes #3 with ServiceRenegotiation", "expect PowerDelivery(Stop), SessionStop(ServiceRenegotiation), ServiceDiscoveryReq"),
      tags=("notification", "renegotiation", "loop", "evcc"))
async def evcc_reneg_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_Notify("ServiceRenegotiation", 0))
    names = secc.names()
    loops = [i for i, n in enumerate(names) if n.endswith("ChargeLoopReq")]
    ctx.precondition(len(loops) >= 3, f"{len(loops)} loops")
    rest = names[loops[2] + 1:]
    pd = next((msg for tm, n, msg in secc.requests if n == "PowerDeliveryReq" and msg.charge_progress.value == "Stop"), None)
    ctx.check("digest §5.2: PowerDelivery(Stop) next", bool(rest) and rest[0] == "PowerDeliveryReq" and pd is not None, f"next {rest[:1]}")
    stops = reqs(secc, "SessionStopReq")
    ok = bool(stops) and stops[0].charging_session.value == "ServiceRenegotiation" and names.count("ServiceDiscoveryReq") >= 2
    ctx.check("digest §5.3: SessionStop(ServiceRenegotiation) and a new ServiceDiscovery", ok,
              f"SessionStop {[s.charging_session.value for s in stops]}, ServiceDiscoveryReq x{names.count('ServiceDiscoveryReq')}")


# ---------------------------------------------------------------------------------------------- CPD / schedule


@case("TC_EVCC_ChargeParameterDiscovery_001", "CPD element matches the selected service", group="ChargeParameterDiscovery",
      purpose="For a BPT service the EVCC sends the BPT CPD element (with discharge limits); for a non-BPT service the plain one.",
      requirement="digest §4.3 ([V2G20-1619] AC / [V2G20-2272] DC)", steps=("run a session", "compare CPD element and selection"),
      tags=("cpd", "bpt", "evcc"))
async def evcc_cpd_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    sel = first_req(secc, "ServiceSelectionReq")
    cpd = next((msg for _, n, msg in secc.requests if n.endswith("ChargeParameterDiscoveryReq")), None)
    ctx.precondition(sel is not None and cpd is not None, "no selection / CPD")
    assert sel is not None and cpd is not None
    bpt = sel.selected_energy_transfer_service.service_id in (5, 6)
    is_bpt = type(cpd.energy_transfer_mode).__name__.startswith("BPT")
    ctx.check("digest §4.3: BPT CPD element exactly for a BPT service", bpt == is_bpt,
              f"service {sel.selected_energy_transfer_service.service_id}, element {type(cpd.energy_transfer_mode).__name__}")


@case("TC_EVCC_ChargeParameterDiscovery_002", "EV CPD limits are plausible", group="ChargeParameterDiscovery",
      purpose="EV limits: 0 <= minimum <= maximum for power (charge, discharge) and current; maximum power below 1 MW.",
      requirement="digest §4.3 / X:CT RationalNumber ranges", steps=("run a session", "check the CPD limits"),
      tags=("cpd", "limits", "evcc"))
async def evcc_cpd_002(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    cpd = next((msg for _, n, msg in secc.requests if n.endswith("ChargeParameterDiscoveryReq")), None)
    ctx.precondition(cpd is not None, "no CPD")
    assert cpd is not None
    md = cpd.energy_transfer_mode
    bad = []
    for mx, mn in (("ev_maximum_charge_power", "ev_minimum_charge_power"), ("ev_maximum_discharge_power", "ev_minimum_discharge_power"),
                   ("ev_maximum_charge_current", "ev_minimum_charge_current"), ("ev_maximum_voltage", "ev_minimum_voltage")):
        a, b = _f(getattr(md, mx, None)), _f(getattr(md, mn, None))
        if a is not None and b is not None and not (0 <= b <= a):
            bad.append(f"{mn} {b} > {mx} {a}")
    p = _f(md.ev_maximum_charge_power)
    if p is None or p > 1e6:
        bad.append(f"EVMaximumChargePower {p}")
    ctx.check("plausibility: EV CPD limits 0 <= min <= max", not bad, "; ".join(bad) or "all consistent")


@case("TC_EVCC_ScheduleExchange_001", "Dynamic-only offer: Dynamic elements throughout", group="ScheduleExchange",
      purpose="When only Dynamic parameter sets are offered, ScheduleExchangeReq and the loop use the Dynamic elements.",
      requirement="digest §3.2 (control mode of the selected set)", steps=("offer only Dynamic sets", "check ScheduleExchange and loop elements"),
      tags=("schedule", "dynamic", "evcc"))
async def evcc_se_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(Deviate("ServiceDetailReq", _only_modes(ControlMode.DYNAMIC), label="Dynamic sets only"))
    se = first_req(secc, "ScheduleExchangeReq")
    loop = next((msg for _, n, msg in secc.requests if n.endswith("ChargeLoopReq")), None)
    ctx.precondition(se is not None and loop is not None, "no ScheduleExchange / loop")
    assert se is not None and loop is not None
    ctx.check("digest §3.2: Dynamic_SEReqControlMode", "Dynamic" in type(se.control_mode).__name__, type(se.control_mode).__name__)
    ctx.check("digest §3.2: Dynamic loop element", "Dynamic" in type(loop.control_mode).__name__, type(loop.control_mode).__name__)


def _scheduled_session(ctx: CaseContext) -> Any:
    return ctx.run_evcc(Deviate("ServiceDetailReq", _only_modes(ControlMode.SCHEDULED), label="Scheduled sets only"))


@case("TC_EVCC_ScheduleExchange_002", "Scheduled-only offer: the EVCC selects an offered ScheduleTuple", group="ScheduleExchange",
      purpose="Only Scheduled parameter sets: ScheduleExchangeReq is Scheduled and PowerDeliveryReq(Start) names an offered ScheduleTupleID.",
      requirement="digest §3.2 (Scheduled: the EV selects one of the offered tuples)", steps=("offer only Scheduled sets",
                                                                                             "check the selected tuple"),
      tags=("schedule", "scheduled", "evcc"))
async def evcc_se_002(ctx: CaseContext) -> None:
    secc = await _scheduled_session(ctx)
    se = first_req(secc, "ScheduleExchangeReq")
    pd = first_req(secc, "PowerDeliveryReq")
    ctx.precondition(se is not None and pd is not None, "no ScheduleExchange / PowerDelivery")
    ctx.check("digest §3.2: Scheduled_SEReqControlMode", "Scheduled" in type(se.control_mode).__name__, type(se.control_mode).__name__)
    res = [e.decoded for e in ctx.evidence.messages("tx", "ScheduleExchangeRes")]
    offered = [t["schedule_tuple_id"] for t in ((res[-1] or {}).get("control_mode") or {}).get("schedule_tuple", [])] if res else []
    prof = pd.ev_power_profile
    chosen = getattr(getattr(prof, "control_mode", None), "selected_schedule_tuple_id", None)
    ctx.check("digest §3.2: selected ScheduleTupleID was offered", chosen in offered, f"{chosen} of {offered}")


@case("TC_EVCC_ScheduleExchange_003", "Scheduled: the EV stays within the selected schedule", group="ScheduleExchange",
      purpose="In Scheduled mode the EV's present power never exceeds the charging schedule of the selected tuple.",
      requirement="digest §3.2 (Scheduled: EV follows the selected ScheduleTuple)", steps=("Scheduled session", "compare present power and schedule"),
      tags=("schedule", "scheduled", "loop", "limits", "evcc"))
async def evcc_se_003(ctx: CaseContext) -> None:
    secc = await _scheduled_session(ctx)
    res = [e.decoded for e in ctx.evidence.messages("tx", "ScheduleExchangeRes")]
    tuples = ((res[-1] or {}).get("control_mode") or {}).get("schedule_tuple", []) if res else []
    caps = [float(x["power"]) for t in tuples for x in ((t.get("charging_schedule") or {}).get("power_schedule") or {})
            .get("power_schedule_entries", {}).get("power_schedule_entry", [])]
    loops = [msg for _, n, msg in secc.requests if n.endswith("ChargeLoopReq")]
    ctx.precondition(bool(caps) and bool(loops), f"{len(caps)} schedule entries, {len(loops)} loops")
    cap = max(caps)
    pres = [_f(getattr(q.control_mode, "ev_present_active_power", None)) or 0.0 for q in loops]
    over_ = [p for p in pres if p > cap * 1.01 + 100]
    ctx.check("digest §3.2: present power within the schedule", not over_, f"{len(pres)} loops, max {max(pres):.0f} W, schedule max {cap:.0f} W")


@case("TC_EVCC_ScheduleExchange_004", "ScheduleExchange Ongoing is polled until Finished", group="ScheduleExchange",
      purpose="ScheduleExchangeRes Ongoing three times: the EVCC repeats ScheduleExchangeReq and continues.",
      requirement="digest §5.4 (ScheduleExchange loop)", steps=("answer 3 ScheduleExchangeReq Ongoing", "expect 4 requests and PowerDelivery"),
      tags=("schedule", "evcc"))
async def evcc_se_004(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc(_Ongoing("ScheduleExchangeReq", 3))
    n = len(reqs(secc, "ScheduleExchangeReq"))
    ctx.check("digest §5.4: ScheduleExchangeReq repeated while Ongoing", n >= 4, f"{n} ScheduleExchangeReq")
    ctx.check("digest §3.1: the session continues to PowerDelivery", "PowerDeliveryReq" in secc.names(), f"{secc.names()[-3:]}")


@case("TC_EVCC_ScheduleExchange_005", "ScheduleExchangeReq parameters are valid", group="ScheduleExchange",
      purpose="MaximumSupportingPoints within 12..1024; Dynamic: energy requests with min <= target <= max.",
      requirement="X:CT ScheduleExchangeReq (MaximumSupportingPoints 12..1024) / digest §3.2", steps=("run a session", "check the request"),
      tags=("schedule", "evcc"))
async def evcc_se_005(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    se = first_req(secc, "ScheduleExchangeReq")
    ctx.precondition(se is not None, "no ScheduleExchangeReq")
    ctx.check("X:CT MaximumSupportingPoints 12..1024", 12 <= se.maximum_supporting_points <= 1024, f"{se.maximum_supporting_points}")
    cm = se.control_mode
    t, mx, mn = (_f(getattr(cm, k, None)) for k in ("ev_target_energy_request", "ev_maximum_energy_request", "ev_minimum_energy_request"))
    if None not in (t, mx, mn):
        ctx.check("digest §3.2: EVMinimum <= EVTarget <= EVMaximumEnergyRequest", mn <= t <= mx, f"{mn} <= {t} <= {mx}")  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------- BPT and the loop


class _Outage(Script):
    """Grid outage (V2H) at loop ``at``: the tester charger commands export."""

    def __init__(self, at: int = 2) -> None:
        self.at = at
        self.t: float | None = None

    def before(self, secc: TesterSecc, name: str, msg: Any, n: int) -> None:
        if name.endswith("ChargeLoopReq") and n == self.at and self.t is None:
            import time

            secc.evse.set_grid_outage(time.monotonic(), True)
            self.t = secc.evidence.now()
            secc.evidence.mark("grid outage: export commanded")


@case("TC_EVCC_BPT_001", "Discharge limits present and plausible in every BPT loop request", group="BPT",
      purpose="BPT loop requests carry EVMaximum/MinimumDischargePower with 0 <= min <= max.",
      requirement="digest §4.3 (BPT additions; magnitudes)", steps=("AC_BPT session", "check every loop request"), tags=("bpt", "loop", "evcc"))
async def evcc_bpt_001(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    loops = [msg for _, n, msg in secc.requests if n.endswith("ChargeLoopReq")]
    ctx.precondition(bool(loops), "no charge loop")
    bpt = [q for q in loops if type(q.control_mode).__name__.startswith("BPT")]
    ctx.precondition(bool(bpt), "the EVCC did not use a BPT service")
    bad = [q for q in bpt if not (0 <= (_f(q.control_mode.ev_minimum_discharge_power) or 0) <= (_f(q.control_mode.ev_maximum_discharge_power) or -1))]
    ctx.check("digest §4.3: 0 <= EVMinimumDischargePower <= EVMaximumDischargePower", not bad, f"{len(bpt)} requests, {len(bad)} inconsistent")


@case("TC_EVCC_BPT_002", "V2H: the EV follows the export target within its discharge limit", group="BPT",
      purpose="After a grid outage the charger commands export; the EV's present power follows (negative) and never exceeds "
              "its declared EVMaximumDischargePower.",
      requirement="digest §4.3 (sign convention, discharge limits) / §3.2 Dynamic", steps=("AC_BPT Dynamic", "grid outage at loop 2",
                                                                                         "compare present power with the targets"),
      tags=("bpt", "discharge", "v2h", "loop", "evcc"))
async def evcc_bpt_002(ctx: CaseContext) -> None:
    scr = _Outage(2)
    secc = await ctx.run_evcc(scr)
    ctx.precondition(scr.t is not None, "the loop did not reach loop 2")
    data = follows(ctx, "digest §3.2: present power follows the export target", since=scr.t or 0.0, min_pairs=2)
    ctx.check("digest §4.3: energy flows out of the EV after the outage", any(p < -100 for _, p in data),
              f"present powers {[round(p) for _, p in data][:6]}")
    loops = [(msg) for tm, n, msg in secc.requests if n.endswith("ChargeLoopReq")]
    def exceeds(q: Any) -> bool:
        cm = q.control_mode
        limit = _f(getattr(cm, "ev_maximum_discharge_power", None)) or 0.0
        return (_f(cm.ev_present_active_power) or 0.0) < -(limit * 1.01 + 100)

    bad = [q for q in loops if exceeds(q)]
    ctx.check("digest §4.3: export within the EV's own EVMaximumDischargePower", not bad, f"{len(bad)} loops above")


@case("TC_EVCC_BPT_003", "BPT_ChannelSelection on PowerDelivery(Start) for BPT", group="BPT",
      purpose="For a BPT service PowerDeliveryReq(Start) carries BPT_ChannelSelection.",
      requirement="digest §4.3 (PowerDeliveryReq BPT_ChannelSelection)", steps=("AC_BPT session", "check PowerDeliveryReq(Start)"),
      tags=("bpt", "powerdelivery", "evcc"))
async def evcc_bpt_003(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    sel = first_req(secc, "ServiceSelectionReq")
    pd = next((msg for _, n, msg in secc.requests if n == "PowerDeliveryReq" and msg.charge_progress.value == "Start"), None)
    ctx.precondition(sel is not None and pd is not None, "no selection / PowerDelivery(Start)")
    assert sel is not None and pd is not None
    bpt = sel.selected_energy_transfer_service.service_id in (5, 6)
    ok = (pd.bpt_channel_selection is not None) if bpt else (pd.bpt_channel_selection is None)
    ctx.check("digest §4.3: BPT_ChannelSelection exactly for BPT services", ok, f"service {sel.selected_energy_transfer_service.service_id}, "
              f"channel {pd.bpt_channel_selection}")


@case("TC_EVCC_ChargeLoop_002", "The EV follows a lowered target within one cycle", group="ChargeLoop",
      purpose="The charger lowers EVSETargetActivePower to 3 kW from loop 3 on (a derate); the EV's present power follows at once.",
      requirement="digest §3.2 (Dynamic: the SECC decides)", steps=("AC Dynamic", "target 3 kW from ChargeLoopRes #3", "compare"),
      tags=("loop", "dynamic", "derate", "evcc"))
async def evcc_cl_002(ctx: CaseContext) -> None:
    class S(Script):
        def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
            if name == "AC_ChargeLoopReq" and n >= 3:
                if n == 3:
                    secc.evidence.mark("target lowered to 3 kW")
                return Action("replace", message=_rn_power(res, 3000))
            return Action()
    await ctx.run_evcc(S())
    mark = next((tm for tm, lbl in ctx.evidence.markers if "lowered" in lbl), None)
    ctx.precondition(mark is not None, "no AC charge loop reached loop 3")
    data = follows(ctx, "digest §3.2: present power follows the lowered target", since=mark or 0.0, min_pairs=2)
    ctx.check("derate: the EV draws <= 3 kW after the lowered target", bool(data) and all(p <= 3000 * 1.01 + 100 for _, p in data),
              f"{[round(p) for _, p in data]}")


@case("TC_EVCC_ChargeLoop_003", "Target 0 W: the EV stops drawing", group="ChargeLoop",
      purpose="EVSETargetActivePower 0 from loop 3 on: the EV's present power is 0 from the next request.",
      requirement="digest §3.2", steps=("AC Dynamic", "target 0 W from ChargeLoopRes #3", "check present power"),
      tags=("loop", "dynamic", "evcc"))
async def evcc_cl_003(ctx: CaseContext) -> None:
    class S(Script):
        def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
            if name == "AC_ChargeLoopReq" and n >= 3:
                if n == 3:
                    secc.evidence.mark("target 0 W")
                return Action("replace", message=_rn_power(res, 0))
            return Action()
    await ctx.run_evcc(S())
    mark = next((tm for tm, lbl in ctx.evidence.markers if "0 W" in lbl), None)
    ctx.precondition(mark is not None, "no AC charge loop reached loop 3")
    data = follows(ctx, "digest §3.2: present power 0 after a 0 W target", since=mark or 0.0, min_pairs=2)
    ctx.check("the EV draws nothing after the 0 W target", bool(data) and all(abs(p) <= 100 for _, p in data), f"{[round(p) for _, p in data]}")


@case("TC_EVCC_ChargeLoop_004", "Present power never above the EV's own maximum", group="ChargeLoop",
      purpose="EVPresentActivePower never exceeds the EVMaximumChargePower (or discharge) the same request declares.",
      requirement="digest §3.2 / §4.3", steps=("run a session", "check every loop request"), tags=("loop", "limits", "evcc"))
async def evcc_cl_004(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    loops = [msg for _, n, msg in secc.requests if n.endswith("ChargeLoopReq")]
    ctx.precondition(len(loops) >= 3, f"{len(loops)} loops")
    bad = []
    for q in loops:
        p = _f(getattr(q.control_mode, "ev_present_active_power", None)) or 0.0
        mx = _f(q.control_mode.ev_maximum_charge_power) or 0.0
        if p > mx * 1.01 + 100:
            bad.append(f"{p:.0f} > {mx:.0f}")
    ctx.check("digest §3.2: present power within the EV's own maximum", not bad,
              f"{len(loops)} loops, {len(bad)} above" + (f": {bad[0]}" if bad else ""))


@case("TC_EVCC_ChargeLoop_005", "Mandatory-in-context loop fields", group="ChargeLoop",
      purpose="AC loop requests carry EVPresentActivePower; DisplayParameters (if any) have a SOC within 0..100.",
      requirement="digest §3.2 (AC EVPresentActivePower mandatory) / X:CT percentValueType", steps=("run a session", "check each loop request"),
      tags=("loop", "evcc"))
async def evcc_cl_005(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    loops = [msg for _, n, msg in secc.requests if n.endswith("ChargeLoopReq")]
    ctx.precondition(bool(loops), "no charge loop")
    miss = [q for q in loops if isinstance(q, m.ACChargeLoopReq) and getattr(q.control_mode, "ev_present_active_power", None) is None]
    soc = [q.display_parameters.present_soc for q in loops if q.display_parameters is not None and q.display_parameters.present_soc is not None]
    ctx.check("digest §3.2: EVPresentActivePower in every AC loop request", not miss, f"{len(loops)} loops, {len(miss)} without")
    ctx.check("X:CT PresentSOC within 0..100", all(0 <= x <= 100 for x in soc), f"SOC values {sorted(set(soc))[:5]}")
    bad = []
    for q in loops:
        cm = q.control_mode
        t, mx, mn = (_f(getattr(cm, k, None)) for k in ("ev_target_energy_request", "ev_maximum_energy_request",
                                                         "ev_minimum_energy_request"))
        if None not in (t, mx, mn) and not (mn <= t <= mx):  # type: ignore[operator]
            bad.append(f"{mn} <= {t} <= {mx}")
    ctx.check("digest §3.2: EVMinimum <= EVTarget <= EVMaximumEnergyRequest in every Dynamic loop request", not bad,
              f"{len(bad)} inconsistent" + (f", first {bad[0]}" if bad else ""))


@case("TC_EVCC_ChargeLoop_006", "One request at a time (no pipelining)", group="ChargeLoop",
      purpose="While a ChargeLoopRes is held 0.3 s (in time), the EVCC sends nothing else.",
      requirement="digest §3.1 (request/response; one outstanding request)", steps=("hold ChargeLoopRes #2 for 0.3 s",
                                                                                   "expect no request meanwhile"),
      tags=("loop", "timing", "evcc"))
async def evcc_cl_006(ctx: CaseContext) -> None:
    dev = Deviate("*ChargeLoopReq", late(0.3), 2, "ChargeLoopRes held 0.3 s")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no second ChargeLoopReq")
    t0 = dev.at or 0.0
    between = [n for tm, n, _ in secc.requests if t0 < tm < t0 + 0.3]
    ctx.check("digest §3.1: no request while one is outstanding", not between, f"{between}")
    ctx.check("digest §6.1: a 0.3 s answer (within 0.5 s) does not end the session",
              any(n.endswith("ChargeLoopReq") for tm, n, _ in secc.requests if tm > t0 + 0.3), "the loop went on")


@case("TC_EVCC_ChargeLoop_007", "A normal end: PowerDelivery(Stop) before SessionStop", group="ChargeLoop",
      purpose="The EV ends energy transfer with PowerDelivery(Stop) and then SessionStop(Terminate); no loop request after Stop.",
      requirement="digest §3.3 (ChargeLoopRes: ChargeLoopReq or PowerDeliveryReq) / §5.3", steps=("run a session", "check the end"),
      tags=("loop", "powerdelivery", "sessionstop", "evcc"))
async def evcc_cl_007(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    names = secc.names()
    stop_i = next((i for i, (_, n, msg) in enumerate(secc.requests) if n == "PowerDeliveryReq" and msg.charge_progress.value == "Stop"), None)
    ctx.precondition(stop_i is not None, f"no PowerDelivery(Stop) in {names[-4:]}")
    rest = names[(stop_i or 0) + 1:]
    ctx.check("digest §3.3: no charge loop after PowerDelivery(Stop)", not any(n.endswith("ChargeLoopReq") for n in rest), f"{rest}")
    ctx.check("digest §5.3: SessionStop after PowerDelivery(Stop)", "SessionStopReq" in rest, f"{rest}")


# ---------------------------------------------------------------------------------------------- notifications


class _Notify(Script):
    def __init__(self, kind: str, delay: int, at: int = 3) -> None:
        self.kind, self.delay, self.at = kind, delay, at
        self.t: float | None = None

    def before(self, secc: TesterSecc, name: str, msg: Any, n: int) -> None:
        if name.endswith("ChargeLoopReq") and n == self.at and self.t is None:
            self.t = secc.evidence.now()
            secc.core.notify(self.kind, self.delay)
            secc.evidence.mark(f"EVSE {self.kind} notification")


@case("TC_EVCC_Notification_003", "Terminate with NotificationMaxDelay 5 s", group="Notification",
      purpose="EVSENotification Terminate with 5 s: SessionStop(Terminate) within 5 s.",
      requirement="digest §5.2 (NotificationMaxDelay)", steps=("notify Terminate (5 s) at loop 3", "expect SessionStop(Terminate) within 5 s"),
      tags=("notification", "abort", "loop", "evcc"))
async def evcc_notify_003(ctx: CaseContext) -> None:
    scr = _Notify("Terminate", 5)
    secc = await ctx.run_evcc(scr)
    ctx.precondition(scr.t is not None, "loop 3 not reached")
    stop = next(((tm, msg) for tm, n, msg in secc.requests if n == "SessionStopReq"), None)
    ok = stop is not None and stop[1].charging_session.value == "Terminate" and stop[0] - (scr.t or 0) <= 5.0
    ctx.check("digest §5.2: SessionStop(Terminate) within NotificationMaxDelay", ok,
              f"{stop[1].charging_session.value} after {stop[0] - (scr.t or 0):.2f} s" if stop else "no SessionStop")
    loops = [n for tm, n, _ in secc.requests if n.endswith("ChargeLoopReq") and tm > (scr.t or 0) + 0.01]
    ctx.check("digest §5.2: at most the in-flight loop request after Terminate", len(loops) <= 1, f"{len(loops)} loop requests after")


@case("TC_EVCC_Notification_004", "ExitStandby outside standby is harmless", group="Notification",
      purpose="An ExitStandby notification while charging (not in standby) must not break the session.",
      requirement="digest §5.2 (ExitStandby)", steps=("notify ExitStandby at loop 3", "expect the session to end normally"),
      tags=("notification", "standby", "loop", "evcc"))
async def evcc_notify_004(ctx: CaseContext) -> None:
    scr = _Notify("ExitStandby", 0)
    secc = await ctx.run_evcc(scr)
    ctx.precondition(scr.t is not None, "loop 3 not reached")
    ctx.check("digest §5.2: the session goes on and ends with SessionStop", "SessionStopReq" in secc.names()
              and secc.ended is not None and secc.ended.ok, f"{secc.names()[-3:]}, ended {secc.ended.reason if secc.ended else None}")


@case("TC_EVCC_Notification_005", "ScheduleRenegotiation is handled without breaking the session", group="Notification",
      purpose="EVSENotification ScheduleRenegotiation: the EV renegotiates (PowerDelivery ScheduleRenegotiation, ScheduleExchange) "
              "or goes on; the session ends cleanly.",
      requirement="digest §5.2 (ScheduleRenegotiation)", steps=("notify ScheduleRenegotiation at loop 3", "expect a clean end"),
      tags=("notification", "loop", "evcc"))
async def evcc_notify_005(ctx: CaseContext) -> None:
    scr = _Notify("ScheduleRenegotiation", 0)
    secc = await ctx.run_evcc(scr)
    ctx.precondition(scr.t is not None, "loop 3 not reached")
    ctx.check("digest §5.2: session ends cleanly after ScheduleRenegotiation", secc.ended is not None and secc.ended.ok,
              f"{secc.ended.reason if secc.ended else 'not ended'}; {secc.names()[-4:]}")


# ---------------------------------------------------------------------------------------------- timing / transport


@case("TC_EVCC_Timing_003", "A legal late answer (ServiceDetailRes at 4 s of 5 s) is accepted", group="Timing",
      purpose="ServiceDetail has a 5 s limit: an answer at 4 s must not end the session.",
      requirement="digest §6.1 (ServiceDetail 5 s)", steps=("hold ServiceDetailRes 4 s", "expect the session to go on"),
      tags=("timing", "late", "evcc"), timeout=50.0)
async def evcc_timing_003(ctx: CaseContext) -> None:
    dev = Deviate("ServiceDetailReq", late(4.0), label="ServiceDetailRes at 4 s")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no ServiceDetailReq")
    ctx.check("digest §6.1: the session continues after a 4 s ServiceDetailRes", "ServiceSelectionReq" in after(secc, dev.at or 0.0),
              f"after: {after(secc, dev.at or 0.0)[:3]}")


@case("TC_EVCC_Timing_005", "The EVCC closes TCP after SessionStopRes", group="Timing",
      purpose="After SessionStopRes the EVCC closes the connection (within the 5 s close delay).",
      requirement="digest §6.2 close delay / §5.3", steps=("run a session", "measure the close after SessionStopRes"),
      tags=("timing", "sessionstop", "evcc"))
async def evcc_timing_005(ctx: CaseContext) -> None:
    secc = await ctx.run_evcc()
    res = ctx.evidence.messages("tx", "SessionStopRes")
    ctx.precondition(bool(res), "no SessionStopRes")
    closed = secc.closed_by_evcc_at
    took = closed - res[-1].t if closed is not None else None
    ctx.check("digest §6.2: EVCC closed within 5 s (+1.5 s) after SessionStopRes", took is not None and took <= 6.5,
              f"{took:.2f} s" if took is not None else "not closed")
    if took is not None:
        ctx.metric("evcc_close_after_stop_s", took)


@case("TC_EVCC_V2GTP_005", "A response split over two TCP writes is reassembled", group="V2GTP",
      purpose="TCP is a byte stream: header and payload 50 ms apart still form one message.",
      requirement="digest §1.2 / RFC 9293 stream semantics", steps=("send ServiceDiscoveryRes in two writes", "expect the session to go on"),
      tags=("transport", "v2gtp", "reassembly", "evcc"))
async def evcc_v2gtp_005(ctx: CaseContext) -> None:
    dev = Deviate("ServiceDiscoveryReq", lambda secc, req, res: Action("split"), label="split frame")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "no ServiceDiscoveryReq")
    ctx.check("stream semantics: ServiceDetailReq follows the split answer", "ServiceDetailReq" in after(secc, dev.at or 0.0),
              f"after: {after(secc, dev.at or 0.0)[:3]}")


@case("TC_EVCC_V2GTP_009", "The charger closes TCP mid-loop: the EVCC ends cleanly", group="V2GTP",
      purpose="The charger drops the connection instead of answering ChargeLoopReq #3: no further request on it, the EVCC finishes.",
      requirement="digest §6.3 (connection loss -> stop)", steps=("close instead of ChargeLoopRes #3", "expect the EVCC to finish"),
      tags=("transport", "abort", "loop", "evcc"))
async def evcc_v2gtp_009(ctx: CaseContext) -> None:
    dev = Deviate("*ChargeLoopReq", close(), 3, "charger closed TCP")
    secc = await ctx.run_evcc(dev)
    ctx.precondition(dev.at is not None, "loop 3 not reached")
    fin = getattr(ctx, "evcc_finished_at", None)
    took = fin - (dev.at or 0.0) if fin is not None else None
    ctx.check("digest §6.3: the EVCC under test ends within 2 + 5 + 1.5 s of the connection loss",
              took is not None and took <= CLOSE_LIMIT, f"finished {took:.2f} s after the close" if took is not None else "not finished")
    ctx.check("digest §6.3: no request after the close", not after(secc, dev.at or 0.0, ("reconnect",)), "none")
