"""Deliberately defective DIN / -2 chargers: our SECC behind a V2GTP proxy with one defect each,
to prove every DIN / -2 SECC case can fail (the mutation matrix of :mod:`conformance.mutation`).

The proxy sits between the tester and our SECC (the one ``conformance.local`` starts, serving
every registered protocol), follows the SupportedAppProtocol exchange to know the protocol, and
decodes / re-encodes the DIN / -2 messages with the generic codec to put one defect in: rewrite a
response (always OK, wrong values, a SchemaID on failure, a foreign SAScheduleTupleID ...), rewrite
a request before the SECC sees it (ignore the SessionID, forget a paused session), delay, drop or
replay answers, keep the connection open, or take malformed input as if it were fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from conformance import legacy as L
from iso15118 import messages as m
from iso15118.exi.codec import get_codec
from iso15118.exi.tree import Element
from iso15118.transport.v2gtp import encode_frame


@dataclass
class Conn:
    """What the proxy knows about one tester connection."""

    proto: L.Proto | None = None
    sap_req: Any = None
    sid: bytes | None = None
    last_req: L.Msg | None = None
    last_res: bytes | None = None
    by_name: dict[str, bytes] = field(default_factory=dict)
    stopped: bool = False
    sid_fake: bytes | None = None
    """The SessionID the defect showed the EV instead of the SECC's (``zero`` / ``adopt``)."""


Rewrite = Callable[[Conn, L.Msg], "L.Msg | None"]
"""Change a decoded message in place (return it), or return None to drop it."""


def _set_text(msg: L.Msg, path: str, value: Any) -> bool:
    e = msg.el(path)
    if e is None:
        return False
    e.value = value
    return True


def _set_pv(e: Element | None, value: Decimal) -> None:
    if e is None:
        return
    mult = e.find("Multiplier")
    val = e.find("Value")
    if mult is None or val is None:
        return
    v, k = value, 0
    while abs(v) > 32767 and k < 3:
        v /= 10
        k += 1
    mult.value, val.value = k, int(v)


# ---------------------------------------------------------------------------- the rewrites


def always_ok(c: Conn, msg: L.Msg) -> L.Msg | None:
    if (msg.code or "").startswith("FAILED"):
        _set_text(msg, "ResponseCode", "OK")
    return msg


def silent_refusal(c: Conn, msg: L.Msg) -> L.Msg | None:
    return None if (msg.code or "").startswith("FAILED") else msg


def no_external_payment(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "ServiceDiscoveryRes":
        for e in msg.all("PaymentOptions/PaymentOption") + msg.all("PaymentOptionList/PaymentOption"):
            e.value = "Contract"
    return msg


def auth_refused(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name in ("ContractAuthenticationRes", "AuthorizationRes"):
        _set_text(msg, "ResponseCode", "FAILED")
    return msg


def cpd_implausible(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "ChargeParameterDiscoveryRes":
        _set_pv(msg.el("DC_EVSEChargeParameter/EVSEMaximumVoltageLimit"), Decimal(2000))
        _set_pv(msg.el("AC_EVSEChargeParameter/EVSENominalVoltage"), Decimal(2000))
    return msg


def bad_schedule(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "ChargeParameterDiscoveryRes":
        for tup in msg.all("SAScheduleList/SAScheduleTuple"):
            sched = tup.find("PMaxSchedule")
            entry = sched.find("PMaxScheduleEntry") if sched is not None else None
            iv = entry.find("RelativeTimeInterval") if entry is not None else None
            st = iv.find("start") if iv is not None else None
            if st is not None:
                st.value = 60
    return msg


def cable_check_fault(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "CableCheckRes":
        _set_text(msg, "DC_EVSEStatus/EVSEIsolationStatus", "Fault")
    return msg


def precharge_stuck(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "PreChargeRes":
        _set_pv(msg.el("EVSEPresentVoltage"), Decimal(0))
    return msg


def precharge_overshoot(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "PreChargeRes" and c.last_req is not None:
        target = c.last_req.phys("EVTargetVoltage")
        if target is not None:
            _set_pv(msg.el("EVSEPresentVoltage"), target)
    return msg


def current_overshoot(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "CurrentDemandRes" and c.last_req is not None:
        target = c.last_req.phys("EVTargetCurrent")
        if target is not None:
            _set_pv(msg.el("EVSEPresentCurrent"), target * Decimal("1.5") + 5)
    return msg


def foreign_tuple(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name in ("CurrentDemandRes", "ChargingStatusRes"):
        _set_text(msg, "SAScheduleTupleID", 99)
    return msg


def pd_start_refused(c: Conn, msg: L.Msg) -> L.Msg | None:
    req = c.last_req
    start = req is not None and (req.text("ChargeProgress") == "Start" or req.text("ReadyToChargeState") is True)
    if msg.name == "PowerDeliveryRes" and start:
        _set_text(msg, "ResponseCode", "FAILED_PowerDeliveryNotApplied")
    return msg


def pd_other_refused(c: Conn, msg: L.Msg) -> L.Msg | None:
    req = c.last_req
    start = req is not None and (req.text("ChargeProgress") == "Start" or req.text("ReadyToChargeState") is True)
    if msg.name == "PowerDeliveryRes" and not start:
        _set_text(msg, "ResponseCode", "FAILED")
    return msg


def welding_refused(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "WeldingDetectionRes":
        _set_text(msg, "ResponseCode", "FAILED")
    return msg


# -2 over TLS 1.2 with Plug & Charge (the proxy terminates TLS on both sides)


def stale_challenge(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "PaymentDetailsRes":
        _set_text(msg, "GenChallenge", bytes(16))
    return msg


def _flip_signature(msg: L.Msg) -> None:
    """Flip the last bit of the header's SignatureValue (flipping twice restores it)."""
    hdr = msg.root.find("Header")
    sig = hdr.find("Signature") if hdr is not None else None
    val = sig.find("SignatureValue") if sig is not None else None
    if val is not None and val.value:
        raw = bytearray(val.value)
        raw[-1] ^= 0x01
        val.value = bytes(raw)


def bad_cps_signature(c: Conn, msg: L.Msg) -> L.Msg | None:
    """Charger: breaks its CertificateInstallationRes signature; vehicle side: repairs the one the
    tester charger broke, so the vehicle takes a delivery whose signature failed."""
    if msg.name == "CertificateInstallationRes":
        _flip_signature(msg)
    return msg


def ev_bad_auth_signature(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "AuthorizationReq":
        _flip_signature(msg)
    return msg


def no_receipt(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name in ("ChargingStatusRes", "CurrentDemandRes"):
        _set_text(msg, "ReceiptRequired", False)
    return msg


def receipt_refused(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "MeteringReceiptRes":
        _set_text(msg, "ResponseCode", "FAILED")
    return msg


# requests


def ignore_session_id(c: Conn, msg: L.Msg) -> L.Msg | None:
    if c.sid is not None and msg.name != "SessionSetupReq" and msg.session_id != c.sid:
        _set_header_sid(msg, c.sid)
    return msg


def forget_paused(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "SessionSetupReq":
        _set_header_sid(msg, bytes(8))
    return msg


def _set_header_sid(msg: L.Msg, sid: bytes) -> None:
    hdr = msg.root.find("Header")
    e = hdr.find("SessionID") if hdr is not None else None
    if e is not None:
        e.value = sid
        msg.session_id = sid


# vehicle defects (the proxy sits between our EVCC and the tester charger: "up" = the EV's requests)


def ev_fix_session_id(c: Conn, msg: L.Msg) -> L.Msg | None:
    if c.sid is not None and msg.name != "SessionSetupRes" and msg.session_id != c.sid:
        _set_header_sid(msg, c.sid)
    return msg


def ev_pad_session_id(c: Conn, msg: L.Msg) -> L.Msg | None:
    if c.sid is not None and len(c.sid) < 8 and msg.name != "SessionSetupReq":
        _set_header_sid(msg, c.sid + bytes(8 - len(c.sid)))
    return msg


def ev_contract(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name.endswith("SelectionReq"):
        _set_text(msg, "SelectedPaymentOption", "Contract")
    return msg


def ev_skip_ongoing(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.text("EVSEProcessing") == "Ongoing":
        _set_text(msg, "EVSEProcessing", "Finished")
    return msg


def ev_early_power_delivery(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "PreChargeRes" and c.last_req is not None:
        target = c.last_req.phys("EVTargetVoltage")
        if target is not None:
            _set_pv(msg.el("EVSEPresentVoltage"), target)
    return msg


def ev_wrong_tuple(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "PowerDeliveryReq":
        _set_text(msg, "SAScheduleTupleID", 1)
        if msg.text("ReadyToChargeState") is True:
            _set_text(msg, "ReadyToChargeState", False)
    return msg


def ev_greedy(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "CurrentDemandReq":
        cur = msg.phys("EVTargetCurrent")
        if cur is not None:
            _set_pv(msg.el("EVTargetCurrent"), cur * 3 + 50)
    return msg


def ev_ignore_stop(c: Conn, msg: L.Msg) -> L.Msg | None:
    for e in msg.root.iter():
        if e.name == "EVSENotification" and e.value == "StopCharging":
            e.value = "None"
        if e.name == "EVSEStatusCode" and e.value == "EVSE_Shutdown":
            e.value = "EVSE_Ready"
    return msg


def ev_no_session_stop(c: Conn, msg: L.Msg) -> L.Msg | None:
    return None if msg.name == "SessionStopReq" else msg


def ev_implausible(c: Conn, msg: L.Msg) -> L.Msg | None:
    if msg.name == "ChargeParameterDiscoveryReq":
        _set_pv(msg.el("DC_EVChargeParameter/EVMaximumVoltageLimit"), Decimal(2000))
        _set_pv(msg.el("AC_EVChargeParameter/EVMinCurrent"), Decimal(200))
    return msg


def ev_bad_sap(req: Any) -> Any:
    import dataclasses

    return dataclasses.replace(req, app_protocol=[dataclasses.replace(a, schema_id=1) for a in req.app_protocol])


@dataclass(frozen=True)
class LegacyDefect:
    name: str
    what: str
    cases: tuple[str, ...]
    down: Rewrite | None = None
    up: Rewrite | None = None
    delays: tuple[tuple[str, float], ...] = ()
    sap: str = ""
    """SAP defect: ``first-entry`` (ignores priorities), ``hardcoded`` (SchemaID 1), ``schema-id-on-failure``,
    ``strict-minor``; vehicle side ``ok-on-failure`` (Failed_NoNegotiation turned into OK)."""
    session_id: str = ""
    """``zero`` (a zero SessionID in SessionSetupRes) / ``adopt`` (takes the EV's old ID)."""
    never_close: bool = False
    sequence_timeout: float | None = None
    """Closes the connection after this many seconds without a request (instead of 60 s)."""
    after_stop: bool = False
    """Keeps answering after SessionStopRes (the earlier answer of the same name)."""
    lenient: bool = False
    """Takes malformed input: a bad V2GTP header is repaired, an undecodable or foreign frame is
    answered with the last answer of the connection."""
    profiles: tuple[str, ...] = ("dc-bidi",)
    """Our SECC profiles behind the proxy (``wall-connector`` for the -2 AC cases)."""
    hold_upstream: bool = False
    """Vehicle defects: when the EV closes, the charger's side of the proxy stays open (a hung EV)."""
    sap_up: Callable[[Any], Any] | None = None
    """Rewrite the supportedAppProtocolReq (vehicle defects)."""
    loops: int = 5
    """Vehicle defects: charge-loop cycles of our EVCC behind the proxy."""
    tls: str = ""
    """-2 over TLS with Plug & Charge: the proxy terminates TLS 1.2 on both sides in front of our -2 PnC
    SECC (``conformance.tester_iso2_pnc``); ``tls13``: its vehicle side also accepts TLS 1.3."""


def _g(*globs: str) -> tuple[str, ...]:
    return tuple(f"TC_SECC_{p}_{g}" for g in globs for p in ("DIN", "ISO2"))


_WC = ("wall-connector",)
NEGATIVE = _g("SessionSetup_00[34]", "PaymentSelection_00[12]", "Authorization_002", "ChargeParameterDiscovery_00[34]",
              "CableCheck_002", "PreCharge_002", "PowerDelivery_00[23]", "CurrentDemand_003", "ChargingStatus_002")
LEGACY_DEFECTS: dict[str, LegacyDefect] = {d.name: d for d in (
    LegacyDefect("legacy-always-ok", "answers OK where a DIN / -2 FAILED code is due", NEGATIVE, down=always_ok),
    LegacyDefect("legacy-silent-refusal", "drops every FAILED answer and keeps the connection open",
                 _g("SessionSetup_003", "PaymentSelection_001", "Sequence_001", "ChargingStatus_002"), down=silent_refusal,
                 never_close=True),
    LegacyDefect("legacy-sap-first-entry", "takes the first SupportedAppProtocol entry, ignoring Priority", _g("SAP_00[23]"),
                 sap="first-entry"),
    LegacyDefect("legacy-sap-hardcoded-schema-id", "answers SchemaID 1 whatever the EV offered", _g("SAP_00[1235]"), sap="hardcoded"),
    LegacyDefect("legacy-sap-schema-id-on-failure", "sends a SchemaID with Failed_NoNegotiation", _g("SAP_004"),
                 sap="schema-id-on-failure"),
    LegacyDefect("legacy-sap-strict-minor", "refuses another minor version", _g("SAP_005"), sap="strict-minor"),
    LegacyDefect("legacy-zero-session-id", "assigns the all-zero SessionID", _g("SessionSetup_001"), session_id="zero"),
    LegacyDefect("legacy-adopts-session-id", "adopts any SessionID the EV brings", _g("SessionSetup_002"), session_id="adopt"),
    LegacyDefect("legacy-ignores-session-id", "serves requests with a wrong SessionID", _g("SessionSetup_003"), up=ignore_session_id),
    LegacyDefect("legacy-no-external-payment", "offers no ExternalPayment", _g("ServiceDiscovery_001"), down=no_external_payment),
    LegacyDefect("legacy-auth-refused", "refuses every EIM authorization", _g("Authorization_001"), down=auth_refused),
    LegacyDefect("legacy-cpd-implausible", "announces 2000 V maximum (DC) / nominal (AC) voltage",
                 _g("ChargeParameterDiscovery_00[15]"), down=cpd_implausible, profiles=("dc-bidi", "wall-connector")),
    LegacyDefect("legacy-bad-schedule", "PMaxSchedules that start at 60 s", _g("ChargeParameterDiscovery_00[25]"), down=bad_schedule,
                 profiles=("dc-bidi", "wall-connector")),
    LegacyDefect("legacy-cable-check-fault", "finishes CableCheck with an isolation fault", _g("CableCheck_001"), down=cable_check_fault),
    LegacyDefect("legacy-precharge-stuck", "never raises the pre-charge voltage", _g("PreCharge_001"), down=precharge_stuck),
    LegacyDefect("legacy-precharge-overshoot", "follows any pre-charge target", _g("PreCharge_003"), down=precharge_overshoot),
    LegacyDefect("legacy-current-overshoot", "delivers 1.5 x the EV target current", _g("CurrentDemand_00[24]"), down=current_overshoot),
    LegacyDefect("legacy-slow-loop", "answers the charge loop after 400 ms", _g("CurrentDemand_001", "Timing_001"),
                 delays=(("CurrentDemandRes", 0.4), ("ChargingStatusRes", 0.4))),
    LegacyDefect("legacy-foreign-tuple", "a SAScheduleTupleID in the loop that was never offered",
                 _g("ChargingStatus_001", "CurrentDemand_002"), down=foreign_tuple, profiles=("dc-bidi", "wall-connector")),
    LegacyDefect("legacy-pd-start-refused", "refuses PowerDelivery Start", _g("PowerDelivery_001"), down=pd_start_refused),
    LegacyDefect("legacy-pd-stop-refused", "refuses PowerDelivery Stop and Renegotiate", _g("PowerDelivery_00[45]"),
                 down=pd_other_refused),
    LegacyDefect("legacy-welding-refused", "refuses WeldingDetection", _g("WeldingDetection_001"), down=welding_refused),
    LegacyDefect("legacy-never-closes", "never closes the connection", _g("SessionStop_001"), never_close=True),
    LegacyDefect("legacy-short-sequence-timeout", "drops a silent EV after 10 s instead of 60 s", _g("Timing_002"),
                 sequence_timeout=10.0),
    LegacyDefect("legacy-forgets-paused", "forgets paused sessions", _g("SessionStop_002"), up=forget_paused),
    LegacyDefect("legacy-answers-after-stop", "keeps answering after SessionStop", _g("SessionStop_003"), after_stop=True,
                 never_close=True),
    LegacyDefect("legacy-lenient-input", "takes malformed input: bad headers repaired, undecodable frames answered",
                 _g("Malformed_00[1234]", "Range_00[12]"), lenient=True, never_close=True),
    # -2 over TLS 1.2 / Plug & Charge (conformance.cases.iso2_security)
    LegacyDefect("legacy-iso2-tls13", "-2 charger whose TLS also accepts 1.3", ("TC_SECC_ISO2_TLS_001",), tls="tls13",
                 profiles=_WC),
    LegacyDefect("legacy-iso2-stale-challenge", "sends an all-zero GenChallenge, expects its own", ("TC_SECC_ISO2_PnC_001",),
                 down=stale_challenge, tls="iso2", profiles=_WC),
    LegacyDefect("legacy-iso2-accepts-bad-authorization", "answers OK to a refused signed AuthorizationReq",
                 ("TC_SECC_ISO2_PnC_00[23]",), down=always_ok, tls="iso2", profiles=_WC),
    LegacyDefect("legacy-iso2-silent-refusal", "drops its FAILED AuthorizationRes and keeps the connection open",
                 ("TC_SECC_ISO2_PnC_00[23]",), down=silent_refusal, never_close=True, tls="iso2", profiles=_WC),
    LegacyDefect("legacy-iso2-bad-cps-signature", "CertificateInstallationRes whose signature does not verify",
                 ("TC_SECC_ISO2_PnC_004",), down=bad_cps_signature, tls="iso2", profiles=_WC),
    LegacyDefect("legacy-iso2-no-receipt", "never asks for a MeteringReceipt", ("TC_SECC_ISO2_PnC_005",), down=no_receipt,
                 tls="iso2", profiles=_WC),
    LegacyDefect("legacy-iso2-receipt-refused", "refuses the signed MeteringReceiptReq", ("TC_SECC_ISO2_PnC_005",),
                 down=receipt_refused, tls="iso2", profiles=_WC),
)}


def _e(*globs: str) -> tuple[str, ...]:
    return tuple(f"TC_EVCC_{p}_{g}" for g in globs for p in ("DIN", "ISO2"))


LEGACY_EV_DEFECTS: dict[str, LegacyDefect] = {d.name: d for d in (
    LegacyDefect("legacy-ev-bad-sap", "one SchemaID for every SupportedAppProtocol entry", _e("SAP_001"), sap_up=ev_bad_sap),
    LegacyDefect("legacy-ev-ignores-sap-failure", "goes on after Failed_NoNegotiation", _e("SAP_002"), sap="ok-on-failure"),
    LegacyDefect("legacy-ev-hangs", "never closes the connection when it gives up",
                 _e("SAP_002", "SessionSetup_002", "Failed_00[12]", "Timeout_00[12]", "Malformed_00[12]", "PreCharge_002",
                    "SessionStop_001"), hold_upstream=True),
    LegacyDefect("legacy-ev-pads-session-id", "pads a short SessionID to 8 bytes", _e("SessionSetup_001"), up=ev_pad_session_id),
    LegacyDefect("legacy-ev-ignores-session-id", "takes answers with any SessionID", _e("SessionSetup_002"), down=ev_fix_session_id),
    LegacyDefect("legacy-ev-contract", "selects Contract although only EIM is offered", _e("ServiceDiscovery_001"), up=ev_contract),
    LegacyDefect("legacy-ev-skips-ongoing", "treats Ongoing as Finished",
                 _e("Authorization_001", "ChargeParameterDiscovery_001", "CableCheck_001"), down=ev_skip_ongoing),
    LegacyDefect("legacy-ev-implausible-parameters", "announces 2000 V (DC) / a minimum current above the maximum (AC)",
                 _e("ChargeParameterDiscovery_002", "ChargingStatus_001"), up=ev_implausible),
    LegacyDefect("legacy-ev-early-power-delivery", "ends pre-charge before the voltage is reached",
                 _e("PreCharge_00[12]"), down=ev_early_power_delivery),
    LegacyDefect("legacy-ev-wrong-tuple", "PowerDelivery with a tuple never offered / ReadyToChargeState false",
                 _e("PowerDelivery_00[12]"), up=ev_wrong_tuple),
    LegacyDefect("legacy-ev-greedy", "asks for 3 x its target current + 50 A", _e("CurrentDemand_001"), up=ev_greedy),
    LegacyDefect("legacy-ev-ignores-stop", "ignores StopCharging / EVSE_Shutdown", _e("StopCharging_001"), down=ev_ignore_stop,
                 loops=14),
    LegacyDefect("legacy-ev-ignores-failed", "takes FAILED codes for OK", _e("Failed_00[12]"), down=always_ok),
    LegacyDefect("legacy-ev-no-session-stop", "ends without SessionStopReq", _e("SessionStop_001"), up=ev_no_session_stop),
    # -2 over TLS 1.2 / Plug & Charge (conformance.cases.iso2_security)
    LegacyDefect("legacy-iso2-ev-bad-auth-signature", "signs AuthorizationReq with a signature that does not verify",
                 ("TC_EVCC_ISO2_PnC_001",), up=ev_bad_auth_signature, tls="iso2"),
    LegacyDefect("legacy-iso2-ev-ignores-receipt", "never sends MeteringReceiptReq when ReceiptRequired",
                 ("TC_EVCC_ISO2_PnC_002",), down=no_receipt, tls="iso2"),
    LegacyDefect("legacy-iso2-ev-accepts-bad-cps-signature", "uses a contract whose delivery signature failed",
                 ("TC_EVCC_ISO2_PnC_003",), down=bad_cps_signature, tls="iso2"),
)}


def defective_legacy_evcc_launcher(name: str) -> Callable[[str, int], Any]:
    """Our EVCC behind the proxy with vehicle defect ``name``: ``launch(host, port)`` (a ``tls`` defect:
    ``launch(host, port, trust)``, the vehicle on TLS 1.2)."""
    from conformance.charger_legacy import local_legacy_evcc_launcher

    d = LEGACY_EV_DEFECTS[name]
    if d.tls:
        return _tls_ev_launcher(d)
    inner = local_legacy_evcc_launcher(loops=d.loops)

    async def launch(host: str, port: int) -> Any:
        proxy = LegacyDefectProxy(port, d)
        p = await proxy.start()
        try:
            return await inner("::1", p)
        finally:
            await asyncio.sleep(0.2)
            proxy.close()

    return launch


def _tls_ev_launcher(d: LegacyDefect) -> Callable[..., Any]:
    """Our -2 PnC vehicle on TLS 1.2 behind a TLS-terminating proxy with defect ``d``."""
    from conformance.tester_iso2_pnc import iso2_lab_pki, local_iso2_pnc_evcc_launcher
    from iso15118.session.tlsconf import evcc_context, secc_context

    inner = local_iso2_pnc_evcc_launcher()

    async def launch(host: str, port: int, trust: Any = None) -> Any:
        pki = iso2_lab_pki()
        proxy = LegacyDefectProxy(port, d, server_ssl=secc_context(pki, iso2=True), client_ssl=evcc_context(pki, iso2=True))
        p = await proxy.start()
        try:
            return await inner("::1", p, trust)
        finally:
            await asyncio.sleep(0.2)
            proxy.close()

    return launch


# ---------------------------------------------------------------------------- the proxy


class LegacyDefectProxy:
    """A V2GTP proxy in front of a DIN / -2 SECC with one :class:`LegacyDefect`."""

    def __init__(self, target_port: int, defect: LegacyDefect, *, server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.target_port = target_port
        self.d = defect
        self.server_ssl, self.client_ssl = server_ssl, client_ssl
        """TLS towards the vehicle / towards our SECC (defects with ``tls``)."""
        self.server: asyncio.Server | None = None
        self.rewrites = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "::1", 0, ssl=self.server_ssl)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader, timeout: float | None = None) -> tuple[bytes, int, bytes] | None:
        try:
            hdr = await asyncio.wait_for(reader.readexactly(8), timeout)
            n = int.from_bytes(hdr[4:8], "big")
            if n > 65536:
                return hdr, -1, b""
            body = await reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return None
        return hdr, int.from_bytes(hdr[2:4], "big"), body

    async def _handle(self, ev_r: asyncio.StreamReader, ev_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("::1", self.target_port, ssl=self.client_ssl)
        except (OSError, ssl.SSLError):
            ev_w.close()
            return
        c = Conn()
        done = asyncio.Event()

        async def ev_to_secc() -> None:
            timeout = self.d.sequence_timeout
            while True:
                got = await self._read(ev_r, timeout)
                if got is None:
                    break
                hdr, pt, body = got
                if hdr[0] != 0x01 or hdr[1] != 0xFE:
                    if not self.d.lenient:
                        break
                    hdr = bytes([0x01, 0xFE]) + hdr[2:]
                    self.rewrites += 1
                out = await self._up(c, pt, body)
                if out is None:
                    continue
                if isinstance(out, tuple):  # answered by the proxy itself
                    ev_w.write(encode_frame(*out))
                    await ev_w.drain()
                    continue
                up_w.write(encode_frame(pt, out))
                await up_w.drain()

        async def secc_to_ev() -> None:
            while True:
                got = await self._read(up_r)
                if got is None:
                    break
                _hdr, pt, body = got
                out = self._down(c, pt, body)
                if out is None:
                    continue
                name, data = out
                delay = dict(self.d.delays).get(name, 0.0)
                if delay:
                    await asyncio.sleep(delay)
                ev_w.write(encode_frame(pt, data))
                await ev_w.drain()
                c.last_res = data
                c.by_name[name] = data
                if name == "SessionStopRes":
                    c.stopped = True

        a = asyncio.ensure_future(ev_to_secc())
        b = asyncio.ensure_future(secc_to_ev())
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
            if b.done() and (self.d.never_close or self.d.after_stop) and not a.done():
                await asyncio.wait({a}, timeout=20.0)  # the tester's side stays open
            if a.done() and self.d.hold_upstream and not b.done():
                await asyncio.wait({b}, timeout=10.0)  # the EV is gone; the charger's side stays open
        finally:
            done.set()
            for t in (a, b):
                t.cancel()
            for w in (up_w, ev_w):
                with contextlib.suppress(Exception):
                    w.close()

    # -- requests

    async def _up(self, c: Conn, pt: int, body: bytes) -> bytes | tuple[int, bytes] | None:
        if c.proto is None:
            try:
                req = m.decode(body, "sap")
            except Exception:  # noqa: BLE001
                return body
            if isinstance(req, m.SupportedAppProtocolReq):
                if self.d.sap_up is not None:
                    req = self.d.sap_up(req)
                    body = m.encode(req)
                    self.rewrites += 1
                c.sap_req = req
                if self.d.sap == "strict-minor" and any(a.version_number_minor != 0 for a in req.app_protocol):
                    self.rewrites += 1
                    res = m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
                    return (L.PT_EXI, m.encode(res))
            return body
        if c.stopped and self.d.after_stop:
            try:
                msg = L.decode(c.proto, body)
            except Exception:  # noqa: BLE001
                return None
            stale = c.by_name.get(msg.name[:-3] + "Res")
            if stale is not None:
                self.rewrites += 1
                return (L.PT_EXI, stale)
            return body
        if pt != L.PT_EXI:
            return self._lenient(c) if self.d.lenient else body
        try:
            msg = L.decode(c.proto, body)
        except Exception:  # noqa: BLE001
            return self._lenient(c) if self.d.lenient else body
        c.last_req = msg
        if self.d.up is not None:
            before = msg.session_id
            out = self.d.up(c, msg)
            if out is None:
                return None
            if out.session_id != before:
                self.rewrites += 1
            return get_codec(c.proto.key).encode(out.root, validate=False)
        if self.d.session_id and c.sid is not None and msg.name != "SessionSetupReq" and c.sid_fake is not None:
            _set_header_sid(msg, c.sid)
            return get_codec(c.proto.key).encode(msg.root, validate=False)
        return body

    def _lenient(self, c: Conn) -> tuple[int, bytes] | None:
        if c.last_res is None:
            return None
        self.rewrites += 1
        return (L.PT_EXI, c.last_res)

    # -- responses

    def _down(self, c: Conn, pt: int, body: bytes) -> tuple[str, bytes] | None:
        if c.proto is None:
            try:
                res = m.decode(body, "sap")
            except Exception:  # noqa: BLE001
                return "?", body
            if not isinstance(res, m.SupportedAppProtocolRes):
                return "?", body
            res = self._sap(c, res)
            entries = c.sap_req.app_protocol if c.sap_req is not None else []
            chosen = next((a for a in entries if a.schema_id == res.schema_id), None)
            if chosen is not None and res.response_code.value.startswith("OK"):
                c.proto = next((p for p in L.PROTOS if p.ns == chosen.protocol_namespace), None)
            return "supportedAppProtocolRes", m.encode(res)
        try:
            msg = L.decode(c.proto, body)
        except Exception:  # noqa: BLE001
            return "?", body
        changed = False
        if msg.name == "SessionSetupRes":
            c.sid = msg.session_id
            if self.d.session_id == "zero":
                _set_header_sid(msg, bytes(8))
                c.sid_fake = bytes(8)
                changed = True
            elif self.d.session_id == "adopt" and c.last_req is not None and any(c.last_req.session_id):
                _set_header_sid(msg, c.last_req.session_id)
                c.sid_fake = c.last_req.session_id
                changed = True
        elif self.d.session_id and c.sid_fake is not None:
            _set_header_sid(msg, c.sid_fake)
            changed = True
        if self.d.down is not None:
            before = get_codec(c.proto.key).encode(msg.root, validate=False)
            out = self.d.down(c, msg)
            if out is None:
                self.rewrites += 1
                return None
            data = get_codec(c.proto.key).encode(out.root, validate=False)
            if data != before:
                self.rewrites += 1
            return out.name, data
        if changed:
            self.rewrites += 1
            return msg.name, get_codec(c.proto.key).encode(msg.root, validate=False)
        return msg.name, body

    def _sap(self, c: Conn, res: Any) -> Any:
        entries = list(c.sap_req.app_protocol) if c.sap_req is not None else []
        if self.d.sap == "first-entry" and res.response_code.value.startswith("OK") and entries:
            self.rewrites += 1
            return m.SupportedAppProtocolRes(response_code=res.response_code, schema_id=entries[0].schema_id)
        if self.d.sap == "hardcoded" and res.response_code.value.startswith("OK"):
            self.rewrites += 1
            return m.SupportedAppProtocolRes(response_code=res.response_code, schema_id=1)
        if self.d.sap == "ok-on-failure" and not res.response_code.value.startswith("OK") and entries:
            self.rewrites += 1
            legacy = [a for a in entries if a.protocol_namespace in (L.DIN.ns, L.ISO2.ns)] or entries
            return m.SupportedAppProtocolRes(response_code=m.AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION,
                                             schema_id=legacy[0].schema_id)
        if self.d.sap == "schema-id-on-failure" and not res.response_code.value.startswith("OK"):
            self.rewrites += 1
            return m.SupportedAppProtocolRes(response_code=res.response_code, schema_id=entries[0].schema_id if entries else 0)
        return res


async def start_legacy_defect(name: str, profile: str = "dc-bidi") -> tuple[Any, Callable[[], None]]:
    """Our SECC (``profile``) behind the proxy with defect ``name``: (SutEndpoint, close)."""
    from conformance.local import start_local_secc

    d = LEGACY_DEFECTS[name]
    if d.tls:
        loc, proxy, sut = await _start_tls_defect(d, profile)
    else:
        loc = await start_local_secc(profile)
        proxy = LegacyDefectProxy(loc.server.port, d)
        sut = loc.endpoint(jobs=4, probe=False)
    sut.port = await proxy.start()
    sut.name = f"defect:{name}"

    def close() -> None:
        proxy.close()
        loc.close()

    return sut, close


async def _start_tls_defect(d: LegacyDefect, profile: str) -> tuple[Any, LegacyDefectProxy, Any]:
    """Our -2 PnC SECC on TLS 1.2 and a proxy that terminates TLS on both sides (the vehicle side
    with the charger's own identity; ``tls13``: up to TLS 1.3)."""
    from conformance.tester_iso2_pnc import iso2_lab_pki, iso2_pnc_endpoint, start_local_iso2_pnc_secc
    from iso15118.security.tls import ISO2, server_context
    from iso15118.session.tlsconf import evcc_context, secc_context

    pki = iso2_lab_pki()
    loc = await start_local_iso2_pnc_secc(profile, pki)
    ev_side = secc_context(pki, iso2=True)
    if d.tls == "tls13":
        keys = pki / "private_keys"
        pw = keys / "seccLeafPassword.txt"
        ev_side = server_context(pki / "certs" / "cpoCertChain.pem", keys / "seccLeaf.key", pw if pw.exists() else None,
                                 profile=dataclasses.replace(ISO2, name="defect-tls13", maximum_version=ssl.TLSVersion.TLSv1_3))
    proxy = LegacyDefectProxy(loc.server.port, d, server_ssl=ev_side, client_ssl=evcc_context(pki, iso2=True))
    return loc, proxy, iso2_pnc_endpoint(loc, pki, jobs=4)


_RANK = {"fail": 4, "error": 3, "pass": 2, "inconclusive": 1}


async def legacy_row(name: str, ids: list[str] | None = None) -> tuple[dict[str, str], dict[str, str], int]:
    """Run defect ``name`` against the cases that can catch it (or ``ids``), on each of its profiles:
    (verdict per case -- the worst over the profiles --, reason per case, exit status)."""
    from conformance.cases import select
    from conformance.runner import run_campaign

    d = LEGACY_DEFECTS[name]
    if ids is not None and not ids:
        return {}, {}, 0
    cases = select(ids if ids is not None else list(d.cases))
    verdicts: dict[str, str] = {}
    reasons: dict[str, str] = {}
    status = 0
    for profile in d.profiles:
        sut, close = await start_legacy_defect(name, profile)
        try:
            camp = await run_campaign([sut], cases, probe=False)
        finally:
            close()
        status = max(status, camp.exit_status())
        for r in camp.results:
            v = r.verdict.value
            if _RANK[v] > _RANK.get(verdicts.get(r.case_id, ""), 0):
                verdicts[r.case_id], reasons[r.case_id] = v, r.reason
    return verdicts, reasons, status


async def legacy_ev_row(name: str, ids: list[str]) -> tuple[dict[str, str], dict[str, str], int]:
    """Run vehicle defect ``name`` against the EVCC cases ``ids``."""
    from conformance.cases import select
    from conformance.runner import run_campaign
    from conformance.sut import SutEndpoint

    if not ids:
        return {}, {}, 0
    if LEGACY_EV_DEFECTS[name].tls:  # the defect sits on the TLS launch; the reach gate uses a clean TCP one
        from conformance.charger_legacy import local_legacy_evcc_launcher
        from conformance.tester_iso2_pnc import iso2_lab_pki

        sut = SutEndpoint.evcc(local_legacy_evcc_launcher(), f"defect-evcc:{name}")
        sut.evcc_tls_launcher, sut.evcc_pki = defective_legacy_evcc_launcher(name), iso2_lab_pki()
    else:
        sut = SutEndpoint.evcc(defective_legacy_evcc_launcher(name), f"defect-evcc:{name}")
    sut.jobs = 20  # mostly waiting for closes that do not come
    camp = await run_campaign([sut], select(ids), probe=False)
    return ({r.case_id: r.verdict.value for r in camp.results}, {r.case_id: r.reason for r in camp.results}, camp.exit_status())
