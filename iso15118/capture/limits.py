"""Protocol facts the decoder needs: negotiated protocol from the SupportedAppProtocol namespace,
the schema for each payload, and the timing limits responses are checked against.

Timing limits (seconds):

* ``timeout``: V2G_EVCC_Msg_Timeout, how long the EV waits for the response.  -20 values from the
  implementer's digest §6.1 (Josev ``t20``); -2 values per ISO 15118-2 Table 109 as quoted by
  public implementations (CurrentDemand 0.25 s; ServiceDetail, PaymentDetails, PowerDelivery,
  CertificateInstallation, CertificateUpdate 5 s; all others 2 s).  DIN SPEC 70121 uses the -2
  values here (an assumption: DIN's own table is not available to us).
* ``performance``: V2G_SECC_Msg_Performance_Time, how long the charger may take.  -2 / DIN:
  CurrentDemand 25 ms, the five "backend" messages above 4.5 s, all others 1.5 s.  -20: not in
  our sources; the -2 defaults are used and flagged as such in the report.
* SECC sequence timeout: 60 s between a response and the next request (digest §6.2).
"""

from __future__ import annotations

__all__ = [
    "COMMUNICATION_SETUP_TIMEOUT",
    "SECC_SEQUENCE_TIMEOUT",
    "loop_limit",
    "protocol_for_namespace",
    "schema_for",
    "timing_limits",
]

SECC_SEQUENCE_TIMEOUT = 60.0
COMMUNICATION_SETUP_TIMEOUT = 20.0
"""V2G_EVCC_CommunicationSetup_Timeout: plug-in to SessionSetupRes (digest §6.2).  The plug-in is
not in a capture; the decoder measures from the first CM_SLAC_PARAM.REQ, a lower bound."""


def loop_limit(protocol: str | None, base: str) -> tuple[float, str] | None:
    """(limit in s, timer name) of a repeated-request loop, or None (digest §6.2; -2 values as
    Josev's -2 table: PreCharge 7 s)."""
    b = base[3:] if base.startswith("DC_") else base
    if b == "CableCheck":
        return 40.0, "V2G_EVCC_CableCheck_Timeout"
    if b == "PreCharge":
        return (10.0 if protocol == "-20" else 7.0), "V2G_EVCC_PreCharge_Timeout"
    if b in ("Authorization", "ContractAuthentication", "ChargeParameterDiscovery", "ScheduleExchange",
             "AC_ChargeParameterDiscovery", "CertificateInstallation"):
        return 60.0, "V2G_EVCC_Ongoing_Timeout"
    return None

_PROTOCOLS = {
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
    "urn:iso:15118:2:2010:MsgDef": "iso2-2010",
}

PROTOCOL_LABELS = {
    "din": "DIN SPEC 70121",
    "iso2": "ISO 15118-2",
    "iso2-2010": "ISO 15118-2 (2010 draft, decoded as -2:2013)",
    "-20": "ISO 15118-20",
}

_PT_SCHEMA_20 = {0x8002: "common", 0x8003: "ac", 0x8004: "dc", 0x8005: "acdp", 0x8006: "wpt",
                 0x8101: "common", 0x8102: "common", 0x8103: "acdp", 0x8104: "common"}


def protocol_for_namespace(ns: str) -> str | None:
    """``din`` / ``iso2`` / ``-20`` for an AppProtocol namespace, None when unknown."""
    if ns in _PROTOCOLS:
        return _PROTOCOLS[ns]
    if ns.startswith("urn:iso:std:iso:15118:-20:"):
        return "-20"
    return None


def schema_for(payload_type: int, protocol: str | None, sap_done: bool) -> str | None:
    """The EXI schema key for a payload, given the negotiated protocol (None before / unknown).

    0x8001 is SupportedAppProtocol until the negotiation is done, and after it every -2 / DIN
    message; for -20 it stays SupportedAppProtocol.
    """
    if payload_type == 0x8001:
        if not sap_done or protocol in (None, "-20"):
            return "sap"
        return "din" if protocol == "din" else "iso2"
    return _PT_SCHEMA_20.get(payload_type)


_BACKEND = {"ServiceDetail", "PaymentDetails", "PowerDelivery", "CertificateInstallation", "CertificateUpdate"}
_TIMEOUT_20 = {
    "ServiceDetail": 5.0,
    "CertificateInstallation": 5.0,
    "AC_ChargeLoop": 0.5,
    "DC_ChargeLoop": 0.5,
}


def timing_limits(protocol: str | None, request: str) -> tuple[float, float, str]:
    """(EVCC timeout, SECC performance time, source note) for a request name without ``Req``."""
    base = request[:-3] if request.endswith("Req") else request
    if base.lower() == "supportedappprotocol":
        return 2.0, 1.5, "SAP: EVCC 2 s (digest §6.1); performance 1.5 s (-2 default)"
    if protocol == "-20":
        return _TIMEOUT_20.get(base, 2.0), 1.5, "-20: EVCC timeout per digest §6.1; performance time assumed 1.5 s (-2 default)"
    if base == "CurrentDemand":
        return 0.25, 0.025, "ISO 15118-2 Table 109"
    if base in _BACKEND:
        return 5.0, 4.5, "ISO 15118-2 Table 109"
    return 2.0, 1.5, "ISO 15118-2 Table 109" + (" (DIN assumed equal)" if protocol == "din" else "")
