"""Output: the coloured terminal timeline (``rich``), JSON / JSON Lines / XML, and the summary.

Every renderer is streamed: ``begin()``, ``event(ev)`` per event, ``end(summary)``.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from rich.console import Console
from rich.table import Table
from rich.text import Text

from iso15118.capture.decode import json_value, to_xml
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV, Event

__all__ = ["event_to_dict", "JsonRenderer", "JsonLinesRenderer", "XmlRenderer", "TimelineRenderer", "render_summary"]

_HEX_LIMIT = 64


def _iso(ts: float) -> str:
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):  # the reader skips such packets; never crash here
        return f"out-of-range({ts!r})"


def event_to_dict(ev: Event) -> dict[str, Any]:
    """Every field of an event, JSON-ready (the decoded message as a nested object)."""
    d: dict[str, Any] = {
        "time": _iso(ev.ts),
        "ts": ev.ts,
        "frame": ev.frame,
        "kind": ev.kind,
        "name": ev.name,
        "level": ev.level,
    }
    for key in ("direction", "conn", "src", "dst", "protocol", "schema", "session_id", "response_code"):
        v = getattr(ev, key)
        if v is not None:
            d[key] = v
    if ev.first_frame is not None and ev.first_frame != ev.frame:
        d["first_frame"] = ev.first_frame
    if ev.payload_type is not None:
        d["payload_type"] = f"0x{ev.payload_type:04X}"
    if ev.response_time is not None:
        d["response_time_s"] = round(ev.response_time, 6)
    if ev.tls:
        d["tls"] = True
    if ev.detail:
        d["detail"] = ev.detail
    if ev.fields:
        d["fields"] = {k: json_value(v) for k, v in ev.fields.items()}
    dec = ev.decoded
    if dec is not None:
        if dec.tree is not None:
            d["message"] = dec.tree_json()
        if dec.error is not None:
            d["decode_error"] = {"reason": dec.error, "bit_offset": dec.bit_offset, "path": dec.path}
    if ev.findings:
        d["findings"] = [f.as_dict() for f in ev.findings]
    if ev.payload is not None:
        d["payload_hex"] = ev.payload.hex().upper()
    return d


class JsonRenderer:
    """One JSON document: ``{"capture": ..., "events": [...], "summary": {...}}``."""

    def __init__(self, out: IO[str], capture: str) -> None:
        self.out = out
        self.capture = capture
        self._n = 0

    def begin(self) -> None:
        self.out.write('{"capture": ' + json.dumps(self.capture) + ', "events": [')

    def event(self, ev: Event) -> None:
        self.out.write(("\n  " if self._n == 0 else ",\n  ") + json.dumps(event_to_dict(ev), default=str))
        self._n += 1

    def end(self, summary: dict[str, Any] | None) -> None:
        self.out.write("\n]")
        if summary is not None:
            self.out.write(', "summary": ' + json.dumps(summary, indent=2, default=str))
        self.out.write("}\n")


class JsonLinesRenderer:
    """One JSON object per line; the summary (when asked for) as a last ``{"summary": ...}`` line."""

    def __init__(self, out: IO[str], capture: str) -> None:
        self.out = out

    def begin(self) -> None:
        pass

    def event(self, ev: Event) -> None:
        self.out.write(json.dumps(event_to_dict(ev), default=str) + "\n")

    def end(self, summary: dict[str, Any] | None) -> None:
        if summary is not None:
            self.out.write(json.dumps({"summary": summary}, default=str) + "\n")


def _xml_value(v: Any) -> str:
    return escape(str(json_value(v)))


class XmlRenderer:
    """``<capture>`` with one ``<event>`` per event; decoded messages as their own XML."""

    def __init__(self, out: IO[str], capture: str) -> None:
        self.out = out
        self.capture = capture

    def begin(self) -> None:
        self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n<capture file=' + quoteattr(self.capture) + ">\n")

    def event(self, ev: Event) -> None:
        d = event_to_dict(ev)
        attrs = " ".join(
            f"{k}={quoteattr(str(d[k]))}"
            for k in ("time", "frame", "kind", "name", "level", "direction", "conn", "protocol", "schema",
                      "session_id", "response_code", "payload_type", "response_time_s")
            if k in d
        )
        parts = [f"  <event {attrs}>"]
        if ev.detail:
            parts.append(f"    <detail>{escape(ev.detail)}</detail>")
        for k, v in ev.fields.items():
            parts.append(f"    <field name={quoteattr(str(k))}>{_xml_value(v)}</field>")
        for f in ev.findings:
            fa = " ".join(f"{k}={quoteattr(str(v))}" for k, v in f.as_dict().items() if k != "message")
            parts.append(f"    <finding {fa}>{escape(f.message)}</finding>")
        dec = ev.decoded
        if dec is not None and dec.tree is not None:
            xml = to_xml(dec.schema, dec.tree)
            if xml is not None:
                text = xml.decode("utf-8", "replace")
                if text.startswith("<?xml"):
                    text = text[text.index("?>") + 2 :].lstrip()
                parts.append(f"    <message>{text}</message>")
        if dec is not None and dec.error is not None:
            parts.append(
                f"    <decode_error bit_offset={quoteattr(str(dec.bit_offset))} path={quoteattr(dec.path or '')}>"
                f"{escape(dec.error)}</decode_error>"
            )
        if ev.payload is not None:
            parts.append(f"    <payload>{ev.payload.hex().upper()}</payload>")
        parts.append("  </event>\n")
        self.out.write("\n".join(parts))

    def end(self, summary: dict[str, Any] | None) -> None:
        if summary is not None:
            self.out.write(_dict_to_xml("summary", summary, "  ") + "\n")
        self.out.write("</capture>\n")


def _xml_name(key: str) -> str:
    """An XML element name for a dict key (keys like ``EV->EVSE`` become ``item name="..."``)."""
    ok = key and (key[0].isalpha() or key[0] == "_") and all(c.isalnum() or c in "_-." for c in key)
    return key if ok else ""


def _dict_to_xml(tag: str, value: Any, indent: str) -> str:
    """Nested dicts / lists as elements (lists repeat the element), scalars as text."""
    name = _xml_name(tag)
    open_tag = name if name else f"item name={quoteattr(tag)}"
    close_tag = name if name else "item"
    if isinstance(value, dict):
        inner = [_dict_to_xml(str(k), v, indent + "  ") for k, v in value.items()]
        if not inner:
            return f"{indent}<{open_tag}/>"
        return f"{indent}<{open_tag}>\n" + "\n".join(inner) + f"\n{indent}</{close_tag}>"
    if isinstance(value, list):
        return "\n".join(_dict_to_xml(tag, v, indent) for v in value) if value else f"{indent}<{open_tag}/>"
    if value is None:
        return f"{indent}<{open_tag}/>"
    return f"{indent}<{open_tag}>{_xml_value(value)}</{close_tag}>"


# --------------------------------------------------------------------------------------------
# Terminal timeline

_KIND_STYLE = {
    "v2g": "bold",
    "slac": "magenta",
    "sdp": "cyan",
    "tcp": "blue",
    "tls": "bright_blue",
    "framing": "red",
    "capture": "red",
    "timing": "yellow",
    "note": "dim",
}
_LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": ""}


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(_fmt_value(x) for x in v[:6]) + ("..." if len(v) > 6 else "")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex().upper()
    s = str(v)
    return s if len(s) <= 48 else s[:45] + "..."


class TimelineRenderer:
    """One coloured line per event (plus a hex line for undecodable payloads)."""

    def __init__(self, console: Console, *, show_slac_detail: bool = True, absolute_time: bool = False) -> None:
        self.console = console
        self.t0: float | None = None
        self.slac_detail = show_slac_detail
        self.absolute = absolute_time

    def begin(self) -> None:
        pass

    def event(self, ev: Event) -> None:
        if ev.kind == "timing" and ev.fields.get("rule") == "performance_time":
            return  # shown on the response line itself (its response time in yellow)
        if self.t0 is None:
            self.t0 = ev.ts
            if not self.absolute:
                self.console.print(
                    Text(f"capture starts {_iso(ev.ts)}  (times below are seconds from here)", style="dim"),
                    soft_wrap=True,
                )
        t = Text()
        if self.absolute:
            t.append(_iso(ev.ts)[11:] + " ", style="dim")  # HH:MM:SS.ffffffZ (UTC)
        else:
            t.append(f"{ev.ts - self.t0:10.3f} ", style="dim")
        t.append(f"#{ev.frame:<6d} ", style="dim")
        if ev.direction == EV_TO_EVSE:
            t.append("EV  -> EVSE ", style="green")
        elif ev.direction == EVSE_TO_EV:
            t.append("EVSE -> EV  ", style="cyan")
        elif ev.direction:
            t.append(f"{ev.direction:<12.12s}", style="dim")
        else:
            t.append(" " * 12)
        style = _LEVEL_STYLE.get(ev.level) or _KIND_STYLE.get(ev.kind, "")
        label = ev.name
        if ev.kind not in ("v2g",):
            label = f"[{ev.kind}] {ev.name}" if ev.kind not in ("slac", "sdp") else ev.name
        t.append(label, style=style or _KIND_STYLE.get(ev.kind, ""))
        if ev.response_code:
            rc = ev.response_code
            urc = rc.upper()
            rc_style = "bold red" if urc.startswith("FAILED") else "yellow" if urc.startswith("WARN") else "green"
            t.append(f"  {rc}", style=rc_style)
        if ev.name == "SessionSetupRes" and ev.session_id:
            t.append(f"  SessionID={ev.session_id}", style="bold")
        if ev.response_time is not None:
            rt = f"  +{ev.response_time * 1000:.0f} ms"
            if ev.timing == "performance_time":
                t.append(rt + f" (> {ev.fields.get('performance_limit_ms', '?')} ms performance time)", style="yellow")
            elif ev.timing == "evcc_timeout":
                t.append(rt + " (EV timeout exceeded)", style="bold red")
            else:
                t.append(rt, style="dim")
        if ev.fields and ev.kind != "timing":
            shown = {k: v for k, v in ev.fields.items() if k != "performance_limit_ms"}
            if ev.kind == "slac" and not self.slac_detail:
                shown = {k: v for k, v in shown.items() if k in ("RunID", "NID", "Result", "PEV_MAC", "EVSE_MAC")}
            kv = "  ".join(f"{k}={_fmt_value(v)}" for k, v in shown.items() if k not in ("AAG",))
            if kv:
                t.append("  " + kv, style="dim" if ev.level == "info" else "")
        if ev.detail:
            t.append(f"  {ev.detail}", style="red" if ev.level == "error" else "yellow" if ev.level == "warning" else "dim")
        # On a terminal long lines fold; in a pipe or file every event stays on one line (and
        # without colour it is written as is: rich's rendering costs ~1 ms a line).
        if self.console.is_terminal:
            self.console.print(t, overflow="fold", soft_wrap=False)
        elif self.console.no_color:
            self.console.file.write(t.plain + "\n")
        else:
            self.console.print(t, soft_wrap=True)
        dec = ev.decoded
        undecoded = ev.kind == "v2g" and (dec is None or dec.error is not None)
        if (undecoded or (ev.kind == "framing" and ev.payload)) and ev.payload:
            hx = ev.payload[:_HEX_LIMIT].hex(" ").upper()
            more = f" ... ({len(ev.payload)} bytes)" if len(ev.payload) > _HEX_LIMIT else f" ({len(ev.payload)} bytes)"
            line = Text(" " * (37 if self.absolute else 31) + hx + more, style="dim red" if ev.level == "error" else "dim")
            if self.console.no_color and not self.console.is_terminal:
                self.console.file.write(line.plain + "\n")
            else:
                self.console.print(line)

    def end(self, summary: dict[str, Any] | None) -> None:
        if summary is not None:
            self.console.print()
            render_summary(self.console, summary)


def render_summary(console: Console, s: dict[str, Any]) -> None:
    """The summary as terminal tables."""
    cap = s.get("capture", {})
    head = Table(title="Capture", show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("duration", f"{s.get('duration_s', 0):.3f} s")
    if cap:
        head.add_row("frames", str(cap.get("frames")))
        head.add_row("V2G messages", f"{cap.get('v2g_messages')}  ({', '.join(f'{k} {v}' for k, v in cap.get('v2g_by_direction', {}).items())})")
        head.add_row("connections", f"{cap.get('tcp_connections')} TCP, {cap.get('v2g_connections')} V2G, {cap.get('tls_connections')} TLS")
        if cap.get("tcp_events"):
            head.add_row("TCP events", ", ".join(f"{k} {v}" for k, v in sorted(cap["tcp_events"].items())))
        head.add_row("decode errors", str(cap.get("decode_errors")))
        head.add_row("framing problems", str(cap.get("framing_problems")))
        head.add_row("capture problems", str(cap.get("capture_problems")))
    slac = s.get("slac", {})
    if slac.get("messages"):
        head.add_row("SLAC", ", ".join(f"{k} {v}" for k, v in slac["messages"].items()))
    if slac.get("match"):
        head.add_row("SLAC match", ", ".join(f"{k}={v}" for k, v in slac["match"].items()))
    for r in s.get("sdp_responses", []):
        head.add_row("SDP", f"[{r.get('SECC')}]:{r.get('Port')} {r.get('Security')} {r.get('Transport')}")
    for t in s.get("tls", []):
        head.add_row("TLS", f"{t.get('version')} {t.get('suite')}")
    errs = s.get("errors", {})
    head.add_row("errors", Text(str(errs.get("count", 0)), style="bold red" if errs.get("count") else "green"))
    head.add_row("warnings", str(s.get("warnings", 0)))
    tv = s.get("timing_violations", {}).get("by_rule", {})
    head.add_row("timing violations", ", ".join(f"{k} {v}" for k, v in tv.items()) or "none")
    fd = s.get("findings") or {}
    if fd:
        head.add_row("peer defects", ", ".join(f"{kind} ({', '.join(f'{p} {n}' for p, n in sorted(by.items()))})"
                                               for kind, by in sorted(fd.items())))
    console.print(head)
    for sess in s.get("sessions", []):
        t = Table(title=f"Session {sess.get('session_id') or '(no SessionID)'}", show_header=False, box=None)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("protocol", str(sess.get("protocol")))
        t.add_row("duration", f"{sess.get('duration_s')} s")
        t.add_row("messages", ", ".join(f"{k} {v}" for k, v in sess.get("messages", {}).items()))
        if sess.get("services_offered"):
            t.add_row("services offered", "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in sess["services_offered"].items()))
        if sess.get("services_selected"):
            t.add_row("selected", "; ".join(f"{k}: {v}" for k, v in sess["services_selected"].items()))
        en = sess.get("energy") or {}
        if en:
            t.add_row("energy", ", ".join(f"{k} {v}" for k, v in en.items()))
        p = sess.get("power") or {}
        if p.get("evse_present"):
            t.add_row("power (EVSE present)", f"min {p['evse_present']['min_w']:.0f} W, max {p['evse_present']['max_w']:.0f} W")
        if p.get("ev_target"):
            t.add_row("power (EV target)", f"min {p['ev_target']['min_w']:.0f} W, max {p['ev_target']['max_w']:.0f} W")
        if p.get("charge_max_w") or p.get("discharge_max_w"):
            t.add_row("max charge / discharge", f"{p.get('charge_max_w', 0):.0f} W / {p.get('discharge_max_w', 0):.0f} W")
        if sess.get("soc"):
            t.add_row("SoC", f"{sess['soc']['first']} % -> {sess['soc']['last']} %")
        for f in sess.get("failed_responses", []):
            t.add_row(Text("FAILED", style="bold red"), f"#{f['frame']} {f['message']} {f['response_code']}")
        console.print(t)
    if errs.get("first"):
        et = Table(title="First errors", box=None)
        for col in ("frame", "kind", "name", "detail"):
            et.add_column(col)
        for e in errs["first"]:
            et.add_row(str(e.get("frame")), e.get("kind", ""), e.get("name", ""), e.get("detail", "") or e.get("response_code", ""))
        console.print(et)
