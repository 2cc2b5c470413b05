"""Campaign outputs: JSON (everything, incl. message logs), JUnit XML (for CI), and one
self-contained HTML file with a summary, every case's checks, message log and SVG timeline."""

from __future__ import annotations

import datetime as dt
import json
import platform
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from conformance.evidence import CaseResult, Verdict
from conformance.runner import Campaign
from conformance.svg import timeline_svg

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00", "error": "#6a1b9a"}


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def campaign_json(camp: Campaign, with_logs: bool = True) -> dict[str, Any]:
    return {
        "started": _iso(camp.started),
        "ended": _iso(camp.ended or camp.started),
        "duration": round((camp.ended or camp.started) - camp.started, 3),
        "host": platform.node(),
        "suts": [
            {"name": s.name, "role": s.role, "tls": s.tls, "services": sorted(x.name for x in s.info.services),
             "probe": s.probe is not None, "control": s.control is not None, "notes": s.info.notes,
             "capabilities": s.info.to_json(), "counts": camp.counts(s.name)}
            for s in camp.suts
        ],
        "headline": camp.headline(),
        "exit_status": camp.exit_status(),
        "counts": camp.counts(),
        "results": [r.to_json(with_log=with_logs) for r in camp.results],
    }


def write_json(camp: Campaign, path: str | Path) -> None:
    Path(path).write_text(json.dumps(campaign_json(camp), indent=1, default=str) + "\n")


def write_junit(camp: Campaign, path: str | Path) -> None:
    """JUnit XML: one testsuite per SUT; fail -> <failure>, error -> <error>,
    inconclusive -> <skipped> (with the reason)."""
    root = ET.Element("testsuites", name="iso15118 conformance", tests=str(len(camp.results)))
    for sut in camp.suts:
        rs = [r for r in camp.results if r.sut == sut.name]
        c = camp.counts(sut.name)
        suite = ET.SubElement(root, "testsuite", name=sut.name, tests=str(len(rs)), failures=str(c["fail"]),
                              errors=str(c["error"]), skipped=str(c["inconclusive"]),
                              time=f"{sum(r.duration for r in rs):.3f}", timestamp=_iso(camp.started))
        for r in rs:
            tc = ET.SubElement(suite, "testcase", classname=f"{sut.name}.{r.group}", name=r.case_id, time=f"{r.duration:.3f}")
            detail = "\n".join(f"[{'ok' if c.ok else 'FAIL'}] {c.requirement}: {c.detail}" for c in r.checks)
            if r.verdict is Verdict.FAIL:
                ET.SubElement(tc, "failure", message=r.reason, type="fail").text = detail
            elif r.verdict is Verdict.ERROR:
                ET.SubElement(tc, "error", message=r.reason, type="error").text = detail
            elif r.verdict is Verdict.INCONCLUSIVE:
                ET.SubElement(tc, "skipped", message=f"inconclusive: {r.reason}")
            ET.SubElement(tc, "system-out").text = "\n".join(
                f"{e.t:8.3f} {e.direction:4} {e.name} {e.response_code or ''} {e.detail}".rstrip() for e in r.evidence.entries)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


CSS = """
body{font-family:system-ui,sans-serif;margin:20px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:22px 0 6px}
.meta{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
.v{color:#fff;border-radius:3px;padding:1px 6px;font-weight:600;font-size:12px}
.bar{display:flex;height:16px;width:420px;border-radius:3px;overflow:hidden;margin:4px 0}
details{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:4px 8px}
summary{cursor:pointer;font-size:14px}
.log td{font-family:ui-monospace,monospace;font-size:11.5px}
.err{color:#c62828}.warn{color:#ef6c00}
.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}
pre{font-size:11px;white-space:pre-wrap;margin:0}
.svgbox{margin:6px 0}
.grid{display:grid;grid-template-columns:repeat(2,1fr);gap:8px}
.cell{border:1px solid #eee;border-radius:4px;padding:4px}
.cell svg{width:100%;height:auto}
"""


def _badge(v: str) -> str:
    return f'<span class="v" style="background:{COLOURS[v]}">{v.upper()}</span>'


def _decoded_brief(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    d = {k: v for k, v in d.items() if k != "header"}
    s = json.dumps(d, separators=(",", ":"), default=str)
    return s if len(s) < 420 else s[:417] + "..."


def _case_html(r: CaseResult, open_: bool) -> str:
    v = r.verdict.value
    svg = timeline_svg(r.evidence.samples, r.evidence.markers, t_end=r.duration, title=r.case_id)
    checks = "".join(
        f'<tr><td class="{"ok" if c.ok else "bad"}">{"pass" if c.ok else "FAIL"}</td><td>{escape(c.requirement)}</td>'
        f"<td>{escape(c.detail)}</td></tr>"
        for c in r.checks
    ) or '<tr><td colspan="3">no checks</td></tr>'
    rows = []
    for e in r.evidence.entries:
        cls = "err" if e.level == "error" else "warn" if e.level == "warning" else ""
        rt = f"{e.response_time * 1000:.0f} ms" if e.response_time is not None else ""
        pt = f"0x{e.payload_type:04x}" if e.payload_type is not None else ""
        rows.append(
            f'<tr class="{cls}"><td>{e.t:.3f}</td><td>{e.direction}</td><td>{escape(e.name)}</td><td>{pt}</td>'
            f"<td>{escape(e.response_code or '')}</td><td>{rt}</td><td>{escape(e.detail or _decoded_brief(e.decoded))}</td></tr>"
        )
    metrics = ", ".join(f"{k}={val:.3g}" for k, val in sorted(r.metrics.items()) if not k.startswith("max_rt_"))
    rts = [(k[7:], val) for k, val in sorted(r.metrics.items()) if k.startswith("max_rt_")]
    if rts:
        slow = max(rts, key=lambda kv: kv[1])
        metrics += (", " if metrics else "") + f"slowest response {slow[0]} {slow[1] * 1000:.0f} ms"
    return (
        f'<details{" open" if open_ else ""} id="{escape(r.sut)}-{r.case_id}"><summary>{_badge(v)} <b>{r.case_id}</b> — {escape(r.title)}'
        f' <span class="meta">[{escape(r.sut)}, {r.duration:.2f} s]</span></summary>'
        f'<p><b>Reason:</b> {escape(r.reason)}<br><b>Requirement:</b> {escape(r.requirement)}<br>'
        f'<b>Tags:</b> {escape(", ".join(r.tags))}' + (f"<br><b>Metrics:</b> {escape(metrics)}" if metrics else "") + "</p>"
        + (f'<div class="svgbox">{svg}</div>' if svg else "")
        + f"<table><tr><th>check</th><th>requirement</th><th>evidence</th></tr>{checks}</table>"
        + _replay_html(r.evidence.annex.get("replay"))
        + f'<details><summary>message log ({len(r.evidence.entries)} entries)</summary><table class="log">'
        f"<tr><th>t [s]</th><th>dir</th><th>message</th><th>PT</th><th>code</th><th>resp. time</th><th>content / detail</th></tr>"
        + "".join(rows) + "</table></details></details>"
    )


def _replay_html(rep: dict[str, Any] | None) -> str:
    """A real-vehicle replay's per-message diff against the recorded charger (evidence)."""
    if not rep:
        return ""
    rows = []
    for name, d in rep.get("diff", {}).items():
        for fname, f in sorted(d["fields"].items(), key=lambda kv: -kv[1]["count"]):
            rows.append(f"<tr><td>{escape(name)}</td><td>{d['differing']}/{d['compared']}</td><td>{escape(fname)}</td>"
                        f"<td>{f['count']}</td><td>{escape(str(f['recorded']))}</td><td>{escape(str(f['now']))}</td></tr>")
    head = (f"<p><b>Replay:</b> {escape(str(rep.get('protocol')))}, {rep.get('sent')} requests sent, SessionStop "
            f"{'reached' if rep.get('reached_stop') else 'not reached'}"
            + (f" (appended: {escape(', '.join(rep['appended']))})" if rep.get("appended") else "")
            + f"; {rep.get('differing')} of {rep.get('compared')} answers differ from the recorded charger (evidence, "
            "not failures)</p>")
    if not rows:
        return head
    return (head + "<details><summary>differences from the recorded charger</summary><table><tr><th>message</th>"
            "<th>differing</th><th>field</th><th>times</th><th>recorded (first)</th><th>now (first)</th></tr>"
            + "".join(rows) + "</table></details>")


def _glance(camp: Campaign) -> str:
    """Small timelines of the derate / V2H / reserve / abort cases: the derate visible at a glance."""
    keys = ("derate", "v2h", "reserve")
    picks = [r for r in camp.results if r.evidence.samples and any(k in r.tags for k in keys)]
    picks += [r for r in camp.results if r.evidence.samples and "abort" in r.tags and r.verdict is Verdict.FAIL]
    cells = []
    for r in sorted(picks, key=lambda r: (r.case_id, r.sut))[:12]:
        svg = timeline_svg(r.evidence.samples, r.evidence.markers, t_end=r.duration, title=r.case_id)
        cells.append(
            f'<div class="cell"><div><a href="#{escape(r.sut)}-{r.case_id}">{r.case_id}</a> {_badge(r.verdict.value)} '
            f'<span class="meta">{escape(r.sut)}</span></div>{svg}</div>'
        )
    return f'<div class="grid">{"".join(cells)}</div>' if cells else "<p>no charge-loop timelines</p>"


def _matrix(camp: Campaign) -> str:
    """Verdict counts per case group and SUT."""
    groups = sorted({r.group for r in camp.results})
    head = "".join(f"<th>{escape(s.name)}</th>" for s in camp.suts)
    rows = []
    for g in groups:
        cells = []
        for s in camp.suts:
            rs = [r for r in camp.results if r.group == g and r.sut == s.name]
            if not rs:
                cells.append("<td></td>")
                continue
            parts = []
            for k in COLOURS:
                n = sum(1 for r in rs if r.verdict.value == k)
                if n:
                    parts.append(f'<span style="color:{COLOURS[k]}">{n} {k}</span>')
            cells.append(f"<td>{' · '.join(parts)}</td>")
        rows.append(f"<tr><td>{escape(g)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>group</th>{head}</tr>{''.join(rows)}</table>"


def _mutation_html(matrix: Any) -> str:
    s = matrix.summary()
    rows = "".join(
        f"<tr><td>{role}</td><td>{s[role]['defects_caught']}/{s[role]['defects']}</td>"
        f"<td>{s[role]['cases_killed']}/{s[role]['cases']}</td><td>{s[role]['mutation_score_pct']} %</td>"
        f"<td>{escape(', '.join(s[role]['uncaught'] + s[role]['survivors'])) or '-'}</td></tr>"
        for role in sorted(matrix.cases))
    zp = ", ".join(f"{k}: {v['passed']} of {v['cases']} passed, exit {v['exit_status']}" for k, v in s["zero_pass"].items())
    return (f"<h2>The tester proven by mutation</h2><table><tr><th>role</th><th>defects caught</th><th>cases killed</th>"
            f"<th>score</th><th>uncaught / surviving</th></tr>{rows}</table><p class=\"meta\">zero-pass chargers: {escape(zp)}; "
            f"matrix wall time {s['wall_s']} s</p>")


def render_html(camp: Campaign, title: str = "ISO 15118-20 conformance report", matrix: Any = None) -> str:
    c = camp.counts()
    total = max(1, len(camp.results))
    bar = "".join(
        f'<div style="width:{100 * c[k] / total:.2f}%;background:{COLOURS[k]}" title="{k}: {c[k]}"></div>' for k in COLOURS if c[k]
    )
    sut_rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{s.role}</td><td>{'TLS' if s.tls else 'TCP'}</td>"
        f"<td>{escape(', '.join(sorted(x.name for x in s.info.services)) or '-')}"
        f"<br><span class=\"meta\">{escape(_caps(s.info))}</span></td>"
        + "".join(f"<td>{camp.counts(s.name)[k]}</td>" for k in COLOURS) + "</tr>"
        for s in camp.suts
    )

    def rows(kinds: tuple[str, ...]) -> str:
        return "".join(
            f'<tr><td><a href="#{escape(r.sut)}-{r.case_id}">{r.case_id}</a></td><td>{escape(r.sut)}</td><td>{_badge(r.verdict.value)}</td>'
            f"<td>{escape(r.reason[:220])}</td></tr>"
            for r in sorted(camp.results, key=lambda r: (r.case_id, r.sut)) if r.verdict.value in kinds
        )

    findings = rows(("fail", "error"))
    incon = rows(("inconclusive",))
    groups: dict[str, list[CaseResult]] = {}
    for r in sorted(camp.results, key=lambda r: (r.group, r.case_id, r.sut)):
        groups.setdefault(r.group, []).append(r)
    body = "".join(
        f"<h2>{escape(g)}</h2>" + "".join(_case_html(r, r.verdict in (Verdict.FAIL, Verdict.ERROR)) for r in rs)
        for g, rs in groups.items()
    )
    return (
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class=\"meta\">{_iso(camp.started)} · {len(camp.results)} results · "
        f"{(camp.ended or camp.started) - camp.started:.1f} s · " + " · ".join(f"{k}: {c[k]}" for k in COLOURS) + "</div>"
        f'<div class="bar">{bar}</div>'
        + "".join(f'<p class="bad">{escape(line)}</p>' for line in camp.headline())
        + f'<p class="meta">exit status {camp.exit_status()} (0 = all passed or not applicable, 1 = a failure, '
        f"2 = an error / unreachable SUT / undecided case)</p>"
        f"<h2>Systems under test</h2><table><tr><th>SUT</th><th>role</th><th>transport</th><th>services</th>"
        + "".join(f"<th>{k}</th>" for k in COLOURS) + f"</tr>{sut_rows}</table>"
        f"<h2>Findings (fail / error)</h2>"
        + (f"<table><tr><th>case</th><th>SUT</th><th>verdict</th><th>reason</th></tr>{findings}</table>" if findings else "<p>none</p>")
        + f"<h2>Derate, V2H and reserve at a glance</h2>{_glance(camp)}"
        f"<h2>Verdicts per group</h2>{_matrix(camp)}"
        f"<details><summary>inconclusive ({c['inconclusive']}): not applicable or not observable</summary>"
        f"<table><tr><th>case</th><th>SUT</th><th>verdict</th><th>reason</th></tr>{incon}</table></details>"
        + (_mutation_html(matrix) if matrix is not None else "")
        + f"{body}</body></html>"
    )


def _caps(info: Any) -> str:
    cap = info.to_json()
    parts = [f"source {cap['source']}"]
    if cap["control_modes"]:
        parts.append("modes " + "/".join(cap["control_modes"]))
    if cap["authorization"]:
        parts.append("auth " + "/".join(cap["authorization"]))
    parts += [f"{k}={'yes' if v else 'no'}" for k, v in cap["features"].items()]
    if cap["reachable"] is False:
        parts.append(f"UNREACHABLE: {cap['unreachable_reason']}")
    return "; ".join(parts)


def write_html(camp: Campaign, path: str | Path, title: str = "ISO 15118-20 conformance report", matrix: Any = None) -> None:
    Path(path).write_text(render_html(camp, title, matrix), encoding="utf-8")
