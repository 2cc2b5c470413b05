"""One plug-in on a network interface, from the control pilot through SLAC and SDP to
SessionStop: what ``iso15118 secc --iface IF --slac`` and ``iso15118 evcc --iface IF --slac
--discover`` run.

SECC: X1 until a vehicle appears on the (simulated) pilot -> B -> 5 % -> SLAC as EVSE (CM_SET_KEY
to the modem first) -> SDP on the interface's link-local address -> the V2G session; the
contactor follows the session (PowerDelivery) and the EV's S2 (C / B).  On a failed SLAC the
pilot does the E/F retry (T_step_EF, C_sequ_retry), then X1.

EVCC: plugged in (B) -> sees 5 % -> SLAC as EV -> SDP multicast on the interface -> the session;
S2 closes when power starts (C) and opens when it stops (B).

Without a PLC chip (``sim_modem``) a :class:`~iso15118.link.slac.modem.SimModem` stands in on
each side and the pilot is carried by :class:`~iso15118.link.driver.PilotWire`.  Output lines
(``LINK``, ``PILOT``, ``SLAC``, ``SDP``, ``SESSION``) are meant for people and for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iso15118.facts.namespaces import AppProtocol
from iso15118.link.driver import PilotWire, RawLink, drive_slac
from iso15118.link.pilot import ActionKind, CpState, EvPilot, EvsePhase, EvsePilot, PilotAction, duty_for_current
from iso15118.link.slac.ev import EvSlac
from iso15118.link.slac.events import KeySet, SendFrame, SlacFailed, SlacMatched
from iso15118.link.slac.evse import EvseSlac
from iso15118.link.slac.modem import SimModem
from iso15118.link.timers import C_SEQU_RETRY, PilotTimers, SlacTimers

__all__ = ["LinkReport", "run_evcc_on_iface", "run_secc_on_iface"]

Out = Callable[[str], None]


@dataclass
class LinkReport:
    slac: SlacMatched | SlacFailed | None = None
    session_ok: bool = False
    session_reason: str = ""
    pilot_log: list[tuple[float, str]] = field(default_factory=list)
    slac_frames_sent: int = 0
    slac_frames_received: int = 0


def _say(out: Out, t0: float, text: str) -> None:
    out(f"{time.monotonic() - t0:7.3f} {text}")


class _EvsePilotHook:
    """Delegates to the EVSE controller; PowerDelivery drives the pilot's contactor."""

    def __init__(self, inner: Any, on_power: Callable[[bool], None]) -> None:
        self._inner = inner
        self._on_power = on_power

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        ok = bool(self._inner.power_delivery(now, progress, discharge))
        if progress == "Start" and ok:
            self._on_power(True)
        elif progress in ("Stop", "Standby"):
            self._on_power(False)
        return ok


class _EvPilotHook:
    """Delegates to the EV controller; power start / stop drive S2."""

    def __init__(self, inner: Any, on_power: Callable[[bool], None]) -> None:
        self._inner = inner
        self._on_power = on_power

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def power_started(self, now: float, discharge: bool) -> None:
        self._on_power(True)
        self._inner.power_started(now, discharge)

    def power_stopped(self, now: float) -> None:
        self._inner.power_stopped(now)
        self._on_power(False)


async def run_secc_on_iface(
    iface: str,
    controller_factory: Callable[[], Any],
    *,
    tls: ssl.SSLContext | None = None,
    config: Any = None,
    protocols: tuple[AppProtocol, ...] | None = None,
    configs: dict[AppProtocol, Any] | None = None,
    slac: bool = True,
    sim_modem: bool = True,
    timers: SlacTimers | None = None,
    pilot_timers: PilotTimers | None = None,
    plug_timeout: float = 60.0,
    session_timeout: float = 300.0,
    max_current: float = 48.0,
    sim_attenuation_db: float = 20.0,
    out: Out = print,
) -> LinkReport:
    """Serve one plug-in on ``iface``; returns when the session has ended and the EV left.

    Without ``slac``: basic charging (IEC 61851-1, no HLC) at ``max_current`` -- the duty
    offers it, the contactor follows the EV's S2; "passed" when power flowed and the EV left."""
    from iso15118.session.runner import start_secc
    from iso15118.transport.sdp_asyncio import SdpServer

    t0 = time.monotonic()
    report = LinkReport()
    link = RawLink(iface).open()
    modem = SimModem(link.mac, base_db=sim_attenuation_db) if sim_modem else None
    wire = await PilotWire(iface, "evse").start()
    pilot = EvsePilot(hlc=slac, max_current=max_current, timers=pilot_timers or PilotTimers())
    core = EvseSlac(link.mac, timers=timers)
    _say(out, t0, f"LINK iface={iface} mac={link.mac} modem={'simulated ' + modem.modem_mac if modem else 'plc'}")

    def apply(actions: list[PilotAction]) -> None:
        for a in actions:
            if a.kind is ActionKind.SET_DUTY:
                wire.set(duty=a.duty, f=False)
                _say(out, t0, f"PILOT duty {'X1' if a.duty is None else f'{a.duty:.1f} %'}")
            elif a.kind is ActionKind.SET_STATE_F:
                wire.set(duty=None, f=True)
                _say(out, t0, "PILOT state F")
            elif a.kind is ActionKind.CONTACTOR:
                _say(out, t0, f"PILOT contactor {'closed' if a.on else 'open'}")
            elif a.kind in (ActionKind.PLUGGED, ActionKind.UNPLUGGED):
                _say(out, t0, f"PILOT {a.kind.value}")
                if a.kind is ActionKind.UNPLUGGED:
                    unplugged.set()

    def seen() -> CpState:
        now = time.monotonic()
        if not wire.connected(now):
            return CpState.A
        assert wire.peer is not None
        return CpState.C if wire.peer.s2 else CpState.B

    apply(pilot.start(time.monotonic()))
    secc = await start_secc(lambda: _EvsePilotHook(controller_factory(), lambda on: apply(pilot.power_allowed(on, time.monotonic()))),
                            "::", 0, tls, config=config, protocols=protocols, configs=configs)
    sdp = SdpServer(tls_port=secc.port if tls else None, tcp_port=None if tls else secc.port, interface=iface)

    async def open_sdp() -> None:
        # SDP answers only once the data link is up (after the match; at once without SLAC)
        await sdp.start()
        _say(out, t0, f"SDP answering on [{sdp.address}%{iface}]:{sdp.port} for {'tls' if tls else 'tcp'} port {secc.port}")

    stop_watch = asyncio.Event()
    unplugged = asyncio.Event()
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        while not stop_watch.is_set():
            now = time.monotonic()
            apply(pilot.measure(seen(), now) + pilot.handle_timer(now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.02):
                    await wire.changed.wait()
            wire.changed.clear()

    try:
        # our modem's key first, before any vehicle is there
        key_events: list[Any] = []
        for e in core.start(time.monotonic()):
            if isinstance(e, SendFrame) and modem is not None:
                to_line, to_host = modem.from_host(e.frame)
                for f in to_line:
                    link.send(f)
                for f in to_host:
                    for k in core.receive(f, time.monotonic()):
                        if isinstance(k, KeySet):
                            _say(out, t0, f"SLAC CM_SET_KEY.CNF result={k.result}")
            else:
                key_events.append(e)
        # plug-in: wait for a vehicle on the pilot
        try:
            async with asyncio.timeout(plug_timeout):
                while seen() is CpState.A:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            _say(out, t0, f"PILOT no vehicle within {plug_timeout:g} s")
            return report
        watcher = asyncio.create_task(watch())
        apply(pilot.measure(seen(), time.monotonic()))
        if not slac:
            # basic charging: the watcher drives the contactor; wait for the EV to leave
            async with asyncio.timeout(session_timeout):
                while seen() is not CpState.A:
                    await asyncio.sleep(0.05)
            closed = [t for t, what in pilot.log if what == "contactor closed"]
            report.session_ok = bool(closed) and not pilot.contactor
            report.session_reason = "basic charging" if closed else "no power"
            _say(out, t0, f"BASIC {'PASS' if report.session_ok else 'FAIL'} offered {pilot.offered_current():g} A "
                          f"(duty {duty_for_current(pilot.offered_current()):.1f} %)")
            return report
        while True:
            result = await drive_slac(core, link, modem=modem, initial=key_events + core.enable(time.monotonic()),
                                      timeout=core.timers.tt_evse_slac_init + 30.0, abort=unplugged)
            key_events = []
            report.slac = result
            if isinstance(result, SlacMatched):
                _say(out, t0, f"SLAC MATCHED ev={result.peer_mac} run_id={result.run_id.hex()} "
                              f"in {result.duration:.3f} s nid={result.nid.hex()} attenuation={result.attenuation_db:.1f} dB")
                pilot.slac_result(True, time.monotonic())
                await open_sdp()
                break
            if unplugged.is_set():
                _say(out, t0, "SLAC stopped: the vehicle left")
                return report
            _say(out, t0, f"SLAC FAILED {result.reason}")
            apply(pilot.slac_result(False, time.monotonic()))
            if pilot.phase is EvsePhase.UNAVAILABLE:
                return report
            while pilot.phase is EvsePhase.RETRY_EF:
                await asyncio.sleep(0.05)
        results = await secc.wait_sessions(1, timeout=session_timeout)
        r = results[0]
        report.session_ok, report.session_reason = r.ok, r.reason
        _say(out, t0, f"SESSION 1 {'PASS' if r.ok else 'FAIL'} protocol={_label(r.protocol)} reason=\"{r.reason}\" "
                      f"messages={r.rx + r.tx}")
        # wait for the EV to leave (A), briefly
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                while seen() is not CpState.A:
                    await asyncio.sleep(0.05)
    finally:
        stop_watch.set()
        if watcher is not None and not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        if seen() is CpState.A:
            apply(pilot.measure(CpState.A, time.monotonic()))
        report.pilot_log = list(pilot.log)
        report.slac_frames_sent, report.slac_frames_received = link.sent, link.received
        sdp.close()
        await secc.aclose()
        wire.close()
        link.close()
    _say(out, t0, f"LINK frames sent={report.slac_frames_sent} received={report.slac_frames_received}")
    return report


async def run_evcc_on_iface(
    iface: str,
    ev: Any,
    *,
    config: Any = None,
    tls: ssl.SSLContext | None = None,
    protocols: tuple[AppProtocol, ...] | None = None,
    configs: dict[AppProtocol, Any] | None = None,
    slac: bool = True,
    sim_modem: bool = True,
    timers: SlacTimers | None = None,
    plug_timeout: float = 30.0,
    basic_seconds: float = 2.0,
    slac_delay: float = 0.0,
    out: Out = print,
) -> LinkReport:
    """Plug in on ``iface``, pair, discover the SECC, run one session, unplug.

    Without ``slac``: basic charging -- close S2 when the duty offers current, draw it for
    ``basic_seconds``, open S2, unplug.  ``slac_delay``: seconds between seeing 5 % and the
    first CM_SLAC_PARM.REQ (real EVs: 0.02-22.7 s in the captures)."""
    from iso15118.session.runner import run_evcc
    from iso15118.transport.sdp import Security
    from iso15118.transport.sdp_asyncio import discover, endpoint_host

    t0 = time.monotonic()
    report = LinkReport()
    link = RawLink(iface).open()
    modem = SimModem(link.mac, base_db=18.0) if sim_modem else None
    wire = await PilotWire(iface, "ev").start()
    pilot = EvPilot(hlc=slac, max_current=float(getattr(getattr(ev, "spec", None), "ac_max_power", 11520.0)) / 240.0)
    core = EvSlac(link.mac, timers=timers or SlacTimers())
    _say(out, t0, f"LINK iface={iface} mac={link.mac} modem={'simulated ' + modem.modem_mac if modem else 'plc'}")
    start_slac = asyncio.Event()
    slac_stop = asyncio.Event()

    def apply(actions: list[PilotAction]) -> None:
        for a in actions:
            if a.kind is ActionKind.S2:
                wire.set(s2=a.on)
                _say(out, t0, f"PILOT S2 {'closed (C)' if a.on else 'open (B)'}")
            elif a.kind is ActionKind.START_SLAC:
                start_slac.set()
                _say(out, t0, "PILOT 5 % seen: SLAC")
            elif a.kind is ActionKind.STOP_SLAC:
                slac_stop.set()
                _say(out, t0, "PILOT left 5 %: SLAC stopped")

    def feed() -> None:
        now = time.monotonic()
        peer = wire.peer if wire.connected(now) else None
        level = CpState.F if peer is not None and peer.f else None
        apply(pilot.measure(peer is not None, peer.duty if peer else None, now, level=level))

    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            feed()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.02):
                    await wire.changed.wait()
            wire.changed.clear()

    watcher = asyncio.create_task(watch())
    try:
        _say(out, t0, "PILOT plugged in (B)")
        if not slac:
            async with asyncio.timeout(plug_timeout):
                while not pilot.s2:
                    await asyncio.sleep(0.02)
            amps = pilot.allowed
            _say(out, t0, f"BASIC charging: duty {wire.peer.duty if wire.peer else 0:.1f} % allows {amps:g} A "
                          f"= {amps * 240.0:.0f} W at 240 V")
            await asyncio.sleep(basic_seconds)
            pilot.wants_energy = False
            feed()
            report.session_ok, report.session_reason = amps > 0, "basic charging"
            _say(out, t0, f"BASIC {'PASS' if amps > 0 else 'FAIL'} drew {amps:g} A for {basic_seconds:g} s")
            return report
        if slac:
            result: SlacMatched | SlacFailed | None = None
            for _attempt in range(C_SEQU_RETRY + 1):  # the EVSE retries through E/F that often
                try:
                    async with asyncio.timeout(plug_timeout):
                        await start_slac.wait()
                except TimeoutError:
                    _say(out, t0, f"PILOT no 5 % within {plug_timeout:g} s")
                    return report
                start_slac.clear()
                if slac_delay > 0:
                    await asyncio.sleep(slac_delay)
                    slac_delay = 0.0  # only before the first attempt
                if not pilot.slac_started:  # the EVSE left 5 % meanwhile (E/F): wait for the next 5 %
                    continue
                slac_stop.clear()
                result = await drive_slac(core, link, modem=modem, initial=core.start(time.monotonic()), timeout=60.0,
                                          abort=slac_stop)
                report.slac = result
                if isinstance(result, SlacMatched):
                    break
                _say(out, t0, f"SLAC FAILED {result.reason}")
            if not isinstance(result, SlacMatched):
                return report
            heard = ", ".join(f"{mac} {r.mean:.1f} dB" for mac, r in sorted(core.results.items()))
            _say(out, t0, f"SLAC MATCHED evse={result.peer_mac} run_id={result.run_id.hex()} in {result.duration:.3f} s "
                          f"nid={result.nid.hex()} attenuation={result.attenuation_db:.1f} dB heard=[{heard}]")
        resp = await discover(Security.TLS if tls else Security.NONE, interface=iface)
        host = endpoint_host(resp, iface)
        _say(out, t0, f"SDP found [{host}]:{resp.port} security={resp.security.name}")
        hooked = _EvPilotHook(ev, lambda on: apply(pilot.power_ready(on, time.monotonic())))
        r = await run_evcc(hooked, host, resp.port, tls, config=config, protocols=protocols, configs=configs)
        report.session_ok, report.session_reason = r.ok, r.reason
        _say(out, t0, f"SESSION {'PASS' if r.ok else 'FAIL'} protocol={_label(r.protocol)} loops={r.loops} "
                      f"messages={r.rx + r.tx} reason=\"{r.reason}\"")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await watcher
        report.pilot_log = list(pilot.log)
        report.slac_frames_sent, report.slac_frames_received = link.sent, link.received
        wire.close()
        link.close()
        _say(out, t0, "PILOT unplugged")
    _say(out, t0, f"LINK frames sent={report.slac_frames_sent} received={report.slac_frames_received}")
    return report


# ----------------------------------------------------------------------------- CLI entries


def _label(protocol: AppProtocol | None) -> str:
    return protocol.value if protocol is not None else "none"


def secc_cli(args: Any, tls: ssl.SSLContext | None, config: Any,
             protocols: tuple[AppProtocol, ...] | None = None, configs: dict[AppProtocol, Any] | None = None) -> int:
    """``iso15118 secc --iface IF [--slac]``: one plug-in on the interface; status 0 if the
    session passed."""
    from iso15118.sim import make_evse

    report = asyncio.run(run_secc_on_iface(
        args.iface, lambda: make_evse(args.profile, speed=args.speed), tls=tls, config=config, protocols=protocols,
        configs=configs, slac=args.slac,
        sim_modem=args.modem == "sim", plug_timeout=args.plug_timeout,
        max_current=make_evse(args.profile).spec.max_current, sim_attenuation_db=args.sim_attenuation,
        timers=SlacTimers().scaled(args.timer_scale), pilot_timers=PilotTimers().scaled(args.timer_scale),
    ))
    return 0 if report.session_ok else 1


def evcc_cli(args: Any, ev: Any, config: Any, tls: ssl.SSLContext | None,
             protocols: tuple[AppProtocol, ...] | None = None, configs: dict[AppProtocol, Any] | None = None) -> int:
    """``iso15118 evcc --iface IF [--slac] --discover [--protocol ...]``."""
    report = asyncio.run(run_evcc_on_iface(
        args.iface, ev, config=config, tls=tls, protocols=protocols, configs=configs, slac=args.slac, sim_modem=args.modem == "sim",
        plug_timeout=args.plug_timeout, slac_delay=args.slac_delay,
    ))
    return 0 if report.session_ok else 1


def add_arguments(p: Any) -> None:
    """The link options of the ``secc`` / ``evcc`` sub-commands."""
    p.add_argument("--iface", help="run the whole stack on this interface: pilot, SLAC, SDP (link-local), session")
    p.add_argument("--slac", action="store_true", help="with --iface: pair with SLAC (ISO 15118-3) before SDP")
    p.add_argument("--modem", choices=("sim", "plc"), default="sim",
                   help="with --iface: 'sim' = no PLC chip, a simulated modem and pilot wire (veth, lab cable)")
    p.add_argument("--plug-timeout", type=float, default=60.0, help="with --iface: seconds to wait for the peer")
    p.add_argument("--sim-attenuation", type=float, default=20.0, metavar="DB",
                   help="with --modem sim on the SECC: the attenuation its modem measures on the EV's sounds")
    p.add_argument("--timer-scale", type=float, default=1.0, metavar="F",
                   help="with --iface on the SECC, for tests: multiply the waiting windows (TT_EVSE_SLAC_init, "
                        "TT_EVSE_match_session, TT_match_join, T_step_EF, T_step_X1) by F; never the message timing")
    p.add_argument("--slac-delay", type=float, default=0.0, metavar="S",
                   help="with --iface --slac on the EVCC: seconds from seeing 5 %% to the first CM_SLAC_PARM.REQ")
