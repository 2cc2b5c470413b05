"""Inline SVG timeline of one case: power and limits (kW) on top, SOC (%) and current (A) below,
with vertical markers (derate, recovery, abort ...).  No external assets: the SVG is embedded
in the HTML report as text."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape

from conformance.evidence import Sample

W, H = 860, 300
PAD_L, PAD_R, PAD_T = 56, 150, 14
TOP_H, GAP, BOT_H = 150, 26, 80

SERIES_TOP = (
    # attr, label, colour, dash, sign
    ("power_w", "power (SUT)", "#1565c0", "", 1),
    ("ev_max_charge_w", "EV max charge", "#e65100", "6 3", 1),
    ("ev_max_discharge_w", "EV max discharge", "#6a1b9a", "6 3", -1),
    ("evse_max_charge_w", "EVSE max charge", "#9e9e9e", "2 3", 1),
)
SERIES_BOT = (
    ("soc", "SOC %", "#2e7d32", "", 1),
    ("current_a", "current A", "#00838f", "4 2", 1),
)


def _points(samples: list[Sample], attr: str, sign: int, x: Callable[[float], float], y: Callable[[float], float], absolute: bool = False) -> str:
    pts = []
    for s in samples:
        v = getattr(s, attr)
        if v is None:
            continue
        if absolute:
            v = abs(v)
        pts.append(f"{x(s.t):.1f},{y(sign * v):.1f}")
    return " ".join(pts)


def timeline_svg(samples: list[Sample], markers: Iterable[tuple[float, str]] = (), *, t_end: float | None = None,
                 title: str = "") -> str:
    """The SVG markup (empty string when there are no samples)."""
    if not samples:
        return ""
    markers = list(markers)
    first = min(s.t for s in samples)
    t1 = max([s.t for s in samples] + [m[0] for m in markers] + [t_end or 0.0, 0.1])
    t0 = max(0.0, first - 0.05 * (t1 - first))
    markers = [m for m in markers if m[0] >= t0]
    plot_w = W - PAD_L - PAD_R

    def x(t: float) -> float:
        return PAD_L + (t - t0) / (t1 - t0) * plot_w

    top_vals = [abs(getattr(s, a)) for s in samples for a, *_ in SERIES_TOP if getattr(s, a) is not None]
    pmax = max(top_vals + [1000.0]) / 1000.0 * 1.1
    has_neg = any((s.power_w or 0) < 0 or (s.ev_max_discharge_w or 0) > 0 for s in samples)
    pmin = -pmax if has_neg else 0.0

    def y_top(v: float) -> float:
        return float(PAD_T + (pmax - v / 1000.0) / (pmax - pmin) * TOP_H)

    bot_vals = [abs(getattr(s, a)) for s in samples for a, *_ in SERIES_BOT if getattr(s, a) is not None]
    bmax = max(bot_vals + [100.0]) * 1.05
    y0b = PAD_T + TOP_H + GAP

    def y_bot(v: float) -> float:
        return float(y0b + (bmax - v) / bmax * BOT_H)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11" role="img" aria-label="{escape(title)} timeline">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>']
    # frames and grid
    for (y0, h) in ((PAD_T, TOP_H), (y0b, BOT_H)):
        out.append(f'<rect x="{PAD_L}" y="{y0}" width="{plot_w}" height="{h}" fill="#fafafa" stroke="#bbb"/>')
    for k in range(5):
        v = pmin + (pmax - pmin) * k / 4
        yy = y_top(v * 1000)
        out.append(f'<line x1="{PAD_L}" x2="{PAD_L + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    if pmin < 0:
        out.append(f'<line x1="{PAD_L}" x2="{PAD_L + plot_w}" y1="{y_top(0):.1f}" y2="{y_top(0):.1f}" stroke="#888"/>')
    mid = f"{PAD_T + TOP_H / 2:.0f}"
    out.append(f'<text x="12" y="{mid}" transform="rotate(-90 12 {mid})" text-anchor="middle">kW (+ into EV)</text>')
    for k in range(3):
        v = bmax * k / 2
        yy = y_bot(v)
        out.append(f'<text x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    out.append(f'<text x="12" y="{y0b + BOT_H / 2:.0f}" transform="rotate(-90 12 {y0b + BOT_H / 2:.0f})" text-anchor="middle">% / A</text>')
    # time axis
    for k in range(6):
        tt = t0 + (t1 - t0) * k / 5
        out.append(f'<text x="{x(tt):.1f}" y="{y0b + BOT_H + 16}" text-anchor="middle">{tt:.1f} s</text>')
    # markers
    for k, (tm, label) in enumerate(markers):
        xx = x(tm)
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{PAD_T}" y2="{y0b + BOT_H}" stroke="#c62828" stroke-dasharray="3 3"/>')
        anchor = "end" if xx > PAD_L + plot_w * 0.8 else "start"
        tx = xx - 3 if anchor == "end" else xx + 3
        out.append(f'<text x="{tx:.1f}" y="{PAD_T + 11 + 13 * (k % 3)}" fill="#c62828" text-anchor="{anchor}" '
                   f'paint-order="stroke" stroke="#fafafa" stroke-width="3">{escape(label[:34])}</text>')
    # series
    legend_y = PAD_T + 6
    for attr, label, colour, dash, sign in SERIES_TOP:
        pts = _points(samples, attr, sign, x, y_top)
        if not pts:
            continue
        da = f' stroke-dasharray="{dash}"' if dash else ""
        width = 2.4 if attr == "power_w" else 1.5
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}"{da}/>')
        out.append(f'<line x1="{W - PAD_R + 12}" x2="{W - PAD_R + 34}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{da}/>'
                   f'<text x="{W - PAD_R + 38}" y="{legend_y + 4}">{escape(label)}</text>')
        legend_y += 16
    legend_y = y0b + 6
    for attr, label, colour, dash, sign in SERIES_BOT:
        pts = _points(samples, attr, sign, x, y_bot, absolute=True)
        if not pts:
            continue
        da = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8"{da}/>')
        out.append(f'<line x1="{W - PAD_R + 12}" x2="{W - PAD_R + 34}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{da}/>'
                   f'<text x="{W - PAD_R + 38}" y="{legend_y + 4}">{escape(label)}</text>')
        legend_y += 16
    out.append("</svg>")
    return "".join(out)
