"""Message parts both -2 cores build and read: the V2G_Message envelope, PhysicalValues, energy
transfer modes, status records and the minimal responses that carry a FAILED code.  Typed -2 classes only (``iso15118.messages.iso2``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from iso15118.facts.namespaces import Family
from iso15118.messages import iso2 as m2
from iso15118.session.services import EnergyService

ETM = m2.EnergyTransferMode
RC2 = m2.ResponseCode
D0 = Decimal(0)


# ----------------------------------------------------------------- envelope


def encode_message(session_id: bytes, body: Any) -> bytes:
    """EXI bytes (schema ``iso2``) of ``V2G_Message{Header{SessionID}, Body{body}}``."""
    return m2.encode(m2.message(session_id, body))


def decode_message(payload: bytes) -> m2.V2GMessage:
    """The typed -2 message of ``payload``; raises only the codec's / typed layer's errors."""
    return m2.decode(payload)


def body_of(msg: m2.V2GMessage) -> Any:
    return msg.body.body_element


def element_name(body: Any) -> str:
    """The body element's name (``SessionSetupReq`` ...): the -2 class names equal them."""
    return type(body).__name__


def evcc_id_bytes(evcc_id: str) -> bytes:
    """A -2 EVCCID (hexBinary, at most 6 bytes, digest §3.3: the EV's MAC): the ID itself when it
    is already a 12-digit hex MAC, else 6 bytes derived from it (a locally administered MAC)."""
    text = evcc_id.replace(":", "").replace("-", "")
    if len(text) == 12:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    raw = bytearray(hashlib.sha256(evcc_id.encode()).digest()[:6])
    raw[0] = (raw[0] | 0x02) & 0xFE
    return bytes(raw)


def evse_id_string(evse_id: str) -> str:
    """A -2 EVSEID (string of 7..37 characters)."""
    text = evse_id[:37]
    return text if len(text) >= 7 else (text + "*0000000")[:7]


# ----------------------------------------------------------------- numbers

_UNITS = {"W": m2.UnitSymbol.W, "A": m2.UnitSymbol.A, "V": m2.UnitSymbol.V, "Wh": m2.UnitSymbol.WH,
          "s": m2.UnitSymbol.S}


def pv(value: Decimal | float | int, unit: str) -> m2.PhysicalValue:
    """``value`` as a PhysicalValue (Value a short, Multiplier -3..3): exact with the smallest
    multiplier magnitude when possible, else rounded with the finest multiplier that fits."""
    d = Decimal(str(value))
    for mult in (0, -1, -2, -3, 1, 2, 3):
        scaled = d.scaleb(-mult)
        if scaled == scaled.to_integral_value() and -32768 <= scaled <= 32767:
            return m2.PhysicalValue(multiplier=mult, unit=_UNITS[unit], value=int(scaled))
    for mult in range(-3, 4):
        v = int(d.scaleb(-mult).to_integral_value())
        if -32768 <= v <= 32767:
            return m2.PhysicalValue(multiplier=mult, unit=_UNITS[unit], value=v)
    v = max(-32768, min(32767, int(d.scaleb(-3).to_integral_value())))
    return m2.PhysicalValue(multiplier=3, unit=_UNITS[unit], value=v)


def dv(value: m2.PhysicalValue | None) -> Decimal:
    """The Decimal of a PhysicalValue (0 for None)."""
    if value is None:
        return D0
    return Decimal(value.value).scaleb(value.multiplier)


# ----------------------------------------------------------------- energy transfer modes

AC_MODES = (ETM.AC_SINGLE_PHASE_CORE, ETM.AC_THREE_PHASE_CORE)
DC_MODES = (ETM.DC_EXTENDED, ETM.DC_CORE, ETM.DC_COMBO_CORE, ETM.DC_UNIQUE)


def family_of_mode(mode: ETM) -> Family:
    return Family.AC if mode in AC_MODES else Family.DC


def service_of_family(family: Family) -> EnergyService:
    """The (unidirectional) -20 service a -2 session of ``family`` maps to for the controllers:
    -2 has no bidirectional power transfer."""
    return EnergyService.AC if family is Family.AC else EnergyService.DC


def offered_modes(services: list[EnergyService], ac_modes: tuple[ETM, ...]) -> list[ETM]:
    """The energy transfer modes a charger with these -20 services offers in -2."""
    fams = {s.family for s in services if s.family is not None}
    out: list[ETM] = []
    if Family.AC in fams:
        out += list(ac_modes)
    if Family.DC in fams:
        out += [ETM.DC_EXTENDED, ETM.DC_CORE]
    return out


# ----------------------------------------------------------------- status records


def dc_ev_status(soc: int | None, ready: bool = True) -> m2.DCEVStatus:
    return m2.DCEVStatus(ev_ready=ready, ev_error_code=m2.DCEVErrorCode.NO_ERROR,
                         evresssoc=max(0, min(100, int(soc if soc is not None else 0))))


def ac_evse_status(notification: m2.EVSENotification = m2.EVSENotification.NONE, delay: int = 0) -> m2.ACEVSEStatus:
    return m2.ACEVSEStatus(notification_max_delay=delay, evse_notification=notification, rcd=False)


def dc_evse_status(
    notification: m2.EVSENotification = m2.EVSENotification.NONE,
    delay: int = 0,
    isolation: m2.IsolationLevel | None = None,
    code: m2.DCEVSEStatusCode = m2.DCEVSEStatusCode.EVSE_READY,
) -> m2.DCEVSEStatus:
    return m2.DCEVSEStatus(notification_max_delay=delay, evse_notification=notification,
                           evse_isolation_status=isolation, evse_status_code=code)


def evse_status(family: Family | None, notification: m2.EVSENotification = m2.EVSENotification.NONE,
                delay: int = 0) -> m2.ACEVSEStatus | m2.DCEVSEStatus:
    if family is Family.DC:
        return dc_evse_status(notification, delay, m2.IsolationLevel.VALID)
    return ac_evse_status(notification, delay)


# ----------------------------------------------------------------- minimal responses


def minimal_response(request_name: str, code: RC2, family: Family | None, evse_id: str = "ZZ00000") -> Any:
    """The smallest schema-valid -2 response to ``request_name`` carrying ``code`` (the answer to
    an out-of-sequence request, a wrong SessionID, any FAILED case; digest §5.1)."""
    z = pv(0, "V")
    st = evse_status(family)
    dc = dc_evse_status(isolation=m2.IsolationLevel.INVALID, code=m2.DCEVSEStatusCode.EVSE_NOT_READY)
    fin = m2.EVSEProcessing.FINISHED
    builders: dict[str, Callable[[], Any]] = {
        "SessionSetupReq": lambda: m2.SessionSetupRes(response_code=code, evse_id=evse_id),
        "ServiceDiscoveryReq": lambda: m2.ServiceDiscoveryRes(
            response_code=code,
            payment_option_list=m2.PaymentOptionList(payment_option=[m2.PaymentOption.EXTERNAL_PAYMENT]),
            charge_service=m2.ChargeService(
                service_id=1, service_category=m2.ServiceCategory.EV_CHARGING, free_service=False,
                supported_energy_transfer_mode=m2.SupportedEnergyTransferMode(energy_transfer_mode=[ETM.DC_EXTENDED]),
            ),
        ),
        "ServiceDetailReq": lambda: m2.ServiceDetailRes(response_code=code, service_id=1),
        "PaymentServiceSelectionReq": lambda: m2.PaymentServiceSelectionRes(response_code=code),
        "PaymentDetailsReq": lambda: m2.PaymentDetailsRes(response_code=code, gen_challenge=bytes(16), evse_time_stamp=0),
        "AuthorizationReq": lambda: m2.AuthorizationRes(response_code=code, evse_processing=fin),
        "ChargeParameterDiscoveryReq": lambda: m2.ChargeParameterDiscoveryRes(
            response_code=code, evse_processing=fin,
            evse_charge_parameter=m2.ACEVSEChargeParameter(
                ac_evse_status=ac_evse_status(), evse_nominal_voltage=z, evse_max_current=pv(0, "A"))
            if family is Family.AC else m2.DCEVSEChargeParameter(
                dc_evse_status=dc, evse_maximum_current_limit=pv(0, "A"), evse_maximum_power_limit=pv(0, "W"),
                evse_maximum_voltage_limit=z, evse_minimum_current_limit=pv(0, "A"), evse_minimum_voltage_limit=z,
                evse_peak_current_ripple=pv(0, "A")),
        ),
        "CableCheckReq": lambda: m2.CableCheckRes(response_code=code, dc_evse_status=dc, evse_processing=fin),
        "PreChargeReq": lambda: m2.PreChargeRes(response_code=code, dc_evse_status=dc, evse_present_voltage=z),
        "PowerDeliveryReq": lambda: m2.PowerDeliveryRes(response_code=code, evse_status=st),
        "ChargingStatusReq": lambda: m2.ChargingStatusRes(
            response_code=code, evse_id=evse_id, sa_schedule_tuple_id=1, ac_evse_status=ac_evse_status()),
        "CurrentDemandReq": lambda: m2.CurrentDemandRes(
            response_code=code, dc_evse_status=dc, evse_present_voltage=z, evse_present_current=pv(0, "A"),
            evse_current_limit_achieved=False, evse_voltage_limit_achieved=False, evse_power_limit_achieved=False,
            evse_id=evse_id, sa_schedule_tuple_id=1),
        "WeldingDetectionReq": lambda: m2.WeldingDetectionRes(response_code=code, dc_evse_status=dc,
                                                              evse_present_voltage=z),
        "SessionStopReq": lambda: m2.SessionStopRes(response_code=code),
        "MeteringReceiptReq": lambda: m2.MeteringReceiptRes(response_code=code, evse_status=st),
    }
    return builders[request_name]()
