"""The ``--summary`` report, built incrementally from the event stream (memory flat).

Per charging session (keyed by the SessionID the SECC assigned; messages before it belong to the
connection's session): protocol, services offered and selected, energy (integrated from the
charger's present voltage x current; meter readings when sent), duration, min / max power in
both directions of energy flow, SoC, FAILED response codes, timing violations.  Plus capture-wide
counts: SLAC, SDP, connections, messages per direction, stream and decode problems.
"""

from __future__ import annotations

from typing import Any

from iso15118.capture.analyzer import AnalyzerStats
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event
from iso15118.capture.limits import PROTOCOL_LABELS

__all__ = ["SummaryBuilder"]

_MAX_LISTED = 20
_MAX_INTEGRATION_STEP = 10.0  # s: longer pauses between readings are not integrated


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class _MinMax:
    __slots__ = ("min", "max")

    def __init__(self) -> None:
        self.min: float | None = None
        self.max: float | None = None

    def add(self, v: float) -> None:
        if self.min is None or v < self.min:
            self.min = v
        if self.max is None or v > self.max:
            self.max = v

    def out(self) -> dict[str, float] | None:
        if self.min is None:
            return None
        return {"min_w": round(self.min, 1), "max_w": round(self.max, 1)}  # type: ignore[arg-type]


class _Session:
    def __init__(self, key: str) -> None:
        self.key = key
        self.session_id: str | None = None
        self.protocol: str | None = None
        self.connections: set[int] = set()
        self.first: float | None = None
        self.last: float | None = None
        self.messages = {EV_TO_EVSE: 0, EVSE_TO_EV: 0}
        self.names: dict[str, int] = {}
        self.offered: dict[str, list[Any]] = {}
        self.selected: dict[str, Any] = {}
        self.evse_power = _MinMax()
        self.ev_power = _MinMax()
        self.charge_max = 0.0
        self.discharge_max = 0.0
        self.energy_in = 0.0  # Wh into the EV
        self.energy_out = 0.0  # Wh out of the EV
        self._last_p: tuple[float, float] | None = None
        self.meter_first: float | None = None
        self.meter_last: float | None = None
        self.soc_first: float | None = None
        self.soc_last: float | None = None
        self.failed: list[dict[str, Any]] = []
        self.response_times: dict[str, float] = {}

    def merge(self, other: _Session) -> None:
        self.connections |= other.connections
        for d, n in other.messages.items():
            self.messages[d] += n
        for k, n in other.names.items():
            self.names[k] = self.names.get(k, 0) + n
        self.failed.extend(other.failed)
        if other.first is not None and (self.first is None or other.first < self.first):
            self.first = other.first
        self.protocol = self.protocol or other.protocol
        for k, v in other.offered.items():
            self.offered.setdefault(k, v)
        for k, v in other.selected.items():
            self.selected.setdefault(k, v)


class SummaryBuilder:
    """Feed every event with :meth:`add`; :meth:`result` returns the report as a dict."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self._conn_session: dict[int, _Session] = {}
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.slac: dict[str, int] = {}
        self.slac_match: dict[str, Any] | None = None
        self.sdp: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.error_count = 0
        self.warning_count = 0
        self.timing: dict[str, int] = {}
        self.timing_listed: list[dict[str, Any]] = []
        self.tls: list[dict[str, Any]] = []
        self.findings: dict[str, dict[str, int]] = {}  # finding kind -> sending party -> count

    def _session(self, ev: Event) -> _Session:
        conn = ev.conn if ev.conn is not None else -1
        s = self._conn_session.get(conn)
        sid = ev.session_id if ev.session_id and ev.session_id.strip("0") else None
        if s is None:
            if sid and sid in self.sessions:
                s = self.sessions[sid]
            else:
                s = _Session(sid or f"connection {conn}")
                self.sessions[s.key] = s
            self._conn_session[conn] = s
        if sid and s.session_id is None:
            # The SECC just assigned the ID: re-key (merging with an earlier session of that ID).
            s.session_id = sid
            if sid in self.sessions and self.sessions[sid] is not s:
                target = self.sessions[sid]
                target.merge(s)
                self.sessions.pop(s.key, None)
                s = target
            else:
                self.sessions.pop(s.key, None)
                s.key = sid
                self.sessions[sid] = s
            self._conn_session[conn] = s
        s.connections.add(conn)
        return s

    def add(self, ev: Event) -> None:
        if self.first_ts is None:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        if ev.level == "error":
            self.error_count += 1
            if len(self.errors) < _MAX_LISTED and ev.kind != "timing":
                self.errors.append(_brief(ev))
        elif ev.level == "warning":
            self.warning_count += 1
        for f in ev.findings:
            by_party = self.findings.setdefault(f.kind.value, {})
            by_party[f.party or "?"] = by_party.get(f.party or "?", 0) + 1
        if ev.kind == "v2g":
            self._v2g(ev)
        elif ev.kind == "slac":
            self.slac[ev.name] = self.slac.get(ev.name, 0) + 1
            if ev.name == "CM_SLAC_MATCH.CNF":
                self.slac_match = {k: ev.fields.get(k) for k in ("PEV_MAC", "EVSE_MAC", "NID", "RunID") if k in ev.fields}
        elif ev.kind == "sdp" and ev.name == "SDP response":
            if len(self.sdp) < _MAX_LISTED:
                self.sdp.append(dict(ev.fields))
        elif ev.kind == "timing":
            rule = str(ev.fields.get("rule", "other"))
            self.timing[rule] = self.timing.get(rule, 0) + 1
            if len(self.timing_listed) < _MAX_LISTED:
                self.timing_listed.append(_brief(ev))
        elif ev.kind == "tls" and ev.name == "TLS ServerHello":
            self.tls.append(dict(ev.fields))

    def _v2g(self, ev: Event) -> None:
        s = self._session(ev)
        if s.first is None:
            s.first = ev.ts
        s.last = ev.ts
        if ev.direction in s.messages:
            s.messages[ev.direction] += 1
        s.names[ev.name] = s.names.get(ev.name, 0) + 1
        if ev.protocol and (s.protocol is None or s.protocol == "sap"):
            s.protocol = ev.protocol
        if ev.response_code and ev.response_code.upper().startswith("FAILED"):
            s.failed.append({"time": ev.ts, "frame": ev.frame, "message": ev.name, "response_code": ev.response_code})
        if ev.response_time is not None:
            base = ev.name[:-3]
            if ev.response_time > s.response_times.get(base, -1.0):
                s.response_times[base] = ev.response_time
        d = ev.decoded
        if d is None or d.error is not None:
            return
        lv = d.leaves
        name = ev.name
        if name == "ServiceDiscoveryRes":
            for key, leaves in (("ServiceID", ("ServiceID",)), ("ServiceName", ("ServiceName",)),
                                ("ServiceCategory", ("ServiceCategory",)),
                                ("EnergyTransfer", ("EnergyTransferMode", "EnergyTransferType")),
                                ("PaymentOption", ("PaymentOption",))):
                found = lv.all(*leaves)
                if found:
                    s.offered[key] = sorted({str(x) for x in found})
        elif name in ("ServicePaymentSelectionReq", "PaymentServiceSelectionReq", "ServiceSelectionReq"):
            po = lv.get("SelectedPaymentOption")
            if po is not None:
                s.selected["PaymentOption"] = po
            ids = lv.all("ServiceID")
            if ids:
                s.selected["ServiceID"] = ids
        elif name == "AuthorizationReq":
            a = lv.get("SelectedAuthorizationService")
            if a is not None:
                s.selected["Authorization"] = a
        elif name == "ChargeParameterDiscoveryReq":
            m = lv.get("RequestedEnergyTransferMode", "EVRequestedEnergyTransferType")
            if m is not None:
                s.selected["EnergyTransfer"] = m
        soc = _num(lv.get("EVRESSSOC", "PresentSOC"))
        if soc is not None:
            if s.soc_first is None:
                s.soc_first = soc
            s.soc_last = soc
        meter = _num(lv.get("MeterReading", "ChargedEnergyReadingWh"))
        if meter is not None:
            if s.meter_first is None:
                s.meter_first = meter
            s.meter_last = meter
        if ev.direction == EVSE_TO_EV:
            v = _num(lv.get("EVSEPresentVoltage"))
            i = _num(lv.get("EVSEPresentCurrent"))
            p = v * i if v is not None and i is not None else _num(lv.get("EVSETargetActivePower"))
            if p is not None and name.endswith("Res") and ("ChargeLoop" in name or "CurrentDemand" in name):
                s.evse_power.add(p)
                if p > s.charge_max:
                    s.charge_max = p
                if -p > s.discharge_max:
                    s.discharge_max = -p
                if s._last_p is not None:
                    dt = ev.ts - s._last_p[0]
                    if 0 < dt <= _MAX_INTEGRATION_STEP:
                        e = (p + s._last_p[1]) / 2 * dt / 3600.0
                        if e >= 0:
                            s.energy_in += e
                        else:
                            s.energy_out -= e
                s._last_p = (ev.ts, p)
        elif ev.direction == EV_TO_EVSE:
            v = _num(lv.get("EVTargetVoltage"))
            i = _num(lv.get("EVTargetCurrent"))
            p = v * i if v is not None and i is not None else _num(lv.get("EVPresentActivePower"))
            if p is not None and ("ChargeLoop" in name or "CurrentDemand" in name):
                s.ev_power.add(p)

    def result(self, stats: AnalyzerStats | None = None, reader_problems: int = 0) -> dict[str, Any]:
        sessions = []
        for s in self.sessions.values():
            if not any(s.messages.values()):
                continue
            energy: dict[str, Any] = {}
            if s.energy_in or s.energy_out:
                energy["integrated_charged_wh"] = round(s.energy_in, 2)
                energy["integrated_discharged_wh"] = round(s.energy_out, 2)
            if s.meter_first is not None and s.meter_last is not None:
                energy["meter_first"] = s.meter_first
                energy["meter_last"] = s.meter_last
                energy["meter_delta"] = round(s.meter_last - s.meter_first, 3)
            sessions.append({
                "session_id": s.session_id,
                "protocol": PROTOCOL_LABELS.get(s.protocol or "", s.protocol),
                "connections": sorted(c for c in s.connections if c >= 0),
                "start": s.first,
                "end": s.last,
                "duration_s": round((s.last or 0) - (s.first or 0), 3),
                "messages": dict(s.messages),
                "message_counts": dict(sorted(s.names.items(), key=lambda kv: -kv[1])),
                "services_offered": s.offered,
                "services_selected": s.selected,
                "energy": energy,
                "power": {
                    "evse_present": s.evse_power.out(),
                    "ev_target": s.ev_power.out(),
                    "charge_max_w": round(s.charge_max, 1),
                    "discharge_max_w": round(s.discharge_max, 1),
                },
                "soc": {"first": s.soc_first, "last": s.soc_last} if s.soc_first is not None else None,
                "failed_responses": s.failed[:_MAX_LISTED],
                "max_response_time_s": {k: round(v, 4) for k, v in sorted(s.response_times.items())},
            })
        out: dict[str, Any] = {
            "duration_s": round((self.last_ts or 0) - (self.first_ts or 0), 3),
            "sessions": sessions,
            "slac": {"messages": self.slac, "match": self.slac_match},
            "sdp_responses": self.sdp,
            "tls": self.tls,
            "errors": {"count": self.error_count, "first": self.errors},
            "warnings": self.warning_count,
            "timing_violations": {"by_rule": self.timing, "first": self.timing_listed},
            "findings": self.findings,
        }
        if stats is not None:
            out["capture"] = {
                "frames": stats.frames,
                "linktypes": sorted(stats.linktypes),
                "tcp_connections": stats.connections,
                "v2g_connections": stats.v2g_connections,
                "tls_connections": stats.tls_connections,
                "v2g_messages": stats.v2g_messages,
                "v2g_by_direction": dict(stats.v2g_by_direction),
                "decode_errors": stats.decode_errors,
                "framing_problems": stats.framing_problems,
                "tcp_events": dict(stats.tcp_notices),
                "capture_problems": stats.capture_problems,
                "malformed_frames": stats.malformed,
                "decode_cache": {"hits": stats.cache_hits, "misses": stats.cache_misses},
            }
        return out


def _brief(ev: Event) -> dict[str, Any]:
    d: dict[str, Any] = {"time": ev.ts, "frame": ev.frame, "kind": ev.kind, "name": ev.name}
    if ev.direction:
        d["direction"] = ev.direction
    if ev.detail:
        d["detail"] = ev.detail
    if ev.response_code:
        d["response_code"] = ev.response_code
    return d
