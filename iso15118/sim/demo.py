"""The V2H grid-outage demo: a Cybertruck on a wall connector, both stacks in one process,
talking over loopback TLS 1.3 with a freshly generated -20 lab PKI.

Timeline: the truck charges (AC_BPT, dynamic control mode); at ``outage_at`` the grid fails
and the wall connector moves the home onto the vehicle, which exports until the user ends
the session.  Physics (energy, SOC) run ``speed`` times faster than the protocol clock; the
V2H switch-over time is measured on the protocol clock.

With ``pnc=True`` the truck authorizes with Plug & Charge (the lab PKI's contract; with
``install_contract`` it holds only its OEM provisioning certificate and installs the contract
via CertificateInstallation first) and the charger asks for one signed meter reading
(MeteringConfirmation); otherwise EIM.  The summary says which authorization ran.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from iso15118.security.pki import create_pki
from iso15118.session import ControlMode, EnergyService, EvccConfig, SeccConfig
from iso15118.session.events import (
    Event,
    MessageReceived,
    NotificationReceived,
    PowerChanged,
    ProtocolError,
    SendMessage,
    SessionEnded,
    StateChanged,
)
from iso15118.session.rules import AuthorizationMode
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse


@dataclass
class DemoResult:
    ok: bool
    reason: str
    duration: float
    exported_kwh: float
    charged_kwh: float
    v2h_switch_s: float | None
    soc_start: float
    soc_end: float
    messages: int
    tls: str | None
    rows: list[tuple[float, str, str, str, str, str]] = field(default_factory=list)
    authorization: str | None = None
    emaid: str | None = None
    contract_installed: bool = False
    metering_confirmations: int = 0
    authorized_ms: float | None = None


class Timeline:
    """Collects rows and renders them (rich live view, or plain lines when not a terminal)."""

    def __init__(self, console: Console, live: bool, max_rows: int = 18) -> None:
        self.console = console
        self.live_enabled = live
        self.max_rows = max_rows
        self.rows: list[tuple[float, str, str, str, str, str]] = []
        self.state = "Connected"
        self.power_kw = 0.0
        self.soc = 0.0
        self.grid = "grid up"
        self.exported_kwh = 0.0
        self.live: Live | None = None
        self.t0 = time.monotonic()
        self._last_loop_row = -10.0

    def add(self, t: float, message: str, note: str = "") -> None:
        row = (t, message, self.state, f"{self.power_kw:+.1f}", f"{self.soc:.1f}", note)
        self.rows.append(row)
        if self.live is None:
            self.console.print(
                f"{t:6.2f}s  {message:<26} {self.state:<20} {self.power_kw:+6.1f} kW  SOC {self.soc:5.1f} %  {note}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            self.live.update(self.render())

    def render(self) -> Any:
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for col, just in (("t [s]", "right"), ("message", "left"), ("state", "left"), ("kW", "right"), ("SOC %", "right"), ("", "left")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for t, msg, st, kw, soc, note in self.rows[-self.max_rows :]:
            style = "bold red" if "outage" in note or "FAILED" in note else ("green" if kw.startswith("-") and kw != "-0.0" else None)
            table.add_row(f"{t:.2f}", msg, st, kw, soc, note, style=style)
        head = (
            f"[b]{self.state}[/b]   power [b]{self.power_kw:+.1f} kW[/b]   SOC [b]{self.soc:.1f} %[/b]   "
            f"exported [b]{self.exported_kwh:.2f} kWh[/b]   {self.grid}"
        )
        return Group(Panel(head, title="Cybertruck on wall connector - ISO 15118-20 AC_BPT over TLS 1.3"), table)


async def run_demo(
    *,
    speed: float = 60.0,
    outage_at: float = 6.0,
    duration: float = 16.0,
    home_load_w: float = 7200.0,
    soc: float = 62.0,
    console: Console | None = None,
    live: bool | None = None,
    pki_dir: str | Path | None = None,
    pnc: bool = False,
    install_contract: bool = False,
) -> DemoResult:
    console = console or Console()
    live_view = console.is_terminal if live is None else live
    tl = Timeline(console, live_view)
    charger = make_evse("wall-connector", speed=speed, home_load_w=home_load_w)
    truck = make_ev("cybertruck-awd", soc=soc, speed=speed, min_soc_reserve=20, control_mode=ControlMode.DYNAMIC)
    soc_start = truck.battery.soc
    tl.soc = soc_start
    with tempfile.TemporaryDirectory(prefix="iso15118-demo-") as tmp:
        pki = Path(pki_dir) if pki_dir else Path(tmp) / "pki"
        if not (pki / "certs" / "cpoCertChain.pem").exists():
            create_pki(pki, "secp521r1")
        secc_cfg = SeccConfig()
        if pnc:
            from iso15118.session.pnc import contract_from_pki, provisioning_from_pki, secc_pnc_from_pki

            secc_cfg = SeccConfig(
                authorization_services=("PnC", "EIM"), pnc=secc_pnc_from_pki(pki, metering_confirmation_after_loops=4)
            )
            if install_contract:
                truck.provisioning = provisioning_from_pki(pki)
            else:
                truck.contract = contract_from_pki(pki)
        clock0 = time.monotonic()

        def rel(now: float) -> float:
            return now - clock0

        seen_logs = {"ev": 0, "evse": 0}

        def flush_logs() -> None:
            for key, log in (("evse", charger.log), ("ev", truck.log)):
                for t, text in log[seen_logs[key] :]:
                    tl.add(rel(t), "  (" + ("charger" if key == "evse" else "truck") + ")", text)
                seen_logs[key] = len(log)

        metering = {"n": 0}

        def sink(side: str, now: float, ev: Event) -> None:
            if side == "secc":
                if isinstance(ev, SendMessage) and ev.name == "MeteringConfirmationRes":
                    if ev.message.response_code.value == "OK":
                        metering["n"] += 1
                if isinstance(ev, ProtocolError):
                    tl.add(rel(now), "SECC error", f"{ev.code} {ev.detail}")
                return
            tl.soc = truck.battery.soc
            tl.exported_kwh = charger.meter.discharged_wh / 1000
            if isinstance(ev, SendMessage):
                if ev.name.endswith("ChargeLoopReq") and rel(now) - tl._last_loop_row < 1.0:
                    return
                if ev.name.endswith("ChargeLoopReq"):
                    tl._last_loop_row = rel(now)
                tl.add(rel(now), "-> " + ev.name)
            elif isinstance(ev, StateChanged):
                tl.state = ev.new.value
                if ev.new.value in ("PowerStopped", "Ended", "Paused"):
                    tl.power_kw = 0.0
                if live_view and tl.live is not None:
                    tl.live.update(tl.render())
            elif isinstance(ev, PowerChanged):
                tl.power_kw = float(ev.power_w) / 1000
                if tl.live is not None:
                    tl.live.update(tl.render())
            elif isinstance(ev, NotificationReceived):
                tl.add(rel(now), "<- EVSENotification", ev.notification)
            elif isinstance(ev, ProtocolError):
                tl.add(rel(now), "EVCC error", f"{ev.code} {ev.detail}")
            elif isinstance(ev, SessionEnded):
                tl.add(rel(now), "session ended", ev.reason)
            elif isinstance(ev, MessageReceived) and not ev.name.endswith("ChargeLoopRes"):
                pass
            flush_logs()

        secc = await start_secc(
            charger, "::1", 0, secc_context(pki), config=secc_cfg, sink=sink, linger=0.5
        )

        async def outage() -> None:
            await asyncio.sleep(outage_at)
            charger.set_grid_outage(time.monotonic())
            tl.grid = "[red]GRID OUTAGE: home on vehicle[/red]"
            flush_logs()

        truck.stop_after = duration - 1.5  # the user ends the session (from power start)
        cfg = EvccConfig(
            service=EnergyService.AC_BPT,
            control_mode=ControlMode.DYNAMIC,
            loop_interval=0.25,
            authorization=AuthorizationMode.PNC if pnc else None,
        )
        ctx = Live(tl.render(), console=console, refresh_per_second=8, transient=False) if live_view else None
        try:
            if ctx is not None:
                tl.live = ctx.__enter__()
            task = asyncio.create_task(outage())
            result = await run_evcc(truck, "::1", secc.port, evcc_context(pki), config=cfg, sink=sink)
            task.cancel()
            await secc.wait_sessions(1, 10)
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
                tl.live = None
            await secc.aclose(1.0)
        flush_logs()
    switch = charger.v2h_switch_time
    res = DemoResult(
        ok=result.ok and secc.results[0].ok,
        reason=result.reason,
        duration=result.duration,
        exported_kwh=charger.meter.discharged_wh / 1000,
        charged_kwh=charger.meter.charged_wh / 1000,
        v2h_switch_s=switch,
        soc_start=soc_start,
        soc_end=truck.battery.soc,
        messages=result.rx + result.tx,
        tls=result.tls_version,
        rows=tl.rows,
        authorization=result.authorization,
        emaid=result.emaid,
        contract_installed=pnc and install_contract and truck.contract is not None,
        metering_confirmations=metering["n"],
        authorized_ms=result.stats["authorized_s"] * 1000 if "authorized_s" in result.stats else None,
    )
    summary = Table(title="Summary", show_header=False)
    summary.add_row("session", ("[green]OK[/green] " if res.ok else "[red]FAILED[/red] ") + res.reason)
    summary.add_row("transport", f"{res.tls or 'TCP'} (secp521r1 lab PKI, mutual authentication)")
    if res.authorization == "PnC":
        how = "contract installed via CertificateInstallation, " if res.contract_installed else ""
        auth_text = f"Plug & Charge (PnC), eMAID {res.emaid}, {how}verified by the SECC"
        if res.authorized_ms is not None:
            auth_text += f"; authorized {res.authorized_ms:.0f} ms after connect (TLS handshake included)"
        if res.metering_confirmations:
            auth_text += f"; {res.metering_confirmations} signed meter reading(s) confirmed"
    else:
        auth_text = res.authorization or "none"
        if res.authorization == "EIM":
            auth_text = "EIM (external identification means)"
    summary.add_row("authorization", auth_text)
    summary.add_row("messages", str(res.messages))
    summary.add_row("duration", f"{res.duration:.1f} s protocol time ({res.duration * speed / 60:.1f} min simulated energy)")
    summary.add_row("charged from grid", f"{res.charged_kwh:.2f} kWh")
    summary.add_row("exported to home (V2H)", f"{res.exported_kwh:.2f} kWh")
    summary.add_row(
        "V2H switch-over", f"{switch * 1000:.0f} ms after the outage" if switch is not None else "no outage handled"
    )
    summary.add_row("SOC", f"{res.soc_start:.1f} % -> {res.soc_end:.1f} %")
    console.print(summary)
    return res


