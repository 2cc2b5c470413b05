"""Two SLAC cores, their simulated modems and a line between them, in virtual time (no
sockets, no asyncio): the in-memory twin of two namespaces joined by a veth pair.

``tap(t, side, frame)`` sees every frame on the line (``side`` = who sent it); ``drop(t,
side, frame)`` may remove frames from the line (fault injection); ``inject`` lists extra
frames to put on the line at given times as if ``side`` had sent them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iso15118.link.slac.events import SendFrame, SlacEvent, SlacFailed, SlacMatched
from iso15118.link.slac.modem import SimModem

__all__ = ["LineResult", "run_line"]


@dataclass
class LineResult:
    ev: list[tuple[float, SlacEvent]] = field(default_factory=list)
    evse: list[tuple[float, SlacEvent]] = field(default_factory=list)
    line: list[tuple[float, str, bytes]] = field(default_factory=list)
    end: float = 0.0

    def outcome(self, side: str) -> SlacMatched | SlacFailed | None:
        for _t, e in getattr(self, side):
            if isinstance(e, SlacMatched | SlacFailed):
                return e
        return None


def run_line(
    ev: Any,
    evse: Any,
    *,
    ev_modem: SimModem | None = None,
    evse_modem: SimModem | None = None,
    start: float = 0.0,
    latency: float = 0.0005,
    until: float = 60.0,
    ev_start_at: float | None = None,
    tap: Callable[[float, str, bytes], None] | None = None,
    drop: Callable[[float, str, bytes], bool] | None = None,
    inject: list[tuple[float, str, bytes]] | None = None,
    stop_when_matched: bool = True,
) -> LineResult:
    """Run until both sides matched (or one failed for good), or ``until`` seconds passed.

    ``ev`` / ``evse``: the cores (EvSlac / EvseSlac or anything with their interface); the EVSE
    is started (SET_KEY) and enabled at ``start``, the EV starts at ``ev_start_at``."""
    res = LineResult()
    ev_modem = ev_modem or SimModem(ev.mac)
    evse_modem = evse_modem or SimModem(evse.mac)
    q: list[tuple[float, int, str, bytes]] = []  # (time, seq, to_side, frame) deliveries to a host
    seq = 0
    modems = {"ev": ev_modem, "evse": evse_modem}
    cores = {"ev": ev, "evse": evse}

    def deliver(t: float, to: str, frame: bytes) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(q, (t, seq, to, frame))

    def on_line(t: float, side: str, frame: bytes) -> None:
        if drop is not None and drop(t, side, frame):
            return
        res.line.append((t, side, frame))
        if tap is not None:
            tap(t, side, frame)
        other = "evse" if side == "ev" else "ev"
        for f in modems[other].from_line(frame):
            deliver(t + latency, other, f)

    def emit(t: float, side: str, events: list[SlacEvent]) -> None:
        getattr(res, side).extend((t, e) for e in events)
        for e in events:
            if isinstance(e, SendFrame):
                to_line, to_host = modems[side].from_host(e.frame)
                for f in to_line:
                    on_line(t, side, f)
                for f in to_host:
                    deliver(t + latency, side, f)

    for t_i, side_i, frame_i in inject or []:
        seq += 1
        heapq.heappush(q, (start + t_i, seq, "line:" + side_i, frame_i))
    now = start
    emit(now, "evse", evse.start(now))
    emit(now, "evse", evse.enable(now))
    ev_started = False
    t_ev = start if ev_start_at is None else start + ev_start_at
    while now <= start + until:
        if stop_when_matched and ev.matched is not None and evse.matched is not None:
            break
        if ev.failed is not None and (evse.failed is not None or evse.matched is not None or not stop_when_matched):
            break
        cands: list[tuple[float, str]] = []
        if not ev_started:
            cands.append((t_ev, "ev_start"))
        for name, core in cores.items():
            d = core.next_deadline()
            if d is not None:
                cands.append((d, name))
        if q:
            cands.append((q[0][0], "q"))
        if not cands:
            break
        t, what = min(cands, key=lambda c: c[0])
        now = max(now, t)
        if now > start + until:
            break
        if what == "ev_start":
            ev_started = True
            emit(now, "ev", ev.start(now))
        elif what == "q":
            _, _, to, frame = heapq.heappop(q)
            if to.startswith("line:"):
                on_line(now, to[5:], frame)
            else:
                emit(now, to, cores[to].receive(frame, now))
        else:
            emit(now, what, cores[what].handle_timer(now))
    res.end = now
    return res
