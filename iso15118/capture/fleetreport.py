"""The fleet view of a capture dataset: one self-contained HTML page with inline SVG charts.

Response-time distributions per message and charger, session outcomes and failure codes per
vehicle, SOC and power curves, timing violations.  Every number comes from a DuckDB query over the
dataset (:mod:`iso15118.capture.query`); the page loads nothing from the network.

Vehicles are told apart by EVCCID (else the SLAC MAC), chargers by EVSEID (else the SDP address);
each is labelled with the start of the first capture file name it appears in.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["fleet_html", "PALETTE"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#393b79", "#e6550d", "#31a354", "#ad494a", "#756bb1", "#c49c94", "#f7b6d2", "#636363", "#8c6d31", "#6baed6")
_RESULT_COLOURS = {"completed": "#2ca02c", "aborted": "#ff7f0e", "failed": "#d62728", "incomplete": "#9e9e9e"}
_RULE_COLOURS = {"performance_time": "#ffbf00", "evcc_timeout": "#d62728", "sequence_timeout": "#9467bd",
                 "loop_timeout": "#8c564b", "communication_setup": "#17becf"}
_MAX_CURVES = 30
_MAX_BOX_ROWS = 40
_MAX_VEHICLES = 40
_MAX_CAPTURES = 200

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
p.note{color:#666;margin:2px 0 8px;font-size:13px}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.kpi b{display:block;font-size:22px} .kpi span{color:#666;font-size:12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0} th,td{border:1px solid #ddd;padding:3px 6px;text-align:left}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-family:system-ui,sans-serif} .grid{display:flex;flex-wrap:wrap;gap:18px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _short(path: str, n: int = 26) -> str:
    stem = os.path.basename(path)
    for suf in (".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap", ".cap"):
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
    return stem if len(stem) <= n else stem[: n - 1] + "…"


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


# --------------------------------------------------------------------------------------------
# SVG pieces


def line_chart(series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]], *, width: int = 560, height: int = 300,
               xlabel: str, ylabel: str, title: str, y_cap: float | None = None) -> str:
    """Lines (label, colour, points) on linear axes; ``y_cap``: values above it drawn at the top
    edge (the title says so)."""
    pts = [p for _, _, s in series for p in s]
    if not pts:
        return f'<p class="note">{_e(title)}: no data</p>'
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(0.0, min(p[1] for p in pts)), max(p[1] for p in pts)
    if y_cap is not None and y1 > y_cap:
        y1 = y_cap
        title += f" (axis cut at {_fmt(y_cap)} {ylabel})"
        series = [(label, c, [(x, min(y, y_cap)) for x, y in s]) for label, c, s in series]
    if y1 <= y0:
        y1 = y0 + 1
    if x1 <= x0:
        x1 = x0 + 1
    xt, yt = _ticks(x0, x1), _ticks(y0, y1)
    if y_cap is None and len(yt) >= 2 and yt[-1] < y1:  # room above the highest line: one more tick
        yt.append(round(yt[-1] + (yt[-1] - yt[-2]), 10))
    x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])
    ml, mr, mt, mb = 56, 12, 28, 40
    pw, ph = width - ml - mr, height - mt - mb

    def sx(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return mt + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
           f'<text x="{ml}" y="18" font-size="14" font-weight="600">{_e(title)}</text>']
    for t in yt:
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{ml - 6}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">{_fmt(t)}</text>')
    for t in xt:
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{mt}" y2="{mt + ph}" stroke="#f3f3f3"/>'
                   f'<text x="{sx(t):.1f}" y="{mt + ph + 15}" font-size="11" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>')
    for label, colour, s in series:
        if not s:
            continue
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.6" opacity="0.85">'
                   f"<title>{_e(label)}</title></polyline>")
    out.append(f'<text x="{ml + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">{_e(xlabel)}</text>')
    out.append(f'<text x="14" y="{mt + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {mt + ph / 2})">{_e(ylabel)}</text></svg>')
    return "".join(out)


def legend(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f'<span style="display:inline-block;margin:0 12px 2px 0;font-size:12px">'
                    f'<span style="display:inline-block;width:12px;height:3px;background:{c};vertical-align:middle;'
                    f'margin-right:4px"></span>{_e(label)}</span>' for label, c in items)
    return f'<div style="max-width:1150px">{cells}</div>'


def box_rows(rows: Sequence[dict[str, Any]], *, width: int = 1100, title: str) -> str:
    """Horizontal box plots (p5-p95 whiskers, p25-p75 box, median line, max dot) on a log ms axis."""
    if not rows:
        return f'<p class="note">{_e(title)}: no data</p>'
    name_w, lab_w, mr, mt, row_h = 236, 546, 70, 30, 18
    pw = width - lab_w - mr
    height = mt + row_h * len(rows) + 34
    vals = [v for r in rows for v in (r["p5"], r["max"]) if v and v > 0]
    lo = 10 ** math.floor(math.log10(max(min(vals), 1e-4))) if vals else 1e-3
    hi = 10 ** math.ceil(math.log10(max(vals))) if vals else 1.0
    if hi <= lo:
        hi = lo * 10

    def sx(v: float) -> float:
        v = min(max(v, lo), hi)
        return lab_w + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pw

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
           f'<text x="0" y="18" font-size="14" font-weight="600">{_e(title)}</text>']
    dec = lo
    while dec <= hi * 1.0001:
        x = sx(dec)
        ms = dec * 1000
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt}" y2="{height - 30}" stroke="#e6e6e6"/>'
                   f'<text x="{x:.1f}" y="{height - 16}" font-size="11" text-anchor="middle" fill="#555">{_fmt(ms)} ms</text>')
        dec *= 10
    prev = None
    for i, r in enumerate(rows):
        y = mt + i * row_h + row_h / 2
        if r["name"] != prev:
            prev = r["name"]
            if i:
                out.append(f'<line x1="0" x2="{width}" y1="{y - row_h / 2:.1f}" y2="{y - row_h / 2:.1f}" stroke="#ccc"/>')
            out.append(f'<text x="0" y="{y + 4:.1f}" font-size="12" font-weight="600">{_e(r["name"])}</text>')
        out.append(f'<text x="{name_w}" y="{y + 4:.1f}" font-size="11" fill="#333">{_e(_clip(r["charger"], 44))}</text>'
                   f'<text x="{lab_w - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#777">n={r["n"]}</text>')
        if r["p50"] is None:
            continue
        c = "#d62728" if r.get("over") else "#1f77b4"
        out.append(f'<line x1="{sx(r["p5"]):.1f}" x2="{sx(r["p95"]):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{c}"/>'
                   f'<rect x="{sx(r["p25"]):.1f}" y="{y - 5:.1f}" width="{max(1.5, sx(r["p75"]) - sx(r["p25"])):.1f}" '
                   f'height="10" fill="{c}" fill-opacity="0.25" stroke="{c}"/>'
                   f'<line x1="{sx(r["p50"]):.1f}" x2="{sx(r["p50"]):.1f}" y1="{y - 6:.1f}" y2="{y + 6:.1f}" '
                   f'stroke="{c}" stroke-width="2"/>'
                   f'<circle cx="{sx(r["max"]):.1f}" cy="{y:.1f}" r="2.5" fill="{c}"/>'
                   f'<text x="{width - mr + 6}" y="{y + 4:.1f}" font-size="11" fill="#333">{_fmt(r["p50"] * 1000)} ms</text>'
                   f'<title>{_e(r["name"])} at {_e(r["charger"])}: p50 {_fmt(r["p50"] * 1000)} ms, p95 '
                   f'{_fmt(r["p95"] * 1000)} ms, max {_fmt(r["max"] * 1000)} ms</title>')
    out.append("</svg>")
    return "".join(out)


def stacked_bars(rows: Sequence[tuple[str, dict[str, int]]], colours: dict[str, str], *, width: int = 1100,
                 title: str) -> str:
    """One horizontal bar per label, stacked by category."""
    if not rows:
        return f'<p class="note">{_e(title)}: no data</p>'
    lab_w, mr, mt, row_h = 300, 50, 30, 20
    pw = width - lab_w - mr
    total = max(sum(c.values()) for _, c in rows) or 1
    height = mt + row_h * len(rows) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
           f'<text x="0" y="18" font-size="14" font-weight="600">{_e(title)}</text>']
    for i, (label, counts) in enumerate(rows):
        y = mt + i * row_h
        out.append(f'<text x="{lab_w - 8}" y="{y + 14}" font-size="11" text-anchor="end">{_e(label)}</text>')
        x = float(lab_w)
        for cat, colour in colours.items():
            n = counts.get(cat, 0)
            if not n:
                continue
            w = n / total * pw
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{colour}">'
                       f"<title>{_e(label)}: {_e(cat)} {n}</title></rect>")
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11" fill="#333">{sum(counts.values())}</text>')
    ly = mt + row_h * len(rows) + 22
    lx = float(lab_w)
    for cat, colour in colours.items():
        out.append(f'<rect x="{lx:.0f}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{lx + 16:.0f}" y="{ly}" font-size="12">{_e(cat)}</text>')
        lx += 30 + 7.5 * len(cat)
    out.append("</svg>")
    return "".join(out)


def _table(cols: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(cols)
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=n" if numeric[i] else ""}>{"" if v is None else _e(v)}</td>' for i, v in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# --------------------------------------------------------------------------------------------
# The page


def _power_cap(series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]]) -> float | None:
    """An axis cut when a few sessions' peaks dwarf the rest (over 3x the 75th percentile of the
    sessions' peaks): those are drawn at the cut, the others stay readable."""
    peaks = sorted(max(y for _, y in s) for _, _, s in series if s)
    if len(peaks) < 4:
        return None
    p75 = peaks[(len(peaks) * 3) // 4]
    return p75 * 1.5 if p75 > 0 and peaks[-1] > 3 * p75 else None


_VEHICLES = """
WITH s AS (SELECT *, coalesce(evccid, pev_mac, 'unknown') AS vehicle,
                  coalesce(evse_id, secc, 'unknown') AS charger FROM sessions)
"""


def _labels(con: Any, column: str) -> dict[str, str]:
    """vehicle / charger key -> 'key (first capture name)'."""
    rows = con.rows(_VEHICLES + f"SELECT {column} AS k, min(capture) AS c FROM s GROUP BY 1")
    return {r["k"]: f"{r['k']} ({_short(r['c'], 22)})" for r in rows}


def fleet_html(con: Any) -> str:
    """The report page for a :class:`~iso15118.capture.query.Dataset`."""
    parts: list[str] = []
    k = con.rows(
        "SELECT (SELECT count(*) FROM captures) AS captures, (SELECT count(*) FROM sessions) AS sessions, "
        "(SELECT count(*) FROM messages) AS messages, "
        "(SELECT count(DISTINCT coalesce(evccid, pev_mac)) FROM sessions) AS vehicles, "
        "(SELECT count(DISTINCT coalesce(evse_id, secc)) FROM sessions) AS chargers, "
        "(SELECT count(*) FROM sessions WHERE result = 'failed') AS failed, "
        "(SELECT count(*) FROM events WHERE kind = 'timing') AS timing, "
        "(SELECT min(start) FROM captures) AS t0, (SELECT max(\"end\") FROM captures) AS t1")[0]
    span = ""
    if k["t0"] is not None:
        span = f"{k['t0']:%Y-%m-%d} – {k['t1']:%Y-%m-%d}"
    parts.append(f"<h1>Fleet view</h1><p class=note>{_e(con.directory)} · captures from {_e(span)} · "
                 f"generated {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC</p>")
    kpis = [("captures", k["captures"]), ("sessions", k["sessions"]), ("V2G messages", k["messages"]),
            ("vehicles", k["vehicles"]), ("chargers", k["chargers"]), ("failed sessions", k["failed"]),
            ("timing violations", k["timing"])]
    parts.append('<div class="kpis">' + "".join(f'<div class="kpi"><b>{_e(v)}</b><span>{_e(n)}</span></div>'
                                                for n, v in kpis) + "</div>")
    vehicles = _labels(con, "vehicle")
    chargers = _labels(con, "charger")

    # -- response times
    rows = con.rows(
        _VEHICLES + "SELECT m.name, s.charger, count(*) AS n, "
        "quantile_cont(m.response_time_s, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q, max(m.response_time_s) AS mx, "
        "count(m.timing) AS over FROM messages m JOIN s USING (capture, session) "
        "WHERE m.response_time_s IS NOT NULL GROUP BY 1, 2")
    per_name: dict[str, int] = {}
    for r in rows:
        per_name[r["name"]] = per_name.get(r["name"], 0) + r["n"]
    order = sorted(per_name, key=lambda n: -per_name[n])
    box: list[dict[str, Any]] = []
    for name in order:
        for r in sorted((r for r in rows if r["name"] == name), key=lambda r: -r["n"]):
            q = r["q"]
            box.append({"name": name, "charger": chargers.get(r["charger"], r["charger"]), "n": r["n"], "p5": q[0],
                        "p25": q[1], "p50": q[2], "p75": q[3], "p95": q[4], "max": r["mx"], "over": r["over"] > r["n"] / 2})
            if len(box) >= _MAX_BOX_ROWS:
                break
        if len(box) >= _MAX_BOX_ROWS:
            break
    parts.append("<h2 id=response-times>Response times per message and charger</h2><p class=note>Seconds from request to response "
                 "(log scale): whiskers p5–p95, box p25–p75, bar median, dot maximum; red when most responses broke "
                 "the performance time. Messages in order of frequency.</p>")
    parts.append(box_rows(box, title="Response time"))

    # -- outcomes and failure codes per vehicle
    res = con.rows(_VEHICLES + "SELECT vehicle, result, count(*) AS n FROM s GROUP BY 1, 2")
    by_vehicle: dict[str, dict[str, int]] = {}
    for r in res:
        by_vehicle.setdefault(r["vehicle"], {})[r["result"]] = r["n"]
    busiest = sorted(by_vehicle, key=lambda v: (-sum(by_vehicle[v].values()), v))[:_MAX_VEHICLES]
    bars = sorted(((vehicles.get(v, v), by_vehicle[v]) for v in busiest), key=lambda x: x[0])
    more = f" The {_MAX_VEHICLES} vehicles with most sessions of {len(by_vehicle)}." if len(by_vehicle) > _MAX_VEHICLES else ""
    parts.append("<h2 id=vehicles>Sessions and failure codes per vehicle</h2><p class=note>Vehicles by EVCCID (else SLAC MAC), "
                 f"labelled with the first capture they appear in.{more}</p>")
    parts.append(stacked_bars(bars, _RESULT_COLOURS, title="Session outcome per vehicle"))
    fails = con.rows(
        _VEHICLES + "SELECT s.vehicle, m.name, m.response_code, count(*) AS n FROM messages m JOIN s USING (capture, session) "
        "WHERE upper(m.response_code) LIKE 'FAILED%' GROUP BY ALL ORDER BY n DESC, 1 LIMIT 30")
    stops = con.rows(_VEHICLES + "SELECT stop_reason, count(*) AS n, count(DISTINCT vehicle) AS v FROM s GROUP BY ALL "
                     "ORDER BY n DESC, 1 LIMIT 20")
    parts.append('<div class="grid"><div><b>FAILED response codes</b>'
                 + (_table(["vehicle", "message", "response code", "count"],
                           [(vehicles.get(f["vehicle"], f["vehicle"]), f["name"], f["response_code"], f["n"]) for f in fails],
                           [False, False, False, True]) if fails else "<p class=note>none</p>")
                 + "</div><div><b>How sessions ended</b>"
                 + _table(["stop reason", "sessions", "vehicles"], [(s["stop_reason"], s["n"], s["v"]) for s in stops],
                          [False, True, True]) + "</div></div>")

    # -- SOC and power curves
    sess = con.rows(_VEHICLES + "SELECT capture, session, vehicle, start FROM s ORDER BY vehicle, start")
    soc_series: list[tuple[str, str, list[tuple[float, float]]]] = []
    pow_series: list[tuple[str, str, list[tuple[float, float]]]] = []
    legend_items: list[tuple[str, str]] = []
    for i, s in enumerate(sess[:_MAX_CURVES]):
        colour = PALETTE[i % len(PALETTE)]
        label = f"{vehicles.get(s['vehicle'], s['vehicle'])} {s['session'][:8]}"
        pts = con.rows("SELECT ts, soc, evse_present_power_w AS p FROM messages WHERE capture = ? AND session = ? "
                       "AND (soc IS NOT NULL OR evse_present_power_w IS NOT NULL) ORDER BY ts", [s["capture"], s["session"]])
        if not pts:
            continue
        t0 = s["start"].timestamp()
        soc = [((p["ts"] - t0) / 60, p["soc"]) for p in pts if p["soc"] is not None]
        pw = [((p["ts"] - t0) / 60, p["p"] / 1000) for p in pts if p["p"] is not None]
        step = max(1, len(pw) // 400)
        pw = pw[::step]
        if len(soc) >= 2:
            soc_series.append((label, colour, soc))
        if len(pw) >= 2:
            pow_series.append((label, colour, pw))
        if len(soc) >= 2 or len(pw) >= 2:
            legend_items.append((label, colour))
    parts.append("<h2 id=curves>SOC and power curves</h2><p class=note>Per session, from its first message: the EV's state of "
                 "charge and the charger's present power (voltage × current; negative = discharge).</p>")
    parts.append('<div class="grid">' + line_chart(soc_series, xlabel="minutes since session start", ylabel="SOC %",
                                                     title="State of charge")
                 + line_chart(pow_series, xlabel="minutes since session start", ylabel="kW",
                              title="EVSE present power", y_cap=_power_cap(pow_series)) + "</div>" + legend(legend_items))

    # -- timing violations
    tv = con.rows(_VEHICLES + "SELECT s.charger, e.rule, count(*) AS n FROM events e JOIN s USING (capture, session) "
                  "WHERE e.kind = 'timing' GROUP BY ALL")
    by_charger: dict[str, dict[str, int]] = {}
    for r in tv:
        by_charger.setdefault(chargers.get(r["charger"], r["charger"]), {})[r["rule"] or "other"] = r["n"]
    rules = {r: c for r, c in _RULE_COLOURS.items() if any(r in v for v in by_charger.values())}
    parts.append("<h2 id=timing>Timing violations</h2><p class=note>Responses later than V2G_SECC_Msg_Performance_Time "
                 "(performance_time) or V2G_EVCC_Msg_Timeout (evcc_timeout), loops and set-up longer than allowed; "
                 "per charger.</p>")
    parts.append(stacked_bars(sorted(by_charger.items()), rules, title="Timing violations per charger"))
    top = con.rows("SELECT capture, rule, count(*) AS n, max(measured_s) AS worst, max(limit_s) AS lim FROM events "
                   "WHERE kind = 'timing' GROUP BY ALL ORDER BY n DESC LIMIT 15")
    parts.append(_table(["capture", "rule", "count", "worst ms", "limit ms"],
                        [(_short(t["capture"], 60), t["rule"], t["n"], _fmt((t["worst"] or 0) * 1000),
                          _fmt((t["lim"] or 0) * 1000)) for t in top],
                        [False, False, True, True, True]))

    # -- captures
    caps = con.rows("SELECT capture, status, error, frames, v2g_messages, decode_errors, capture_problems FROM captures "
                    f"ORDER BY status DESC, capture LIMIT {_MAX_CAPTURES}")
    more = f" The first {_MAX_CAPTURES} of {k['captures']}, problems first." if k["captures"] > _MAX_CAPTURES else ""
    parts.append(f"<h2 id=captures>Captures</h2><p class=note>Status: 0 clean, 1 problems found (file damage, "
                 f"undecodable payloads), 3 not a capture.{more}</p>")
    parts.append(_table(["capture", "status", "frames", "messages", "decode errors", "file damage", "error"],
                        [(_short(c["capture"], 70), c["status"], c["frames"], c["v2g_messages"], c["decode_errors"],
                          c["capture_problems"], c["error"]) for c in caps],
                        [False, True, True, True, True, True, False]))
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Fleet view</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(parts) + "</body></html>\n")
