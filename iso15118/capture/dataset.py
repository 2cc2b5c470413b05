"""The fleet dataset: decoded captures as tables (the schema, as code, and the rows).

``iso15118 decode CAPTURES --format parquet -o DIR`` writes one Parquet file per table into
``DIR``; ``docs/dataset.md`` describes them for people, :data:`TABLES` here for the code (a test
checks the two agree).  Rows come straight from the decoder's events (:class:`DatasetBuilder`),
one capture at a time; the tables are:

``captures``  one row per capture file (exit status, counts, or why it could not be read)
``messages``  one row per V2G message (the ``v2g`` events of ``--format json``), with the
              values people chart pulled out as numbers (physical values scaled)
``sessions``  one row per charging session (the sessions of ``--summary``), with the vehicle and
              charger identifiers, the outcome and the timing violations
``events``    one row per other event: SLAC, SDP, TCP, TLS, timing, framing, capture damage

Session keys: ``session`` is the SessionID the charger assigned (hex), or ``connection N`` for a
connection where none was seen; ``(capture, session)`` is unique.  Messages and events of a
connection carry the key of the session the connection belongs to.

pyarrow is imported lazily (only :func:`arrow_schema`, :meth:`DatasetBuilder.tables` and the
writer need it): the decoder itself never does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from iso15118.capture.decode import json_value
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event
from iso15118.capture.leaves import Leaves
from iso15118.capture.summary import SummaryBuilder

__all__ = [
    "Column",
    "TABLES",
    "CHART_FIELDS",
    "DatasetBuilder",
    "DatasetWriter",
    "arrow_schema",
    "capture_row",
    "table_files",
]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """``string``, ``int64``, ``float64``, ``bool``, ``timestamp`` (µs, UTC) or ``list<int64>``."""
    doc: str


def _c(name: str, type_: str, doc: str) -> Column:
    return Column(name, type_, doc)


CHART_FIELDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("soc", ("EVRESSSOC", "PresentSOC"), "state of charge, % (DIN / -2 EVRESSSOC, -20 PresentSOC)"),
    ("target_soc", ("TargetSOC",), "target state of charge, % (-20)"),
    ("ev_target_voltage", ("EVTargetVoltage",), "V"),
    ("ev_target_current", ("EVTargetCurrent",), "A"),
    ("ev_present_voltage", ("EVPresentVoltage",), "V (-20)"),
    ("evse_present_voltage", ("EVSEPresentVoltage",), "V"),
    ("evse_present_current", ("EVSEPresentCurrent",), "A"),
    ("ev_present_power", ("EVPresentActivePower",), "W (-20 AC)"),
    ("evse_target_power", ("EVSETargetActivePower",), "W (-20 AC)"),
    ("ev_max_voltage", ("EVMaximumVoltageLimit", "EVMaximumVoltage"), "V"),
    ("ev_max_current", ("EVMaximumCurrentLimit", "EVMaximumChargeCurrent", "EVMaxCurrent"), "A"),
    ("ev_max_power", ("EVMaximumPowerLimit", "EVMaximumChargePower"), "W"),
    ("ev_max_discharge_power", ("EVMaximumDischargePower",), "W (-20 BPT)"),
    ("evse_max_voltage", ("EVSEMaximumVoltageLimit", "EVSEMaximumVoltage"), "V"),
    ("evse_max_current", ("EVSEMaximumCurrentLimit", "EVSEMaximumChargeCurrent", "EVSEMaxCurrent"), "A"),
    ("evse_max_power", ("EVSEMaximumPowerLimit", "EVSEMaximumChargePower"), "W"),
    ("evse_max_discharge_power", ("EVSEMaximumDischargePower",), "W (-20 BPT)"),
    ("meter_wh", ("MeterReading", "ChargedEnergyReadingWh"), "meter reading, Wh"),
)
"""(column, leaf element names, unit): the column holds the first leaf in document order that has
one of the names, as a number (physical values scaled: Value x 10^Multiplier / 10^Exponent)."""

STATUS_FIELDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("evse_processing", ("EVSEProcessing",), "Finished / Ongoing ..."),
    ("charge_progress", ("ChargeProgress",), "Start / Stop / Renegotiate (-2, -20 PowerDeliveryReq)"),
    ("ev_error_code", ("EVErrorCode",), "DC EV status error code (DIN / -2)"),
    ("evse_status_code", ("EVSEStatusCode",), "EVSE status code (DIN / -2 DC)"),
    ("evse_notification", ("EVSENotification",), "EVSE notification (None / StopCharging / ReNegotiation)"),
)
"""(column, leaf names, meaning): the first such leaf, as text."""

_MESSAGE_HEAD = (
    _c("capture", "string", "capture file (as named on the command line or found in a directory)"),
    _c("frame", "int64", "capture frame of the message's last byte"),
    _c("time", "timestamp", "capture time of that frame (UTC)"),
    _c("ts", "float64", "the same as seconds since the epoch"),
    _c("conn", "int64", "TCP connection number within the capture"),
    _c("session", "string", "session key (joins sessions.session)"),
    _c("session_id", "string", "SessionID in the message header (hex), as the decoder reports it"),
    _c("direction", "string", "EV->EVSE or EVSE->EV"),
    _c("protocol", "string", "negotiated protocol: din, iso2, -20 (null before the negotiation)"),
    _c("schema", "string", "EXI schema the payload was decoded with (sap, din, iso2, common, dc, ac, ...)"),
    _c("payload_type", "int64", "V2GTP payload type"),
    _c("tls", "bool", "carried in TLS"),
    _c("name", "string", "message name (e.g. CurrentDemandReq); 'undecodable (schema)' when it did not decode"),
    _c("level", "string", "info / warning / error"),
    _c("response_code", "string", "ResponseCode of a response"),
    _c("response_time_s", "float64", "response: seconds since its request"),
    _c("timing", "string", "response: the limit it broke (performance_time / evcc_timeout)"),
    _c("decode_error", "string", "why the payload did not decode"),
)
MESSAGES: tuple[Column, ...] = (
    *_MESSAGE_HEAD,
    *(_c(n, "float64", u) for n, _, u in CHART_FIELDS),
    _c("evse_present_power_w", "float64", "EVSE->EV: evse_present_voltage x evse_present_current, else evse_target_power"),
    _c("ev_target_power_w", "float64", "EV->EVSE: ev_target_voltage x ev_target_current, else ev_present_power"),
    *(_c(n, "string", m) for n, _, m in STATUS_FIELDS),
)

SESSIONS: tuple[Column, ...] = (
    _c("capture", "string", "capture file"),
    _c("session", "string", "session key: SessionID (hex), or 'connection N' when none was assigned"),
    _c("session_id", "string", "SessionID (hex), null when none was assigned"),
    _c("protocol", "string", "protocol label (DIN SPEC 70121, ISO 15118-2, ISO 15118-20)"),
    _c("connections", "list<int64>", "TCP connections of the session"),
    _c("evccid", "string", "EVCCID from SessionSetupReq (the vehicle's MAC for DIN / -2)"),
    _c("pev_mac", "string", "vehicle MAC from SLAC (CM_SLAC_MATCH.CNF)"),
    _c("evse_id", "string", "EVSEID from SessionSetupRes (text when printable, else hex)"),
    _c("evse_mac", "string", "charger MAC from SLAC (CM_SLAC_MATCH.CNF)"),
    _c("secc", "string", "charger address and port from the SDP response"),
    _c("start", "timestamp", "first message"),
    _c("end", "timestamp", "last message"),
    _c("duration_s", "float64", "end - start"),
    _c("messages_ev", "int64", "messages EV->EVSE"),
    _c("messages_evse", "int64", "messages EVSE->EV"),
    _c("services_offered", "string", "ServiceDiscoveryRes: the offer, as JSON (ServiceID, EnergyTransfer, PaymentOption ...)"),
    _c("energy_transfer", "string", "selected energy transfer mode / service"),
    _c("payment", "string", "selected payment option (ExternalPayment / Contract)"),
    _c("authorization", "string", "authorization: -20 SelectedAuthorizationService, else the payment option"),
    _c("energy_charged_wh", "float64", "energy into the vehicle, integrated from the EVSE's present voltage x current"),
    _c("energy_discharged_wh", "float64", "energy out of the vehicle, likewise"),
    _c("meter_first_wh", "float64", "first meter reading"),
    _c("meter_last_wh", "float64", "last meter reading"),
    _c("charge_max_w", "float64", "highest EVSE present power into the vehicle"),
    _c("discharge_max_w", "float64", "highest EVSE present power out of the vehicle"),
    _c("soc_first", "float64", "first SOC, %"),
    _c("soc_last", "float64", "last SOC, %"),
    _c("failed_responses", "int64", "responses with a FAILED response code"),
    _c("result", "string", "failed (a FAILED response), completed (SessionStopRes), aborted (connection closed first), "
                           "incomplete (the capture ends first)"),
    _c("stop_reason", "string", "why it ended: the first FAILED response, else the first sign of the end in time (EV "
                                "error code, EVSE stop / shutdown status, PowerDeliveryReq Stop, SessionStopReq), "
                                "else how the connection or the capture ended after which message"),
    _c("timing_violations", "int64", "timing events of the session's connections"),
    _c("timing_rules", "string", "those by rule, as JSON ({rule: count})"),
)

EVENTS: tuple[Column, ...] = (
    _c("capture", "string", "capture file"),
    _c("frame", "int64", "capture frame"),
    _c("time", "timestamp", "capture time (UTC)"),
    _c("ts", "float64", "seconds since the epoch"),
    _c("kind", "string", "slac, sdp, tcp, tls, timing, framing, capture, note"),
    _c("name", "string", "e.g. CM_SLAC_MATCH.CNF, TCP RST, CurrentDemandRes slow"),
    _c("level", "string", "info / warning / error"),
    _c("direction", "string", "EV->EVSE, EVSE->EV, local (host and own modem)"),
    _c("conn", "int64", "TCP connection (TCP, TLS, timing, framing events)"),
    _c("session", "string", "session key of the connection (joins sessions.session)"),
    _c("src", "string", "source address (MAC, or [IP]:port)"),
    _c("dst", "string", "destination address"),
    _c("detail", "string", "the decoder's explanation"),
    _c("rule", "string", "timing: performance_time, evcc_timeout, sequence_timeout, loop_timeout, communication_setup"),
    _c("limit_s", "float64", "timing: the limit, s"),
    _c("measured_s", "float64", "timing: the measured time, s (response time, delay, loop or set-up time)"),
    _c("fields", "string", "every field of the event, as JSON (SLAC: RunID, NID, PEV_MAC ...; SDP: SECC, Port ...)"),
)

CAPTURES: tuple[Column, ...] = (
    _c("capture", "string", "capture file"),
    _c("status", "int64", "exit status of decoding it alone: 0 clean, 1 problems found, 3 not a capture"),
    _c("error", "string", "why it could not be read (status 3)"),
    _c("frames", "int64", "frames read"),
    _c("v2g_messages", "int64", "V2G messages"),
    _c("decode_errors", "int64", "undecodable payloads"),
    _c("capture_problems", "int64", "file damage found"),
    _c("start", "timestamp", "first event"),
    _c("end", "timestamp", "last event"),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "captures": CAPTURES,
    "messages": MESSAGES,
    "sessions": SESSIONS,
    "events": EVENTS,
}
"""Every table of the dataset, its columns in order."""


_SCHEMAS: dict[str, Any] = {}


def arrow_schema(table: str) -> Any:
    """The pyarrow schema of a table of :data:`TABLES`."""
    if table in _SCHEMAS:
        return _SCHEMAS[table]
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "list<int64>": pa.list_(pa.int64()),
    }
    schema = _SCHEMAS[table] = pa.schema([pa.field(c.name, types[c.type]) for c in TABLES[table]])
    return schema


def table_files(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``{table: path}`` of the Parquet files of a dataset directory."""
    return {t: os.path.join(directory, f"{t}.parquet") for t in TABLES}


# --------------------------------------------------------------------------------------------
# Rows


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, (bool, str, bytes, bytearray)):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    j = json_value(v)
    return j if isinstance(j, str) else json.dumps(j) if isinstance(j, list) else str(j)


def _ident(v: Any) -> str | None:
    """An identifier as people read it: printable ASCII bytes as text, other bytes as hex."""
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        if len(b) > 2 and all(32 <= c < 127 for c in b):
            return b.decode("ascii")
        return b.hex().upper()
    return None if v is None else str(v)


_LEAF_TO_COLUMN: dict[str, list[tuple[int, str, bool]]] = {}
for _i, (_col, _leaves, _) in enumerate(CHART_FIELDS):
    for _leaf in _leaves:
        _LEAF_TO_COLUMN.setdefault(_leaf, []).append((_i, _col, True))
for _i, (_col, _leaves, _) in enumerate(STATUS_FIELDS):
    for _leaf in _leaves:
        _LEAF_TO_COLUMN.setdefault(_leaf, []).append((_i, _col, False))


def message_values(leaves: Leaves) -> dict[str, Any]:
    """The chart and status columns of one decoded message (its leaves)."""
    out: dict[str, Any] = {}
    to_column = _LEAF_TO_COLUMN
    for name, v in leaves.seq:
        targets = to_column.get(name)
        if targets is None:
            continue
        for _i, col, numeric in targets:
            if col in out:
                continue
            if numeric:
                num = _number(v)
                if num is not None:
                    out[col] = num
            elif v is not None:
                out[col] = _text(v)
    return out


_EV_OK_CODES = ("NO_ERROR",)
_EVSE_STOP = ("StopCharging", "EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_UtilityInterruptEvent",
              "EVSE_Malfunction")


class _ConnInfo:
    """What the dataset needs of one connection beyond the summary's session."""

    __slots__ = ("evccid", "evse_id", "stop", "stop_res", "last", "closed", "timing", "first_failure", "failed")

    def __init__(self) -> None:
        self.evccid: str | None = None
        self.evse_id: str | None = None
        self.stop: str | None = None
        self.stop_res = False
        self.last: str | None = None
        self.closed: str | None = None
        self.timing: dict[str, int] = {}
        self.first_failure: str | None = None
        self.failed = 0


class DatasetBuilder:
    """Rows of one capture: feed every event with :meth:`add`, then :meth:`tables`."""

    def __init__(self, capture: str) -> None:
        self.capture = capture
        self.summary = SummaryBuilder()
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.conns: dict[int, _ConnInfo] = {}
        self.slac_matches: list[tuple[float, str | None, str | None]] = []
        self.secc: str | None = None

    def _conn(self, conn: int | None) -> _ConnInfo | None:
        if conn is None:
            return None
        info = self.conns.get(conn)
        if info is None:
            info = self.conns[conn] = _ConnInfo()
        return info

    def add(self, ev: Event) -> None:
        self.summary.add(ev)
        if ev.kind == "v2g":
            self._message(ev)
        else:
            self._event(ev)

    def _message(self, ev: Event) -> None:
        d = ev.decoded
        row: dict[str, Any] = {
            "capture": self.capture, "frame": ev.frame, "time": _us(ev.ts), "ts": ev.ts, "conn": ev.conn,
            "session_id": ev.session_id, "direction": ev.direction, "protocol": ev.protocol, "schema": ev.schema,
            "payload_type": ev.payload_type, "tls": ev.tls, "name": ev.name, "level": ev.level,
            "response_code": ev.response_code, "response_time_s": ev.response_time, "timing": ev.timing,
            "decode_error": d.error if d is not None else None,
        }
        info = self._conn(ev.conn)
        if d is not None and d.error is None:
            lv = d.leaves
            vals = message_values(lv)
            row.update(vals)
            v, i = vals.get("evse_present_voltage"), vals.get("evse_present_current")
            if ev.direction == EVSE_TO_EV:
                row["evse_present_power_w"] = v * i if v is not None and i is not None else vals.get("evse_target_power")
            v, i = vals.get("ev_target_voltage"), vals.get("ev_target_current")
            if ev.direction == EV_TO_EVSE:
                row["ev_target_power_w"] = v * i if v is not None and i is not None else vals.get("ev_present_power")
            if info is not None:
                self._track(info, ev, lv, vals)
        if info is not None:
            info.last = ev.name
            rc = ev.response_code
            if rc and rc.upper().startswith("FAILED"):
                info.failed += 1
                if info.first_failure is None:
                    info.first_failure = f"{ev.name} {rc}"
        self.messages.append(row)

    def _track(self, info: _ConnInfo, ev: Event, values: Leaves, vals: dict[str, Any]) -> None:
        name = ev.name
        if name == "SessionSetupReq" and info.evccid is None:
            info.evccid = _first(values, "EVCCID", ident=False)
        elif name == "SessionSetupRes" and info.evse_id is None:
            info.evse_id = _first(values, "EVSEID", ident=True)
        elif name == "SessionStopRes" and not (ev.response_code or "").upper().startswith("FAILED"):
            info.stop_res = True
        if info.stop is not None:
            return
        # the first sign of the end, in time
        if name == "SessionStopReq":
            how = _first(values, "ChargingSession", "EVTerminationCode", ident=False)
            info.stop = f"EV SessionStopReq {how}" if how else "EV SessionStopReq"
        elif name == "PowerDeliveryReq" and (vals.get("charge_progress") == "Stop"
                                             or _first(values, "ReadyToChargeState", ident=False) == "False"):
            info.stop = "EV PowerDeliveryReq Stop"
        elif ev.direction == EV_TO_EVSE and vals.get("ev_error_code") not in (None, *_EV_OK_CODES):
            info.stop = f"EV error {vals['ev_error_code']}"
        elif ev.direction == EVSE_TO_EV:
            for col in ("evse_status_code", "evse_notification"):
                st = vals.get(col)
                if st in _EVSE_STOP:
                    info.stop = f"EVSE {st}"
                    break

    def _event(self, ev: Event) -> None:
        f = ev.fields
        rule = f.get("rule") if ev.kind == "timing" else None
        measured = None
        if ev.kind == "timing":
            for k in ("response_time_s", "delay_s", "loop_s", "setup_s"):
                if k in f:
                    measured = _number(f[k])
                    break
        self.events.append({
            "capture": self.capture, "frame": ev.frame, "time": _us(ev.ts), "ts": ev.ts, "kind": ev.kind, "name": ev.name,
            "level": ev.level, "direction": ev.direction, "conn": ev.conn, "src": ev.src, "dst": ev.dst,
            "detail": ev.detail or None, "rule": None if rule is None else str(rule),
            "limit_s": _number(f.get("limit_s")) if ev.kind == "timing" else None, "measured_s": measured,
            "fields": json.dumps(f, default=_json_default) if f else None,
        })
        info = self._conn(ev.conn)
        if ev.kind == "timing" and info is not None:
            r = str(rule or "other")
            info.timing[r] = info.timing.get(r, 0) + 1
        elif ev.kind == "tcp" and info is not None and ev.name in ("TCP FIN", "TCP RST") and info.closed is None:
            info.closed = ev.name
        elif ev.kind == "slac" and ev.name == "CM_SLAC_MATCH.CNF":
            self.slac_matches.append((ev.ts, _ident_str(f.get("PEV_MAC")), _ident_str(f.get("EVSE_MAC"))))
        elif ev.kind == "sdp" and ev.name == "SDP response" and self.secc is None:
            self.secc = f"[{f.get('SECC')}]:{f.get('Port')}"

    # -- the end of the capture -----------------------------------------------------------

    def rows(self, stats: Any = None) -> dict[str, list[dict[str, Any]]]:
        """The rows of the capture's tables (``captures`` needs :meth:`capture_row` for status)."""
        conn_key = {conn: s.key for conn, s in self.summary._conn_session.items()}
        for r in self.messages:
            r["session"] = conn_key.get(r["conn"]) if r["conn"] is not None else None
        for r in self.events:
            r["session"] = conn_key.get(r["conn"]) if r["conn"] is not None else None
        summary = self.summary.result(stats)
        # result() lists the sessions that hold messages, in the order of ``sessions``
        keyed = [s for s in self.summary.sessions.values() if any(s.messages.values())]
        sessions = []
        for obj, s in zip(keyed, summary["sessions"], strict=True):
            infos = [self.conns[c] for c in sorted(obj.connections) if c in self.conns]
            sessions.append(self._session_row(obj.key, s, infos))
        return {"messages": self.messages, "sessions": sessions, "events": self.events}

    def _session_row(self, key: str, s: dict[str, Any], infos: list[_ConnInfo]) -> dict[str, Any]:
        def first(attr: str) -> Any:
            for i in infos:
                v = getattr(i, attr)
                if v is not None:
                    return v
            return None

        start = s["start"]
        pev = evse = None
        for ts, p, e in self.slac_matches:
            if pev is None or ts <= (start or ts):
                pev, evse = p, e
        failed = sum(i.failed for i in infos)
        timing: dict[str, int] = {}
        for i in infos:
            for r, n in i.timing.items():
                timing[r] = timing.get(r, 0) + n
        stop_res = any(i.stop_res for i in infos)
        closed = first("closed")
        if failed:
            result = "failed"
        elif stop_res:
            result = "completed"
        elif closed:
            result = "aborted"
        else:
            result = "incomplete"
        last = infos[-1].last if infos else "?"
        reason = first("first_failure") or first("stop")
        if reason is None:
            reason = f"{closed} after {last}" if closed else f"capture ends after {last}"
        en = s["energy"] or {}
        power = s["power"] or {}
        soc = s["soc"] or {}
        sel = s["services_selected"]
        payment = sel.get("PaymentOption")
        return {
            "capture": self.capture, "session": key, "session_id": s["session_id"], "protocol": s["protocol"],
            "connections": list(s["connections"]), "evccid": first("evccid"), "pev_mac": pev,
            "evse_id": first("evse_id"), "evse_mac": evse, "secc": self.secc,
            "start": _us(s["start"]), "end": _us(s["end"]), "duration_s": s["duration_s"],
            "messages_ev": s["messages"].get(EV_TO_EVSE, 0), "messages_evse": s["messages"].get(EVSE_TO_EV, 0),
            "services_offered": json.dumps(s["services_offered"], default=str) if s["services_offered"] else None,
            "energy_transfer": _text(sel.get("EnergyTransfer")), "payment": _text(payment),
            "authorization": _text(sel.get("Authorization", payment)),
            "energy_charged_wh": en.get("integrated_charged_wh"), "energy_discharged_wh": en.get("integrated_discharged_wh"),
            "meter_first_wh": _number(en.get("meter_first")), "meter_last_wh": _number(en.get("meter_last")),
            "charge_max_w": power.get("charge_max_w"), "discharge_max_w": power.get("discharge_max_w"),
            "soc_first": soc.get("first"), "soc_last": soc.get("last"),
            "failed_responses": failed, "result": result, "stop_reason": reason,
            "timing_violations": sum(timing.values()), "timing_rules": json.dumps(timing, sort_keys=True) if timing else None,
        }

    def tables(self, stats: Any = None) -> dict[str, Any]:
        """``{table: pyarrow.Table}`` for messages, sessions and events."""
        return {name: to_table(name, rows) for name, rows in self.rows(stats).items()}


def _json_default(v: Any) -> Any:
    """What json cannot write itself, as the JSON output writes it (bytes as hex, Decimal as text)."""
    j = json_value(v)
    return j if j is not v else str(v)


def _first(values: Leaves, *leaves: str, ident: bool) -> str | None:
    v = values.get(*leaves)
    return _ident(v) if ident else _text(v)


def _ident_str(v: Any) -> str | None:
    return None if v is None else str(v)


def capture_row(capture: str, status: int, error: str | None, stats: Any, first_ts: float | None,
                last_ts: float | None) -> dict[str, Any]:
    """The ``captures`` row of one capture file."""
    return {
        "capture": capture, "status": status, "error": error,
        "frames": getattr(stats, "frames", None), "v2g_messages": getattr(stats, "v2g_messages", None),
        "decode_errors": getattr(stats, "decode_errors", None),
        "capture_problems": getattr(stats, "capture_problems", None), "start": _us(first_ts), "end": _us(last_ts),
    }


def _us(ts: float | None) -> int | None:
    """Seconds since the epoch as whole microseconds (the ``timestamp`` columns)."""
    return None if ts is None else round(ts * 1_000_000)


def to_table(name: str, rows: list[dict[str, Any]]) -> Any:
    """Rows (dicts; ``timestamp`` columns as integer microseconds) as a pyarrow Table of
    :data:`TABLES` ``[name]``."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=arrow_schema(name))


class DatasetWriter:
    """Appends each capture's tables to one Parquet file per table (in the order given)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        import pyarrow.parquet as pq

        os.makedirs(directory, exist_ok=True)
        self.files = table_files(directory)
        self._writers = {t: pq.ParquetWriter(p, arrow_schema(t), compression="zstd") for t, p in self.files.items()}
        self.rows = {t: 0 for t in TABLES}

    def write(self, tables: dict[str, Any]) -> None:
        for name, table in tables.items():
            if table.num_rows:
                self._writers[name].write_table(table)
                self.rows[name] += table.num_rows

    def close(self) -> None:
        for w in self._writers.values():
            w.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
