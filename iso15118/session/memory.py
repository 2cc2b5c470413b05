"""Run an EVCC core against a SECC core in memory on a fake clock (tests, demos, tools).

No sockets and no sleeping: frames are handed from one core to the other after ``latency``
fake seconds, and time jumps straight to the next deadline.  ``hooks`` inject scenario
events (a grid outage, a notification, a dropped frame) at given fake times.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iso15118.session.events import Event, SendMessage, SessionEnded


@dataclass
class Transcript:
    """Everything that happened: ``(time, side, event)`` with side ``"evcc"`` / ``"secc"``."""

    entries: list[tuple[float, str, Event]] = field(default_factory=list)
    end_time: float = 0.0

    def of(self, side: str, kind: type | None = None) -> list[Event]:
        return [e for _, s, e in self.entries if s == side and (kind is None or isinstance(e, kind))]

    def sent(self, side: str) -> list[str]:
        return [e.name for e in self.of(side, SendMessage)]  # type: ignore[attr-defined]

    def ended(self, side: str) -> SessionEnded | None:
        ends = self.of(side, SessionEnded)
        return ends[0] if ends else None  # type: ignore[return-value]


def run_pair(
    evcc: Any,
    secc: Any,
    *,
    start: float = 0.0,
    latency: float = 0.005,
    max_time: float = 24 * 3600.0,
    hooks: list[tuple[float, Callable[[float], Any]]] | None = None,
    drop: Callable[[str, SendMessage], bool] | None = None,
    max_steps: int = 200_000,
    close_when_evcc_ends: bool = True,
) -> Transcript:
    """Drive both cores until both ended (or ``max_time`` / ``max_steps``)."""
    tr = Transcript()
    counter = itertools.count()
    queue: list[tuple[float, int, str, int, bytes]] = []
    pending_hooks = sorted(hooks or [], key=lambda h: h[0])
    secc_open = True

    def emit(t: float, side: str, events: list[Event]) -> None:
        for ev in events:
            tr.entries.append((t, side, ev))
            if isinstance(ev, SendMessage):
                if drop is not None and drop(side, ev):
                    continue
                to = "secc" if side == "evcc" else "evcc"
                heapq.heappush(queue, (t + latency, next(counter), to, ev.payload_type, ev.payload))

    t = start
    emit(t, "evcc", evcc.start(t))
    for _ in range(max_steps):
        if evcc.ended and (secc.ended or not secc_open):
            break
        candidates = [x for x in (evcc.next_deadline(), secc.next_deadline()) if x is not None]
        if queue:
            candidates.append(queue[0][0])
        if pending_hooks:
            candidates.append(pending_hooks[0][0])
        if not candidates:
            break
        t = max(t, min(candidates))
        if t > start + max_time:
            break
        if pending_hooks and pending_hooks[0][0] <= t:
            _, fn = pending_hooks.pop(0)
            fn(t)
            continue
        if queue and queue[0][0] <= t:
            _, _, to, pt, payload = heapq.heappop(queue)
            core = evcc if to == "evcc" else secc
            if not core.ended:
                emit(t, to, core.receive(pt, payload, t))
            continue
        for side, core in (("evcc", evcc), ("secc", secc)):
            dl = core.next_deadline()
            if dl is not None and dl <= t:
                emit(t, side, core.handle_timer(t))
        if close_when_evcc_ends and evcc.ended and not secc.ended and not queue:
            # the EV closed the connection after its last message
            emit(t, "secc", secc.connection_lost(t))
            secc_open = False
    tr.end_time = t
    return tr
