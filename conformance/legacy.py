"""DIN SPEC 70121 and ISO 15118-2 at message level, for the conformance cases of both roles.

The tester builds every DIN / -2 message itself as an element tree of the generic codec
(``iso15118.exi``), so a case can put anything on the wire: a legal message, one with a wrong
SessionID, a value out of range (encoded without the facet checks), a message of the other
protocol.  Children are given by local name in schema order; :func:`qualify` walks the EXI
grammar of the protocol's schema and fills in each element's namespace, so the trees stay
short and the schema stays the only authority on where an element lives.

What the two protocols share and where they differ (DIN/-2 digest §1-§7): one payload type
(0x8001) for everything, the SAP namespaces and major version 2, the message names
(``ServicePaymentSelection`` / ``ContractAuthentication`` in DIN, ``PaymentServiceSelection`` /
``Authorization`` in -2), PhysicalValue (DIN: Unit optional), DC_EVStatus, PowerDelivery
(DIN ``ReadyToChargeState`` boolean, -2 ``ChargeProgress`` + ``SAScheduleTupleID``) and SessionStop
(DIN empty, -2 ``ChargingSession``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from iso15118.exi.codec import get_codec
from iso15118.exi.tree import Element
from iso15118.facts.namespaces import NS_DIN, NS_ISO2
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import TIMERS, message_timing

PT_EXI = int(PayloadType.EXI_ENCODED)
"""0x8001: SupportedAppProtocol and every DIN / -2 message (DIN/-2 digest §1.1)."""


@dataclass(frozen=True)
class Proto:
    """One of the two protocols (the cases are written once for both)."""

    key: str
    """Schema key of the generic codec and the timing table: ``din`` / ``iso2``."""
    label: str
    """``DIN`` / ``ISO2`` (the case IDs: TC_SECC_DIN_..., TC_EVCC_ISO2_...)."""
    ns: str
    """The MsgDef namespace, also the SupportedAppProtocol namespace."""
    title: str
    major: int = 2
    minor: int = 0

    @property
    def din(self) -> bool:
        return self.key == "din"

    # the names that differ (DIN/-2 digest §7.2)
    @property
    def payment_selection(self) -> str:
        return "ServicePaymentSelection" if self.din else "PaymentServiceSelection"

    @property
    def authorization(self) -> str:
        return "ContractAuthentication" if self.din else "Authorization"

    @property
    def wrong_mode_code(self) -> str:
        return "FAILED_WrongEnergyTransferType" if self.din else "FAILED_WrongEnergyTransferMode"

    def timeout(self, request: str) -> float:
        """V2G_EVCC_Msg_Timeout of ``request`` (DIN/-2 digest §4.1; DIN as the shared timing table has it)."""
        return message_timing(self.key, request).evcc_timeout

    def ref(self, section: str) -> str:
        return f"DIN/-2 digest {section}"


DIN = Proto("din", "DIN", NS_DIN, "DIN SPEC 70121")
ISO2 = Proto("iso2", "ISO2", NS_ISO2, "ISO 15118-2")
PROTOS = (DIN, ISO2)

PRECHARGE_TIMEOUT = TIMERS.evcc_pre_charge_2
CABLE_CHECK_TIMEOUT = TIMERS.evcc_cable_check
ONGOING_TIMEOUT = TIMERS.evcc_ongoing
SEQUENCE_TIMEOUT = TIMERS.secc_sequence


# ---------------------------------------------------------------------------- trees


def X(name: str, *children: Element | None, value: Any = None, attrs: dict[str, Any] | None = None) -> Element:
    """An element by local name (namespace filled in by :func:`qualify`); ``None`` children are left out."""
    return Element("", name, attrs, [c for c in children if c is not None], value)


def pv(proto: Proto, name: str, value: float | Decimal | int, unit: str | None) -> Element:
    """A PhysicalValue: Multiplier, Unit (DIN: optional), Value (a short): the smallest
    multiplier that keeps the value a short with the precision given."""
    v = Decimal(str(value))
    mult = 0
    while v != v.to_integral_value() and mult > -3:
        v *= 10
        mult -= 1
    while abs(v) > 32767 and mult < 3:
        v /= 10
        mult += 1
    kids = [X("Multiplier", value=mult)]
    if unit is not None:
        kids.append(X("Unit", value=unit))
    kids.append(X("Value", value=int(v)))
    return X(name, *kids)


def pv_value(el: Element | None) -> Decimal | None:
    """The value of a PhysicalValue element (or None)."""
    if el is None:
        return None
    v, mlt = el.find("Value"), el.find("Multiplier")
    if v is None:
        return None
    return Decimal(int(v.value)) * (Decimal(10) ** int(mlt.value if mlt is not None else 0))


def qualify(root: Element, key: str) -> Element:
    """Fill in the namespace of every element of ``root`` (given by local name) from the grammar of
    schema ``key``, following the same productions the encoder will (schema order)."""
    sg = get_codec(key).sg
    for (uri, local), (_code, g) in sg.document.by_qname.items():  # type: ignore[union-attr]
        if local == root.name:
            root.ns = uri
            _qualify_children(root, g)
            return root
    raise ValueError(f"{root.name} is no global element of schema {key!r}")


def _qualify_children(el: Element, g: Any) -> None:
    if g is None or g.simple_dt is not None:
        return
    state = g.start
    # attributes first (unqualified in -2 / DIN): skip over the attribute states
    for _ in range(8):
        if state is None or not state.attr_phase or not state.at:
            break
        nxt = next((p.next for p in state.prods if p.kind == 0 and p.local in el.attrs), None)
        if nxt is None:
            break
        state = nxt
    for child in el.children:
        if not isinstance(child, Element):
            continue
        if child.ns:
            continue
        p = next((p for (u, loc), p in state.se.items() if loc == child.name), None) if state is not None else None
        if p is None:
            raise ValueError(f"element {child.name!r} is not expected inside {el.name!r} here")
        child.ns = p.uri
        _qualify_children(child, p.child)
        state = p.next


def message(proto: Proto, body: Element, session_id: bytes) -> Element:
    """The V2G_Message around ``body`` with ``session_id`` in the header."""
    return X("V2G_Message", X("Header", X("SessionID", value=session_id)), X("Body", body))


def encode(proto: Proto, body: Element, session_id: bytes, *, validate: bool = True) -> bytes:
    """EXI bytes of a DIN / -2 message (``validate=False``: values outside the XSD facets go
    on the wire as the EXI representation allows)."""
    root = qualify(message(proto, body, session_id), proto.key)
    return get_codec(proto.key).encode(root, validate=validate)


def encode_out_of_range(proto: Proto, body: Element, session_id: bytes, leaf: Element, value: int, lo: int, nbits: int) -> bytes:
    """EXI bytes with ``leaf`` (an n-bit bounded integer of range ``lo``.., ``nbits`` wide) set to
    ``value`` outside its range but inside what the n-bit field can carry (EXI 7.1.9): a value the
    codec refuses to write.  The field is found by encoding the minimum and the minimum plus the
    top bit: the two streams differ only in that bit."""
    if not 0 <= value - lo < (1 << nbits):
        raise ValueError(f"{value} does not fit an n-bit field of {nbits} bits from {lo}")
    leaf.value = lo
    base = encode(proto, body, session_id)
    leaf.value = lo + (1 << (nbits - 1))
    other = encode(proto, body, session_id)
    diff = [i for i in range(len(base) * 8) if (base[i // 8] >> (7 - i % 8)) & 1 != (other[i // 8] >> (7 - i % 8)) & 1]
    if len(base) != len(other) or len(diff) != 1:
        raise ValueError("could not locate the n-bit field")
    start = diff[0]
    bits = bytearray(base)
    for k in range(nbits):
        bit = ((value - lo) >> (nbits - 1 - k)) & 1
        pos = start + k
        if bit:
            bits[pos // 8] |= 0x80 >> (pos % 8)
        else:
            bits[pos // 8] &= ~(0x80 >> (pos % 8)) & 0xFF
    leaf.value = value
    return bytes(bits)


class Msg:
    """A decoded DIN / -2 message: its body element by name, header fields and value access."""

    def __init__(self, root: Element) -> None:
        self.root = root
        body = root.find("Body")
        self.body: Element | None = None
        if body is not None:
            self.body = next((c for c in body.children if isinstance(c, Element)), None)
        hdr = root.find("Header")
        sid = hdr.find("SessionID") if hdr is not None else None
        self.session_id: bytes = bytes(sid.value) if sid is not None and sid.value is not None else b""

    @property
    def name(self) -> str:
        return self.body.name if self.body is not None else "(empty body)"

    @property
    def code(self) -> str | None:
        c = self.text("ResponseCode")
        return str(c) if c is not None else None

    def el(self, path: str) -> Element | None:
        cur = self.body
        for part in path.split("/"):
            if cur is None:
                return None
            cur = cur.find(part)
        return cur

    def all(self, path: str) -> list[Element]:
        """Every element at ``path`` (the last step may repeat)."""
        parts = path.split("/")
        parent = self.el("/".join(parts[:-1])) if len(parts) > 1 else self.body
        return parent.findall(parts[-1]) if parent is not None else []

    def text(self, path: str) -> Any:
        e = self.el(path)
        return e.value if e is not None else None

    def phys(self, path: str) -> Decimal | None:
        return pv_value(self.el(path))

    def summary(self) -> dict[str, Any]:
        """A small dict for the evidence log."""
        out: dict[str, Any] = {"name": self.name}
        if self.session_id:
            out["SessionID"] = self.session_id.hex()
        if self.body is not None:
            for c in self.body.children:
                if isinstance(c, Element):
                    out[c.name] = _plain(c)
        return out


def _plain(el: Element) -> Any:
    if not el.children:
        v = el.value
        return v.hex() if isinstance(v, (bytes, bytearray)) else (str(v) if isinstance(v, Decimal) else v)
    if el.find("Value") is not None and el.find("Multiplier") is not None:
        return str(pv_value(el))
    out: dict[str, Any] = {}
    for c in el.children:
        if isinstance(c, Element):
            v = _plain(c)
            if c.name in out:
                if not isinstance(out[c.name], list):
                    out[c.name] = [out[c.name]]
                out[c.name].append(v)
            else:
                out[c.name] = v
    return out


def decode(proto: Proto, payload: bytes) -> Msg:
    return Msg(get_codec(proto.key).decode(payload))


# ---------------------------------------------------------------------------- EV requests


@dataclass
class EvState:
    """What the tester vehicle says about itself (DC unless ``ac``)."""

    evcc_id: bytes = bytes.fromhex("0a1b2c3d4e5f")
    ac: bool = False
    soc: int = 40
    max_voltage: int = 450
    max_current: int = 120
    max_power: int = 50000
    target_voltage: int = 400
    target_current: int = 50
    ac_max_voltage: int = 240
    ac_max_current: int = 32
    ac_min_current: int = 6
    energy_request: int = 20000

    @property
    def mode(self) -> str:
        return "AC_single_phase_core" if self.ac else "DC_extended"


def dc_ev_status(proto: Proto, ev: EvState, *, ready: bool = True, name: str = "DC_EVStatus") -> Element:
    kids: list[Element | None] = [X("EVReady", value=ready)]
    if proto.din:
        kids += [X("EVCabinConditioning", value=False), X("EVRESSConditioning", value=False)]
    kids += [X("EVErrorCode", value="NO_ERROR"), X("EVRESSSOC", value=ev.soc)]
    return X(name, *kids)


def req_session_setup(proto: Proto, ev: EvState) -> Element:
    return X("SessionSetupReq", X("EVCCID", value=ev.evcc_id))


def req_service_discovery(proto: Proto, ev: EvState) -> Element:
    return X("ServiceDiscoveryReq")


def req_payment_selection(proto: Proto, ev: EvState, service_id: int = 1, option: str = "ExternalPayment") -> Element:
    return X(f"{proto.payment_selection}Req", X("SelectedPaymentOption", value=option),
             X("SelectedServiceList", X("SelectedService", X("ServiceID", value=service_id))))


def req_authorization(proto: Proto, ev: EvState) -> Element:
    return X(f"{proto.authorization}Req")


def req_charge_parameter(proto: Proto, ev: EvState, *, mode: str | None = None, soc: int | None = None) -> Element:
    mode = mode or ev.mode
    if mode.startswith("AC"):
        param = X("AC_EVChargeParameter", X("DepartureTime", value=3600),
                  pv(proto, "EAmount", ev.energy_request, "Wh"), pv(proto, "EVMaxVoltage", ev.ac_max_voltage, "V"),
                  pv(proto, "EVMaxCurrent", ev.ac_max_current, "A"), pv(proto, "EVMinCurrent", ev.ac_min_current, "A"))
    else:
        st = dc_ev_status(proto, ev)
        if soc is not None:
            st.find("EVRESSSOC").value = soc  # type: ignore[union-attr]
        param = X("DC_EVChargeParameter", st, pv(proto, "EVMaximumCurrentLimit", ev.max_current, "A"),
                  pv(proto, "EVMaximumPowerLimit", ev.max_power, "W"), pv(proto, "EVMaximumVoltageLimit", ev.max_voltage, "V"),
                  pv(proto, "EVEnergyCapacity", 80000, "Wh"), pv(proto, "EVEnergyRequest", ev.energy_request, "Wh"),
                  X("FullSOC", value=100), X("BulkSOC", value=80))
    if proto.din:
        return X("ChargeParameterDiscoveryReq", X("EVRequestedEnergyTransferType", value=mode), param)
    return X("ChargeParameterDiscoveryReq", X("MaxEntriesSAScheduleTuple", value=3),
             X("RequestedEnergyTransferMode", value=mode), param)


def req_cable_check(proto: Proto, ev: EvState) -> Element:
    return X("CableCheckReq", dc_ev_status(proto, ev))


def req_pre_charge(proto: Proto, ev: EvState, target_v: float | None = None) -> Element:
    return X("PreChargeReq", dc_ev_status(proto, ev), pv(proto, "EVTargetVoltage", target_v or ev.target_voltage, "V"),
             pv(proto, "EVTargetCurrent", 1, "A"))


def req_power_delivery(proto: Proto, ev: EvState, progress: str, tuple_id: int = 1) -> Element:
    """``progress``: Start / Stop / Renegotiate (DIN: ReadyToChargeState true for Start)."""
    dc = None
    if not ev.ac:
        dc = X("DC_EVPowerDeliveryParameter", dc_ev_status(proto, ev), X("BulkChargingComplete", value=False),
               X("ChargingComplete", value=progress == "Stop"))
    if proto.din:
        return X("PowerDeliveryReq", X("ReadyToChargeState", value=progress == "Start"), dc)
    return X("PowerDeliveryReq", X("ChargeProgress", value=progress), X("SAScheduleTupleID", value=tuple_id), dc)


def req_current_demand(proto: Proto, ev: EvState, *, current: float | None = None, voltage: float | None = None) -> Element:
    return X("CurrentDemandReq", dc_ev_status(proto, ev), pv(proto, "EVTargetCurrent", ev.target_current if current is None else current, "A"),
             pv(proto, "EVMaximumVoltageLimit", ev.max_voltage, "V"), pv(proto, "EVMaximumCurrentLimit", ev.max_current, "A"),
             pv(proto, "EVMaximumPowerLimit", ev.max_power, "W"), X("BulkChargingComplete", value=False),
             X("ChargingComplete", value=False), pv(proto, "RemainingTimeToFullSoC", 3600, "s"),
             pv(proto, "RemainingTimeToBulkSoC", 1800, "s"), pv(proto, "EVTargetVoltage", voltage or ev.target_voltage, "V"))


def req_charging_status(proto: Proto, ev: EvState) -> Element:
    return X("ChargingStatusReq")


def req_welding(proto: Proto, ev: EvState) -> Element:
    return X("WeldingDetectionReq", dc_ev_status(proto, ev, ready=False))


def req_session_stop(proto: Proto, ev: EvState, pause: bool = False) -> Element:
    if proto.din:
        return X("SessionStopReq")
    return X("SessionStopReq", X("ChargingSession", value="Pause" if pause else "Terminate"))


def now_s() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------- charger responses


@dataclass
class EvseState:
    """What the tester charger says about itself (DC unless ``ac``)."""

    ac: bool = False
    evse_id_din: bytes = bytes.fromhex("49DE0123")
    evse_id_iso2: str = "DE*TST*E0001"
    service_id: int = 1
    tuple_id: int = 17
    max_voltage: int = 920
    min_voltage: int = 150
    max_current: int = 40
    min_current: int = 0
    max_power: int = 20000
    present_voltage: Decimal = Decimal(0)
    present_current: Decimal = Decimal(0)
    status_code: str = "EVSE_Ready"
    notification: str = "None"
    isolation: str = "Valid"
    nominal_voltage: int = 230
    ac_max_current: int = 32


def dc_evse_status(proto: Proto, evse: EvseState, *, isolation: bool = True, name: str = "DC_EVSEStatus") -> Element:
    iso = X("EVSEIsolationStatus", value=evse.isolation) if isolation else None
    if proto.din:
        return X(name, iso, X("EVSEStatusCode", value=evse.status_code), X("NotificationMaxDelay", value=0),
                 X("EVSENotification", value=evse.notification))
    return X(name, X("NotificationMaxDelay", value=0), X("EVSENotification", value=evse.notification), iso,
             X("EVSEStatusCode", value=evse.status_code))


def ac_evse_status(proto: Proto, evse: EvseState) -> Element:
    if proto.din:
        return X("AC_EVSEStatus", X("PowerSwitchClosed", value=False), X("RCD", value=False), X("NotificationMaxDelay", value=0),
                 X("EVSENotification", value=evse.notification))
    return X("AC_EVSEStatus", X("NotificationMaxDelay", value=0), X("EVSENotification", value=evse.notification), X("RCD", value=False))


def evse_status(proto: Proto, evse: EvseState) -> Element:
    return ac_evse_status(proto, evse) if evse.ac else dc_evse_status(proto, evse)


def _rc(code: str) -> Element:
    return X("ResponseCode", value=code)


def res_session_setup(proto: Proto, evse: EvseState, code: str = "OK_NewSessionEstablished") -> Element:
    if proto.din:
        return X("SessionSetupRes", _rc(code), X("EVSEID", value=evse.evse_id_din), X("DateTimeNow", value=now_s()))
    return X("SessionSetupRes", _rc(code), X("EVSEID", value=evse.evse_id_iso2), X("EVSETimeStamp", value=now_s()))


def res_service_discovery(proto: Proto, evse: EvseState, code: str = "OK", payment: tuple[str, ...] = ("ExternalPayment",)) -> Element:
    if proto.din:
        mode = "DC_extended"
        return X("ServiceDiscoveryRes", _rc(code), X("PaymentOptions", *[X("PaymentOption", value=x) for x in payment]),
                 X("ChargeService", X("ServiceTag", X("ServiceID", value=evse.service_id), X("ServiceCategory", value="EVCharging")),
                   X("FreeService", value=False), X("EnergyTransferType", value=mode)))
    modes = ["AC_single_phase_core", "AC_three_phase_core"] if evse.ac else ["DC_extended", "DC_core"]
    return X("ServiceDiscoveryRes", _rc(code), X("PaymentOptionList", *[X("PaymentOption", value=x) for x in payment]),
             X("ChargeService", X("ServiceID", value=evse.service_id), X("ServiceCategory", value="EVCharging"),
               X("FreeService", value=False), X("SupportedEnergyTransferMode", *[X("EnergyTransferMode", value=x) for x in modes])))


def res_simple(proto: Proto, name: str, code: str = "OK") -> Element:
    """PaymentServiceSelectionRes / ServicePaymentSelectionRes / SessionStopRes: a ResponseCode only."""
    return X(name, _rc(code))


def res_authorization(proto: Proto, evse: EvseState, code: str = "OK", processing: str = "Finished") -> Element:
    return X(f"{proto.authorization}Res", _rc(code), X("EVSEProcessing", value=processing))


def sa_schedule_list(proto: Proto, evse: EvseState) -> Element:
    pmax = X("PMax", value=min(evse.max_power, 32767)) if proto.din else pv(proto, "PMax", evse.max_power, "W")
    entry = X("PMaxScheduleEntry", X("RelativeTimeInterval", X("start", value=0), X("duration", value=86400)), pmax)
    sched = X("PMaxSchedule", X("PMaxScheduleID", value=1), entry) if proto.din else X("PMaxSchedule", entry)
    return X("SAScheduleList", X("SAScheduleTuple", X("SAScheduleTupleID", value=evse.tuple_id), sched))


def res_charge_parameter(proto: Proto, evse: EvseState, code: str = "OK", processing: str = "Finished") -> Element:
    if evse.ac:
        param = X("AC_EVSEChargeParameter", ac_evse_status(proto, evse), pv(proto, "EVSENominalVoltage", evse.nominal_voltage, "V"),
                  pv(proto, "EVSEMaxCurrent", evse.ac_max_current, "A"))
    else:
        param = X("DC_EVSEChargeParameter", dc_evse_status(proto, evse), pv(proto, "EVSEMaximumCurrentLimit", evse.max_current, "A"),
                  pv(proto, "EVSEMaximumPowerLimit", evse.max_power, "W"), pv(proto, "EVSEMaximumVoltageLimit", evse.max_voltage, "V"),
                  pv(proto, "EVSEMinimumCurrentLimit", evse.min_current, "A"), pv(proto, "EVSEMinimumVoltageLimit", evse.min_voltage, "V"),
                  pv(proto, "EVSEPeakCurrentRipple", 1, "A"))
    return X("ChargeParameterDiscoveryRes", _rc(code), X("EVSEProcessing", value=processing), sa_schedule_list(proto, evse), param)


def res_cable_check(proto: Proto, evse: EvseState, code: str = "OK", processing: str = "Finished") -> Element:
    return X("CableCheckRes", _rc(code), dc_evse_status(proto, evse), X("EVSEProcessing", value=processing))


def res_pre_charge(proto: Proto, evse: EvseState, code: str = "OK") -> Element:
    return X("PreChargeRes", _rc(code), dc_evse_status(proto, evse), pv(proto, "EVSEPresentVoltage", evse.present_voltage, "V"))


def res_power_delivery(proto: Proto, evse: EvseState, code: str = "OK") -> Element:
    return X("PowerDeliveryRes", _rc(code), evse_status(proto, evse))


def res_current_demand(proto: Proto, evse: EvseState, code: str = "OK") -> Element:
    kids: list[Element | None] = [
        _rc(code), dc_evse_status(proto, evse), pv(proto, "EVSEPresentVoltage", evse.present_voltage, "V"),
        pv(proto, "EVSEPresentCurrent", evse.present_current, "A"), X("EVSECurrentLimitAchieved", value=False),
        X("EVSEVoltageLimitAchieved", value=False), X("EVSEPowerLimitAchieved", value=False),
        pv(proto, "EVSEMaximumVoltageLimit", evse.max_voltage, "V"), pv(proto, "EVSEMaximumCurrentLimit", evse.max_current, "A"),
        pv(proto, "EVSEMaximumPowerLimit", evse.max_power, "W")]
    if not proto.din:
        kids += [X("EVSEID", value=evse.evse_id_iso2), X("SAScheduleTupleID", value=evse.tuple_id)]
    return X("CurrentDemandRes", *kids)


def res_charging_status(proto: Proto, evse: EvseState, code: str = "OK") -> Element:
    return X("ChargingStatusRes", _rc(code), X("EVSEID", value=evse.evse_id_iso2), X("SAScheduleTupleID", value=evse.tuple_id),
             pv(proto, "EVSEMaxCurrent", evse.ac_max_current, "A"), X("ReceiptRequired", value=False), ac_evse_status(proto, evse))


def res_welding(proto: Proto, evse: EvseState, code: str = "OK") -> Element:
    return X("WeldingDetectionRes", _rc(code), dc_evse_status(proto, evse), pv(proto, "EVSEPresentVoltage", evse.present_voltage, "V"))


def default_response(proto: Proto, evse: EvseState, req: Msg, code: str | None = None) -> Element | None:
    """The tester charger's normal answer to ``req`` (None: a request it has no answer for)."""
    n = req.name
    if n == "SessionSetupReq":
        return res_session_setup(proto, evse, code or "OK_NewSessionEstablished")
    code = code or "OK"
    if n == "ServiceDiscoveryReq":
        return res_service_discovery(proto, evse, code)
    if n in ("ServicePaymentSelectionReq", "PaymentServiceSelectionReq", "SessionStopReq"):
        return res_simple(proto, n[:-3] + "Res", code)
    if n in ("ContractAuthenticationReq", "AuthorizationReq"):
        return res_authorization(proto, evse, code)
    if n == "ChargeParameterDiscoveryReq":
        return res_charge_parameter(proto, evse, code)
    if n == "CableCheckReq":
        return res_cable_check(proto, evse, code)
    if n == "PreChargeReq":
        target = req.phys("EVTargetVoltage")
        if target is not None:
            evse.present_voltage = min(target, Decimal(evse.max_voltage))
        return res_pre_charge(proto, evse, code)
    if n == "PowerDeliveryReq":
        return res_power_delivery(proto, evse, code)
    if n == "CurrentDemandReq":
        tv, tc = req.phys("EVTargetVoltage"), req.phys("EVTargetCurrent")
        if tv is not None:
            evse.present_voltage = min(tv, Decimal(evse.max_voltage))
        if tc is not None:
            evse.present_current = max(Decimal(0), min(tc, Decimal(evse.max_current)))
        return res_current_demand(proto, evse, code)
    if n == "ChargingStatusReq":
        return res_charging_status(proto, evse, code)
    if n == "WeldingDetectionReq":
        evse.present_voltage = Decimal(0)
        evse.present_current = Decimal(0)
        return res_welding(proto, evse, code)
    return None


def legacy_evcc_configs(loops: int) -> dict[Any, Any]:
    """The DIN / -2 EVCC core configurations of our stack: ``loops`` charge-loop cycles, 50 ms apart."""
    from iso15118.facts.namespaces import AppProtocol
    from iso15118.session.din import DinEvccConfig
    from iso15118.session.iso2 import Iso2EvccConfig

    configs: dict[Any, Any] = {
        AppProtocol.ISO2: Iso2EvccConfig(max_loops=loops, loop_interval=0.05, ongoing_interval=0.05),
        AppProtocol.DIN: DinEvccConfig(max_loops=loops, loop_interval=0.05, ongoing_interval=0.05),
    }
    return configs
