"""Authorization (digest §8.1, §5.1), ServiceDiscovery / ServiceDetail / ServiceSelection
(digest §4), ChargeParameterDiscovery (§4.3) and ScheduleExchange (§3.2, §5.4)."""

from __future__ import annotations

import time
from typing import Any

from conformance.cases._common import RC, expect, expect_refused, expect_session_over, m, reach, with_session, wrong_id
from conformance.catalogue import CaseContext, case
from iso15118.session.services import ControlMode, EnergyService, ParameterSetOffer, rn

# --------------------------------------------------------------------------- Authorization


@case("TC_SECC_Authorization_001", "AuthorizationSetupRes offers a consistent mode", group="Authorization",
      purpose="The offered services and the mode element agree; PnC brings a 16-byte GenChallenge.",
      requirement="digest §8.1 / §4.4 ([V2G20-2567]/[V2G20-2568])",
      steps=("reach AuthorizationSetupReq and send it", "check AuthorizationServices and the mode element"),
      tags=("authorization",))
async def auth_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(held.message)
    expect(ctx, rx, "AuthorizationSetupRes", RC.OK.value, "digest §3.1: AuthorizationSetup answered OK")
    if not rx.answered:
        return
    svcs = [s.value for s in rx.msg.authorization_services]
    mode = rx.msg.authorization_mode
    if "PnC" in svcs:
        ok = isinstance(mode, m.PnCASResAuthorizationMode) and len(mode.gen_challenge) == 16
        ctx.check("digest §8.1: PnC offered -> PnC_ASResAuthorizationMode with 16-byte GenChallenge", ok, f"{type(mode).__name__}")
    else:
        ctx.check("digest §8.1: EIM only -> EIM_ASResAuthorizationMode", isinstance(mode, m.EIMASResAuthorizationMode),
                  f"services {svcs}, mode {type(mode).__name__}")


@case("TC_SECC_Authorization_002", "PnC is not offered without TLS", group="Authorization",
      purpose="Plug & Charge needs TLS; over plain TCP the SECC must offer EIM only.",
      requirement="digest §1.3 (PnC without TLS must not be offered) / §8.1 (Transport: TLS only)",
      steps=("plain TCP session to AuthorizationSetupRes", "expect AuthorizationServices without PnC"),
      tags=("authorization", "pnc"), needs=("notls",))
async def auth_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    rx = await t.exchange(held.message)
    if rx.answered:
        svcs = [s.value for s in rx.msg.authorization_services]
        ctx.check("digest §1.3: no PnC over plain TCP", "PnC" not in svcs, f"AuthorizationServices {svcs}")
    else:
        ctx.check("digest §3.1: AuthorizationSetupRes", False, rx.error)


@case("TC_SECC_Authorization_003", "EIM authorization finishes", group="Authorization",
      purpose="An EIM AuthorizationReq is answered OK, Finished (after Ongoing rounds within the limit).",
      requirement="digest §5.4 (Authorization loop, [V2G20-1582]) / §6.2 V2G_EVCC_Ongoing_Timeout 60 s",
      steps=("run to ServiceDiscoveryReq (the core repeats AuthorizationReq while Ongoing)", "check OK + Finished"),
      tags=("authorization", "eim"))
async def auth_003(ctx: CaseContext) -> None:
    t0 = time.monotonic()
    t, held = await reach(ctx, "ServiceDiscoveryReq")
    res = [e for e in ctx.evidence.messages("rx", "AuthorizationRes")]
    last = (res[-1].decoded or {}) if res else {}
    ctx.check("digest §5.4: EIM authorization Finished with OK", bool(res) and last.get("response_code") == "OK"
              and last.get("evse_processing") == "Finished", f"{len(res)} AuthorizationRes, last {last.get('response_code')} {last.get('evse_processing')}")
    ctx.check("digest §6.2: within V2G_EVCC_Ongoing_Timeout (60 s)", time.monotonic() - t0 < 60, f"{time.monotonic() - t0:.1f} s")


@case("TC_SECC_Authorization_004", "PnC selected when only EIM is offered -> WARNING", group="Authorization",
      purpose="Selecting an authorization service that was not offered is answered with a warning.",
      requirement="digest §5.1 AuthorizationRes (WARNING_AuthorizationSelectionInvalid, [V2G20-2209]/[V2G20-2226])",
      steps=("reach AuthorizationReq", "if PnC was offered: inconclusive", "send EIM-less AuthorizationReq selecting PnC",
             "expect WARNING_AuthorizationSelectionInvalid (or FAILED)"),
      tags=("authorization", "negative"))
async def auth_004(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationReq")
    if "PnC" in t.core.auth_services:
        ctx.inconclusive("not applicable: the SUT offers PnC")
    req = m.AuthorizationReq(header=t.header(), selected_authorization_service=m.Authorization.PNC,
                             authorization_mode=m.EIMAReqAuthorizationMode())
    rx = await t.exchange(req)
    expect(ctx, rx, "AuthorizationRes", (RC.WARNING_AUTHORIZATION_SELECTION_INVALID.value, RC.FAILED.value),
           "digest §5.1: PnC not offered -> WARNING_AuthorizationSelectionInvalid")


@case("TC_SECC_Authorization_005", "AuthorizationReq before AuthorizationSetup -> FAILED_SequenceError", group="Authorization",
      purpose="Authorization needs the AuthorizationSetup exchange first.",
      requirement="digest §3.3 (SessionSetupRes: only AuthorizationSetupReq or Stop)",
      steps=("reach AuthorizationSetupReq", "send an EIM AuthorizationReq instead", "expect FAILED_SequenceError",
             "expect the session to be over"),
      tags=("authorization", "sequence", "negative"))
async def auth_005(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationSetupReq")
    req = m.AuthorizationReq(header=t.header(), selected_authorization_service=m.Authorization.EIM,
                             authorization_mode=m.EIMAReqAuthorizationMode())
    rx = await t.exchange(req)
    expect(ctx, rx, "AuthorizationRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: out-of-sequence AuthorizationReq")
    await expect_session_over(ctx, t)


@case("TC_SECC_Authorization_006", "AuthorizationReq with wrong SessionID -> FAILED_UnknownSession", group="Authorization",
      purpose="SessionID check on AuthorizationReq.",
      requirement="digest §6.4 (mismatch -> FAILED_UnknownSession)",
      steps=("reach AuthorizationReq", "send it with a wrong SessionID", "expect FAILED_UnknownSession"),
      tags=("authorization", "session_id", "negative"))
async def auth_006(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AuthorizationReq")
    rx = await t.exchange(with_session(held.message, wrong_id(t.session_id)))
    expect(ctx, rx, "AuthorizationRes", RC.FAILED_UNKNOWN_SESSION.value, "digest §6.4: wrong SessionID refused")


# --------------------------------------------------------------------------- services


@case("TC_SECC_ServiceDiscovery_001", "ServiceDiscoveryRes lists services of the negotiated family", group="ServiceDiscovery",
      purpose="The energy services offered match the SAP namespace (AC: 1/5, DC: 2/6).",
      requirement="digest §2 last paragraph / §4.1 (Service IDs)",
      steps=("reach ServiceDiscoveryReq and send it", "check 1-8 services, all of the negotiated family"),
      tags=("services",))
async def sd_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDiscoveryReq")
    rx = await t.exchange(held.message)
    expect(ctx, rx, "ServiceDiscoveryRes", RC.OK.value, "digest §3.1: ServiceDiscovery OK")
    if rx.answered:
        ids = [s.service_id for s in rx.msg.energy_transfer_service_list.service]
        fam = t.core.family.value if t.core.family else "?"
        allowed = {"AC": {1, 5}, "DC": {2, 6}}.get(fam, set())
        ctx.check("digest §4.1: services of the negotiated family only", bool(ids) and set(ids) <= allowed,
                  f"family {fam}, ServiceIDs {ids}")


@case("TC_SECC_ServiceDiscovery_002", "SupportedServiceIDs filter is honoured", group="ServiceDiscovery",
      purpose="When the EV lists SupportedServiceIDs, only those are offered.",
      requirement="digest §4.1 (ServiceDiscoveryReq SupportedServiceIDs: SECC offers only those)",
      steps=("reach ServiceDiscoveryReq", "send it with SupportedServiceIDs = the non-BPT service of the family",
             "expect only that service (or FAILED_NoEnergyTransferServiceSelected if not offered)"),
      tags=("services",))
async def sd_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDiscoveryReq")
    fam = t.core.family.value if t.core.family else "AC"
    only = 1 if fam == "AC" else 2
    req = m.ServiceDiscoveryReq(header=t.header(), supported_service_ids=m.ServiceIDList(service_id=[only]))
    rx = await t.exchange(req)
    if rx.answered and rx.code == RC.OK.value:
        ids = [s.service_id for s in rx.msg.energy_transfer_service_list.service]
        ctx.check("digest §4.1: only the requested ServiceIDs", set(ids) <= {only}, f"requested [{only}], offered {ids}")
    else:
        expect(ctx, rx, "ServiceDiscoveryRes", RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED.value,
               "digest §4.1: no common service")


@case("TC_SECC_ServiceDetail_001", "ServiceDetailRes parameter sets are well-formed", group="ServiceDetail",
      purpose="Each parameter set has a unique ID, a ControlMode (1/2) and a Connector; MobilityNeedsMode 2 only with Dynamic.",
      requirement="digest §4.2 (Parameter sets; [V2G20-2663])",
      steps=("reach ServiceDetailReq and send it", "check the parameter sets"),
      tags=("services",))
async def sdet_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDetailReq")
    rx = await t.exchange(held.message)
    expect(ctx, rx, "ServiceDetailRes", RC.OK.value, "digest §3.1: ServiceDetail OK")
    if not rx.answered:
        return
    sets = rx.msg.service_parameter_list.parameter_set
    ids = [p.parameter_set_id for p in sets]
    ctx.check("digest §4.2: unique ParameterSetIDs", len(ids) == len(set(ids)) and bool(ids), f"IDs {ids}")
    problems = []
    for p in sets:
        names = {x.name: x for x in p.parameter}
        cm = names.get("ControlMode")
        if cm is None or cm.int_value not in (1, 2):
            problems.append(f"set {p.parameter_set_id}: ControlMode {getattr(cm, 'int_value', None)}")
        if "Connector" not in names:
            problems.append(f"set {p.parameter_set_id}: no Connector")
        mnm = names.get("MobilityNeedsMode")
        if mnm is not None and mnm.int_value == 2 and cm is not None and cm.int_value != 2:
            problems.append(f"set {p.parameter_set_id}: MobilityNeedsMode 2 with Scheduled")
    ctx.check("digest §4.2: ControlMode, Connector, MobilityNeedsMode rules", not problems, "; ".join(problems) or f"{len(sets)} sets ok")


@case("TC_SECC_ServiceDetail_002", "ServiceDetailReq for a service not offered -> FAILED_ServiceIDInvalid", group="ServiceDetail",
      purpose="Details are only given for offered services.",
      requirement="digest §4.1 ([V2G20-464] FAILED_ServiceIDInvalid)",
      steps=("reach ServiceDetailReq", "ask for ServiceID 3 (WPT)", "expect FAILED_ServiceIDInvalid"),
      tags=("services", "negative"))
async def sdet_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDetailReq")
    rx = await t.exchange(m.ServiceDetailReq(header=t.header(), service_id=3))
    expect(ctx, rx, "ServiceDetailRes", RC.FAILED_SERVICE_ID_INVALID.value, "digest §4.1: [V2G20-464]")


@case("TC_SECC_ServiceDetail_003", "BPT parameter sets carry BPTChannel and GeneratorMode", group="ServiceDetail",
      purpose="A BPT service's parameter sets describe the BPT channel and generator mode.",
      requirement="digest §4.2 (BPTChannel, GeneratorMode for AC_BPT/DC_BPT; Josev omits them)",
      steps=("reach ServiceDetailReq for a BPT service", "expect BPTChannel and GeneratorMode in every set"),
      tags=("services", "bpt"), needs=("BPT",))
async def sdet_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDetailReq", service=ctx.service(bpt=True))
    rx = await t.exchange(held.message)
    if not expect(ctx, rx, "ServiceDetailRes", RC.OK.value, "digest §3.1: ServiceDetail OK"):
        return
    missing = [p.parameter_set_id for p in rx.msg.service_parameter_list.parameter_set
               if not {"BPTChannel", "GeneratorMode"} <= {x.name for x in p.parameter}]
    ctx.check("digest §4.2: BPT parameters present", not missing, f"sets without BPT parameters: {missing}" if missing else "all sets")


@case("TC_SECC_ServiceSelection_001", "Selecting an offered service and set", group="ServiceSelection",
      purpose="A valid selection is accepted.",
      requirement="digest §3.1 row 6 / §4.2",
      steps=("reach ServiceSelectionReq and send it", "expect OK"),
      tags=("services",))
async def ssel_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceSelectionReq")
    rx = await t.exchange(held.message)
    expect(ctx, rx, "ServiceSelectionRes", RC.OK.value, "digest §4.2: valid selection accepted")


@case("TC_SECC_ServiceSelection_002", "Selecting a service not offered is refused", group="ServiceSelection",
      purpose="The SECC refuses a ServiceID it did not offer.",
      requirement="digest §4.2 Errors (FAILED_NoEnergyTransferServiceSelected / FAILED_ServiceSelectionInvalid)",
      steps=("reach ServiceSelectionReq", "select ServiceID 3 (WPT)", "expect one of the two FAILED codes"),
      tags=("services", "negative"))
async def ssel_002(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceSelectionReq")
    req = m.ServiceSelectionReq(header=t.header(), selected_energy_transfer_service=m.SelectedService(service_id=3, parameter_set_id=1))
    rx = await t.exchange(req)
    expect(ctx, rx, "ServiceSelectionRes",
           (RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED.value, RC.FAILED_SERVICE_SELECTION_INVALID.value),
           "digest §4.2: service not offered")


@case("TC_SECC_ServiceSelection_003", "Selecting an unknown ParameterSetID is refused", group="ServiceSelection",
      purpose="The SECC refuses a parameter set it did not offer.",
      requirement="digest §4.2 Errors (DISAGREE: J FAILED_NoEnergyTransferServiceSelected, L FAILED_ServiceSelectionInvalid)",
      steps=("reach ServiceSelectionReq", "select the service with ParameterSetID 999", "expect one of the two FAILED codes"),
      tags=("services", "negative"))
async def ssel_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceSelectionReq")
    sid = held.message.selected_energy_transfer_service.service_id
    req = m.ServiceSelectionReq(header=t.header(), selected_energy_transfer_service=m.SelectedService(service_id=sid, parameter_set_id=999))
    rx = await t.exchange(req)
    expect(ctx, rx, "ServiceSelectionRes",
           (RC.FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED.value, RC.FAILED_SERVICE_SELECTION_INVALID.value),
           "digest §4.2: parameter set not offered")


@case("TC_SECC_ServiceSelection_004", "ServiceSelection without ServiceDetail -> FAILED_SequenceError", group="ServiceSelection",
      purpose="At least one ServiceDetail exchange is required before ServiceSelection.",
      requirement="digest §3.1 row 5 (>=1 ServiceDetail required in both SECCs) / §3.3",
      steps=("reach ServiceDetailReq", "send ServiceSelectionReq instead", "expect FAILED_SequenceError"),
      tags=("services", "sequence", "negative"))
async def ssel_004(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ServiceDetailReq")
    sid = held.message.service_id
    req = m.ServiceSelectionReq(header=t.header(), selected_energy_transfer_service=m.SelectedService(service_id=sid, parameter_set_id=1))
    rx = await t.exchange(req)
    expect(ctx, rx, "ServiceSelectionRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: selection before detail")


# --------------------------------------------------------------------------- ChargeParameterDiscovery


def _cpd_check(ctx: CaseContext, rx, bpt_cls: type) -> None:  # type: ignore[no-untyped-def]
    if not expect(ctx, rx, rx.name or "ChargeParameterDiscoveryRes", RC.OK.value, "digest §3.1 row 7: CPD OK"):
        return
    mode = rx.msg.energy_transfer_mode
    ctx.check("digest §4.3: BPT response element for a BPT service", isinstance(mode, bpt_cls), type(mode).__name__)
    mx = getattr(mode, "evse_maximum_discharge_power", None)
    mn = getattr(mode, "evse_minimum_discharge_power", None)
    if mx is not None and mn is not None:
        from conformance.cases._common import dec

        ctx.check("digest §4.3: EVSE discharge limits consistent (0 <= min <= max)", 0 <= dec(mn) <= dec(mx),
                  f"min {dec(mn)} W, max {dec(mx)} W")


@case("TC_SECC_AC_BPT_ChargeParameterDiscovery_001", "AC_BPT CPD returns BPT limits", group="ChargeParameterDiscovery",
      purpose="For AC_BPT the SECC answers with BPT_AC_CPDResEnergyTransferMode incl. discharge limits.",
      requirement="digest §4.3 (AC_CPD Res BPT additions) / X:AC",
      steps=("select AC_BPT", "send AC_ChargeParameterDiscoveryReq (BPT)", "check OK, BPT element, limits"),
      tags=("cpd", "bpt", "ac_bpt"), needs=("AC", "BPT"))
async def cpd_ac_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "AC_ChargeParameterDiscoveryReq", service=EnergyService.AC_BPT)
    rx = await t.exchange(held.message)
    _cpd_check(ctx, rx, m.BPTACCPDResEnergyTransferMode)
    if rx.answered and rx.code == "OK":
        f = rx.msg.energy_transfer_mode.evse_nominal_frequency
        from conformance.cases._common import dec

        ctx.check("digest §4.4: EVSENominalFrequency 50 or 60 Hz", dec(f) in (50, 60), f"{dec(f)} Hz")


@case("TC_SECC_DC_BPT_ChargeParameterDiscovery_001", "DC_BPT CPD returns BPT limits", group="ChargeParameterDiscovery",
      purpose="For DC_BPT the SECC answers with BPT_DC_CPDResEnergyTransferMode incl. discharge limits.",
      requirement="digest §4.3 (DC_CPD Res BPT additions) / X:DC",
      steps=("select DC_BPT", "send DC_ChargeParameterDiscoveryReq (BPT)", "check OK, BPT element, limits"),
      tags=("cpd", "bpt", "dc_bpt"), needs=("DC", "BPT"))
async def cpd_dc_001(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "DC_ChargeParameterDiscoveryReq", service=EnergyService.DC_BPT)
    rx = await t.exchange(held.message)
    _cpd_check(ctx, rx, m.BPTDCCPDResEnergyTransferMode)
    if rx.answered and rx.code == "OK":
        from conformance.cases._common import dec

        mode = rx.msg.energy_transfer_mode
        ctx.check("X:DC EVSE voltage range consistent", dec(mode.evse_minimum_voltage) <= dec(mode.evse_maximum_voltage),
                  f"{dec(mode.evse_minimum_voltage)}..{dec(mode.evse_maximum_voltage)} V")


@case("TC_SECC_ChargeParameterDiscovery_002", "Non-BPT CPD element for a BPT service -> FAILED_WrongChargeParameter",
      group="ChargeParameterDiscovery",
      purpose="The CPD element must match the selected service (BPT vs non-BPT).",
      requirement="digest §4.3 ([V2G20-1619] AC / [V2G20-2272] DC: FAILED_WrongChargeParameter)",
      steps=("select a BPT service", "send a non-BPT CPD element", "expect FAILED_WrongChargeParameter"),
      tags=("cpd", "bpt", "negative"), needs=("BPT",))
async def cpd_002(ctx: CaseContext) -> None:
    svc = ctx.service(bpt=True)
    t, held = await reach(ctx, ("AC" if svc.ac_dc.value == "AC" else "DC") + "_ChargeParameterDiscoveryReq", service=svc)
    mode = held.message.energy_transfer_mode
    req: Any
    if svc.ac_dc.value == "AC":
        req = m.ACChargeParameterDiscoveryReq(header=t.header(), energy_transfer_mode=m.ACCPDReqEnergyTransferMode(
            ev_maximum_charge_power=mode.ev_maximum_charge_power, ev_minimum_charge_power=mode.ev_minimum_charge_power))
    else:
        req = m.DCChargeParameterDiscoveryReq(header=t.header(), energy_transfer_mode=m.DCCPDReqEnergyTransferMode(
            ev_maximum_charge_power=mode.ev_maximum_charge_power, ev_minimum_charge_power=mode.ev_minimum_charge_power,
            ev_maximum_charge_current=mode.ev_maximum_charge_current, ev_minimum_charge_current=mode.ev_minimum_charge_current,
            ev_maximum_voltage=mode.ev_maximum_voltage, ev_minimum_voltage=mode.ev_minimum_voltage))
    rx = await t.exchange(req)
    expect(ctx, rx, req.ELEMENT[1][:-3] + "Res", RC.FAILED_WRONG_CHARGE_PARAMETER.value, "digest §4.3: BPT/non-BPT mismatch")


@case("TC_SECC_ChargeParameterDiscovery_003", "CPD of the other energy family is refused", group="ChargeParameterDiscovery",
      purpose="An AC CPD on a DC session (or vice versa) does not match the negotiated namespace.",
      requirement="digest §3.3 (CPD matching the selected service) / §1.2 payload types",
      steps=("reach the CPD step", "send the other family's CPD request with its payload type", "expect no positive answer"),
      tags=("cpd", "sequence", "negative"))
async def cpd_003(ctx: CaseContext) -> None:
    svc = ctx.service()
    fam = svc.ac_dc.value
    t, held = await reach(ctx, f"{fam}_ChargeParameterDiscoveryReq", service=svc)
    req: Any
    if fam == "AC":
        req = m.DCChargeParameterDiscoveryReq(header=t.header(), energy_transfer_mode=m.DCCPDReqEnergyTransferMode(
            ev_maximum_charge_power=rn(11000), ev_minimum_charge_power=rn(0), ev_maximum_charge_current=rn(30),
            ev_minimum_charge_current=rn(0), ev_maximum_voltage=rn(900), ev_minimum_voltage=rn(300)))
    else:
        req = m.ACChargeParameterDiscoveryReq(header=t.header(), energy_transfer_mode=m.ACCPDReqEnergyTransferMode(
            ev_maximum_charge_power=rn(11000), ev_minimum_charge_power=rn(0)))
    rx = await t.exchange(req)
    await expect_refused(ctx, t, rx, "digest §3.3: CPD of the other family refused")


@case("TC_SECC_ChargeParameterDiscovery_004", "CPD with wrong SessionID -> FAILED_UnknownSession", group="ChargeParameterDiscovery",
      purpose="SessionID check on ChargeParameterDiscoveryReq.",
      requirement="digest §6.4 (mismatch -> FAILED_UnknownSession)",
      steps=("reach CPD", "send it with a wrong SessionID", "expect FAILED_UnknownSession"),
      tags=("cpd", "session_id", "negative"))
async def cpd_004(ctx: CaseContext) -> None:
    svc = ctx.service()
    t, held = await reach(ctx, f"{svc.ac_dc.value}_ChargeParameterDiscoveryReq", service=svc)
    rx = await t.exchange(with_session(held.message, wrong_id(t.session_id)))
    expect(ctx, rx, held.message.ELEMENT[1][:-3] + "Res", RC.FAILED_UNKNOWN_SESSION.value, "digest §6.4: wrong SessionID refused")


# --------------------------------------------------------------------------- ScheduleExchange


@case("TC_SECC_ScheduleExchange_001", "Dynamic ScheduleExchange finishes", group="ScheduleExchange",
      purpose="Dynamic mode: Dynamic_SEResControlMode, Finished within the ongoing limit.",
      requirement="digest §3.2 (Dynamic) / §5.4 (ScheduleExchange loop, SECC 55 s)",
      steps=("select a Dynamic parameter set", "run ScheduleExchange (repeat while Ongoing)", "check Finished + Dynamic element"),
      tags=("schedule", "dynamic"))
async def se_001(ctx: CaseContext) -> None:
    svc = ctx.service()
    nxt = "DC_CableCheckReq" if svc.ac_dc.value == "DC" else "PowerDeliveryReq"
    t, held = await reach(ctx, nxt, service=svc, mode=ControlMode.DYNAMIC)
    res = ctx.evidence.messages("rx", "ScheduleExchangeRes")
    last = (res[-1].decoded or {}) if res else {}
    ctx.check("digest §5.4: ScheduleExchange Finished", last.get("evse_processing") == "Finished", f"{len(res)} responses")
    cm = (last.get("control_mode") or {}).get("@type", "")
    ctx.check("digest §3.2: Dynamic_SEResControlMode for a Dynamic set", cm == "DynamicSEResControlMode", cm or "none")


@case("TC_SECC_ScheduleExchange_002", "Scheduled ScheduleExchange offers valid ScheduleTuples", group="ScheduleExchange",
      purpose="Scheduled mode: 1-3 ScheduleTuples with unique IDs, schedules within MaximumSupportingPoints.",
      requirement="digest §3.2 (Scheduled_SEResControlMode 1-3 tuples) / §7.1 (MaximumSupportingPoints)",
      steps=("select a Scheduled parameter set", "ScheduleExchangeReq MaximumSupportingPoints=12", "check tuples"),
      tags=("schedule", "scheduled"))
async def se_002(ctx: CaseContext) -> None:
    svc = ctx.service()
    t, held = await reach(ctx, "ScheduleExchangeReq", service=svc, mode=ControlMode.SCHEDULED)
    import dataclasses

    req = dataclasses.replace(held.message, maximum_supporting_points=12)
    rx = await t.exchange(req)
    while rx.answered and rx.code == "OK" and rx.msg.evse_processing.value != "Finished":
        rx = await t.exchange(dataclasses.replace(req, header=t.header()))
    if not expect(ctx, rx, "ScheduleExchangeRes", RC.OK.value, "digest §3.1 row 8: ScheduleExchange OK"):
        return
    cm = rx.msg.control_mode
    ok = isinstance(cm, m.ScheduledSEResControlMode)
    ctx.check("digest §3.2: Scheduled_SEResControlMode", ok, type(cm).__name__)
    if not ok:
        return
    tuples = cm.schedule_tuple
    ids = [x.schedule_tuple_id for x in tuples]
    ctx.check("digest §3.2: 1-3 ScheduleTuples with unique IDs", 1 <= len(ids) <= 3 and len(set(ids)) == len(ids), f"IDs {ids}")
    n = max(len(x.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry) for x in tuples)
    ctx.check("digest §7.1: at most MaximumSupportingPoints entries", n <= 12, f"{n} entries (max 12)")


@case("TC_SECC_ScheduleExchange_003", "Control-mode mismatch in ScheduleExchangeReq -> FAILED", group="ScheduleExchange",
      purpose="A Scheduled request element after selecting a Dynamic parameter set is refused.",
      requirement="digest §3.2 (mismatch answered FAILED by libiso, terminates Josev) / §5.1 ScheduleExchangeRes",
      steps=("select a Dynamic set", "send ScheduleExchangeReq with Scheduled_SEReqControlMode", "expect no positive answer"),
      tags=("schedule", "negative"))
async def se_003(ctx: CaseContext) -> None:
    t, held = await reach(ctx, "ScheduleExchangeReq", mode=ControlMode.DYNAMIC)
    req = m.ScheduleExchangeReq(header=t.header(), maximum_supporting_points=1024,
                                control_mode=m.ScheduledSEReqControlMode(departure_time=7200))
    rx = await t.exchange(req)
    await expect_refused(ctx, t, rx, "digest §3.2: control-mode mismatch refused")


@case("TC_SECC_ScheduleExchange_004", "ScheduleExchange before CPD -> FAILED_SequenceError", group="ScheduleExchange",
      purpose="ScheduleExchange needs ChargeParameterDiscovery first.",
      requirement="digest §3.3 (ServiceSelectionRes: only CPD or Stop)",
      steps=("reach CPD", "send ScheduleExchangeReq instead", "expect FAILED_SequenceError"),
      tags=("schedule", "sequence", "negative"))
async def se_004(ctx: CaseContext) -> None:
    svc = ctx.service()
    t, held = await reach(ctx, f"{svc.ac_dc.value}_ChargeParameterDiscoveryReq", service=svc)
    req = m.ScheduleExchangeReq(header=t.header(), maximum_supporting_points=1024, control_mode=m.DynamicSEReqControlMode(
        departure_time=7200, ev_target_energy_request=rn(10000), ev_maximum_energy_request=rn(20000), ev_minimum_energy_request=rn(0)))
    rx = await t.exchange(req)
    expect(ctx, rx, "ScheduleExchangeRes", RC.FAILED_SEQUENCE_ERROR.value, "digest §3.3: ScheduleExchange before CPD")
    await expect_session_over(ctx, t)

_ = ParameterSetOffer
