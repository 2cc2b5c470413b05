"""asyncio driver for the link cores: an AF_PACKET raw socket bound to one interface.

:class:`RawLink` opens ``socket(AF_PACKET, SOCK_RAW, ethertype)`` bound to the interface,
reads with ``loop.add_reader`` and keeps only frames addressed to this host (PACKET_HOST,
broadcast, multicast; our own outgoing copies and frames for other hosts are dropped).

:func:`drive_slac` runs a SLAC core (EV or EVSE) on a :class:`RawLink` until it matches or
fails; with a :class:`~iso15118.link.slac.modem.SimModem` in between when the interface has no
PLC chip behind it (a veth pair, a lab Ethernet cable).  :class:`PilotWire` carries the
simulated control pilot over the same interface (see its docstring).  Needs CAP_NET_RAW.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iso15118.link.slac.events import SendFrame, SlacEvent, SlacFailed, SlacMatched
from iso15118.link.slac.modem import SimModem
from iso15118.link.timers import ETHERTYPE_HOMEPLUG

__all__ = ["PILOT_ETHERTYPE", "PilotWire", "RawLink", "drive_slac"]

log = logging.getLogger(__name__)

_PACKET_HOST, _PACKET_BROADCAST, _PACKET_MULTICAST = 0, 1, 2
PILOT_ETHERTYPE = 0x88B5
"""IEEE 802 local experimental Ethertype: the simulated pilot wire (never on a real cable)."""


class RawLink:
    """One AF_PACKET socket for one Ethertype on one interface."""

    def __init__(self, iface: str, ethertype: int = ETHERTYPE_HOMEPLUG) -> None:
        self.iface = iface
        self.ethertype = ethertype
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        self.sock.bind((iface, ethertype))
        self.sock.setblocking(False)
        self.mac = ":".join(f"{b:02x}" for b in self.sock.getsockname()[4][:6])
        self._q: asyncio.Queue[bytes] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.received = 0

    def open(self) -> RawLink:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)
        return self

    def _readable(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("%s: recv failed: %s", self.iface, exc)
                return
            if addr[2] in (_PACKET_HOST, _PACKET_BROADCAST, _PACKET_MULTICAST):
                self.received += 1
                self._q.put_nowait(data)

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)
        self.sent += 1

    async def recv(self, timeout: float | None) -> bytes | None:
        """The next frame, or None after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._q.get()
        except TimeoutError:
            return None

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def __enter__(self) -> RawLink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


async def drive_slac(
    core: Any,
    link: RawLink,
    *,
    modem: SimModem | None = None,
    initial: list[SlacEvent] | None = None,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = 60.0,
    on_event: Callable[[float, SlacEvent], None] | None = None,
    abort: asyncio.Event | None = None,
) -> SlacMatched | SlacFailed:
    """Feed frames and deadlines to ``core`` until it matches or fails (or ``timeout``, or
    ``abort`` is set: the pilot left 5 %)."""
    host_q: list[bytes] = []
    outcome: SlacMatched | SlacFailed | None = None

    def emit(events: list[SlacEvent]) -> None:
        nonlocal outcome
        now = clock()
        for e in events:
            if on_event is not None:
                on_event(now, e)
            if isinstance(e, SendFrame):
                if modem is None:
                    link.send(e.frame)
                    continue
                to_line, to_host = modem.from_host(e.frame)
                for f in to_line:
                    link.send(f)
                host_q.extend(to_host)
            elif isinstance(e, SlacMatched | SlacFailed) and outcome is None:
                outcome = e

    emit(initial or [])
    end = clock() + timeout
    while outcome is None:
        while host_q and outcome is None:
            emit(core.receive(host_q.pop(0), clock()))
        if outcome is not None:
            break
        now = clock()
        if now >= end:
            return SlacFailed(f"no outcome within {timeout:g} s", now)
        if abort is not None and abort.is_set():
            return SlacFailed("aborted: the pilot left 5 %", now)
        deadline = core.next_deadline()
        wait = end - now if deadline is None else max(0.0, min(deadline, end) - now)
        if abort is not None:
            wait = min(wait, 0.05)
        frame = await link.recv(wait)
        if frame is None:
            if (d := core.next_deadline()) is not None and clock() >= d:
                emit(core.handle_timer(clock()))
            continue
        frames = modem.from_line(frame) if modem is not None else [frame]
        for f in frames:
            emit(core.receive(f, clock()))
    return outcome


# ------------------------------------------------------------------------- simulated pilot


@dataclass(frozen=True)
class PilotWireState:
    """One side's pilot output: EVSE (duty in %, None = X1; ``f`` = -12 V) or EV (S2)."""

    role: str
    duty: float | None = None
    f: bool = False
    s2: bool = False
    present: bool = True
    """False in the last frame a side sends when it goes away (unplug)."""


_PW_MAGIC = b"CPSIM1"


class PilotWire:
    """The control pilot simulated over the same interface (two namespaces have no pilot).

    Each side broadcasts its output as an Ethertype 0x88B5 frame on every change and every
    ``period`` seconds: ``CPSIM1``, role (``E`` EVSE / ``V`` vehicle), duty in 0.1 % (0xFFFF =
    X1, constant +12 V), F flag, S2 flag, present flag (0 in the goodbye frame of an unplug).  The peer's view (plugged in = a recent frame from
    the other role) feeds the sans-IO pilots; a real board replaces this with
    :class:`iso15118.link.pilot.PilotHardware`."""

    def __init__(self, iface: str, role: str, *, period: float = 0.1) -> None:
        self.link = RawLink(iface, PILOT_ETHERTYPE)
        self.role = role
        self.period = period
        self.loss_after = period * 20
        self.mine = PilotWireState(role)
        self.peer: PilotWireState | None = None
        self.peer_seen = 0.0
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rx: asyncio.Task[None] | None = None

    def encode(self, st: PilotWireState) -> bytes:
        duty = 0xFFFF if st.duty is None else round(st.duty * 10)
        body = _PW_MAGIC + (b"E" if st.role == "evse" else b"V") + struct.pack(">HBBB", duty, st.f, st.s2, st.present)
        frame = b"\xff" * 6 + bytes.fromhex(self.link.mac.replace(":", "")) + struct.pack(">H", PILOT_ETHERTYPE) + body
        return frame + bytes(max(0, 60 - len(frame)))

    @staticmethod
    def decode(frame: bytes) -> PilotWireState | None:
        body = frame[14:]
        if len(body) < 12 or body[:6] != _PW_MAGIC:
            return None
        duty, f, s2, present = struct.unpack(">HBBB", body[7:12])
        return PilotWireState("evse" if body[6:7] == b"E" else "ev", None if duty == 0xFFFF else duty / 10, bool(f), bool(s2),
                              bool(present))

    def set(self, **kw: Any) -> None:
        self.mine = dataclasses.replace(self.mine, **kw)
        self.link.send(self.encode(self.mine))

    def connected(self, now: float) -> bool:
        """A frame from the peer within ``loss_after`` seconds (20 periods: a busy host that
        misses a few heartbeats must not look like an unplug)."""
        return self.peer is not None and self.peer.present and now - self.peer_seen < self.loss_after

    async def start(self) -> PilotWire:
        self.link.open()

        async def beat() -> None:
            while True:
                self.link.send(self.encode(self.mine))
                await asyncio.sleep(self.period)

        async def rx() -> None:
            while True:
                frame = await self.link.recv(None)
                st = self.decode(frame) if frame is not None else None
                if st is not None and st.role != self.role:
                    if st != self.peer:
                        self.changed.set()
                    self.peer, self.peer_seen = st, time.monotonic()

        self._task = asyncio.create_task(beat())
        self._rx = asyncio.create_task(rx())
        return self

    def close(self) -> None:
        """Say goodbye (the peer sees the unplug at once), stop, close the socket."""
        for t in (self._task, self._rx):
            if t is not None:
                t.cancel()
        with contextlib.suppress(OSError):
            self.link.send(self.encode(dataclasses.replace(self.mine, present=False)))
        self.link.close()
