"""The tester SECC: plays the charger against an EVCC under test.

It is the project's sans-IO :class:`SeccSession` core with a simulated charger behind it, on
a listening TCP (or TLS) socket.  A case deviates through a ``script``: before a request is
processed the script may queue an EVSE notification; after the core built its response the
script may send it late, drop it, replace it (another response code, a wrong SessionID,
malformed EXI), and so on.  Everything the EVCC sends and every answer is logged as evidence.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from conformance.evidence import Check, Evidence
from iso15118 import messages as m
from iso15118.session.events import SendMessage, SessionEnded
from iso15118.session.secc import SeccConfig, SeccSession
from iso15118.sim import make_evse
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, start_server
from iso15118.transport.v2gtp import V2GTPError, encode_frame, schema_key_for

EvccLauncher = Callable[[str, int], Awaitable[Any]]
"""Starts the EVCC under test against ``host``, ``port``; completes when it has finished."""


@dataclass
class Action:
    """What to do with the response the core built."""

    kind: str = "send"  # send | drop | delay | replace | raw | frame | split | close
    delay: float = 0.0
    message: Any = None
    raw: bytes | None = None
    payload_type: int | None = None


class Script:
    """Override to deviate; the default behaves like a correct SECC."""

    def before(self, secc: TesterSecc, name: str, msg: Any, n: int) -> None:
        """Called with each decoded request (``n`` = how many of this name so far)."""

    def response(self, secc: TesterSecc, name: str, req: Any, res: Any, n: int) -> Action:
        return Action()


class TesterSecc:
    """A listening tester SECC for one EVCC session."""

    def __init__(self, evidence: Evidence, checks: list[Check], *, profile: str = "wall-connector",
                 script: Script | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.evidence = evidence
        self.checks = checks
        self.script = script or Script()
        self.tls = tls
        self.evse = make_evse(profile, home_load_w=11520.0) if profile == "wall-connector" else make_evse(profile)
        self.core = SeccSession(self.evse, SeccConfig(), now=time.monotonic(), clock=time.time)
        self.server: asyncio.Server | None = None
        self.done = asyncio.Event()
        self.requests: list[tuple[float, str, Any]] = []
        self.counts: dict[str, int] = {}
        self.closed_by_evcc_at: float | None = None
        self.ended: SessionEnded | None = None
        self.connected_at: float | None = None
        self.last_tx_at: float | None = None
        self.responses: list[tuple[float, str, str]] = []
        self.connections = 0
        self.tls_error: str = ""

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        self.server = await start_server(self._handle, "::1", 0, self.tls, ssl_handshake_timeout=10.0 if self.tls else None)
        return self.port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def names(self) -> list[str]:
        return [n for _, n, _ in self.requests]

    async def _send(self, conn: V2GTPConnection, ev: SendMessage, act: Action) -> None:
        if act.kind == "drop":
            self.evidence.note(f"tester SECC: {ev.name} deliberately not sent", "warning")
            return
        if act.kind == "close":
            self.evidence.note("tester SECC: closing instead of answering", "warning")
            conn.close()
            return
        if act.delay:
            self.evidence.note(f"tester SECC: holding {ev.name} for {act.delay:g} s", "warning")
            await asyncio.sleep(act.delay)
        if act.kind == "frame" and act.raw is not None:  # bytes exactly as given (a damaged header ...)
            await conn.send_raw(act.raw)
            self.evidence.frame("tx", None, act.raw, None, name=f"{ev.name} (crafted frame)", detail=f"{len(act.raw)} raw bytes")
        elif act.kind == "split":  # header and payload in two TCP writes, 50 ms apart
            data = encode_frame(ev.payload_type, ev.payload)
            await conn.send_raw(data[:8])
            await asyncio.sleep(0.05)
            await conn.send_raw(data[8:])
            self.evidence.frame("tx", ev.payload_type, ev.payload, ev.message, detail="header and payload in two writes")
        elif act.kind == "raw" and act.raw is not None:
            pt = act.payload_type or ev.payload_type
            await conn.send_raw(encode_frame(pt, act.raw))
            self.evidence.frame("tx", pt, act.raw, None, name=f"{ev.name} (malformed)", detail="crafted payload")
        else:
            msg = act.message if act.kind == "replace" and act.message is not None else ev.message
            payload = m.encode(msg) if msg is not ev.message else ev.payload
            pt = act.payload_type or ev.payload_type
            await conn.send(pt, payload)
            self.evidence.frame("tx", pt, payload, msg)
        self.responses.append((self.evidence.now(), ev.name, act.kind))
        self.last_tx_at = self.evidence.now()

    async def _handle(self, conn: V2GTPConnection) -> None:
        self.connections += 1
        if self.connected_at is not None:  # one session per case: a reconnect is logged, not served
            self.evidence.note("EVCC under test connected again (not served)", "warning")
            self.requests.append((self.evidence.now(), "reconnect", None))
            conn.close()
            return
        self.connected_at = self.evidence.now()
        self.core = SeccSession(self.evse, SeccConfig(), now=time.monotonic(), clock=time.time)
        self.evidence.note(f"EVCC under test connected from {conn.peer}")
        try:
            while True:
                dl = self.core.next_deadline()
                timeout = max(0.0, dl - time.monotonic()) if dl is not None else 30.0
                try:
                    frame = await conn.recv(timeout=min(timeout, 30.0))
                except TimeoutError:
                    events = self.core.handle_timer(time.monotonic())
                    frame = None
                except (ConnectionClosed, ConnectionError, ssl.SSLError, V2GTPError, asyncio.IncompleteReadError) as exc:
                    self.closed_by_evcc_at = self.evidence.now()
                    self.evidence.note(f"EVCC closed the connection: {exc}")
                    self.core.connection_lost(time.monotonic())
                    break
                if frame is not None:
                    key = schema_key_for(frame.payload_type)
                    msg: Any
                    try:
                        msg = m.decode(frame.payload, key) if key else None
                    except Exception as exc:  # noqa: BLE001
                        msg = None
                        self.evidence.frame("rx", frame.payload_type, frame.payload, None, name="?", detail=f"undecodable: {exc}",
                                            level="error")
                    if msg is not None:
                        name = msg.ELEMENT[1]
                        self.evidence.frame("rx", frame.payload_type, frame.payload, msg)
                        n = self.counts[name] = self.counts.get(name, 0) + 1
                        self.requests.append((self.evidence.now(), name, msg))
                        self.script.before(self, name, msg, n)
                    events = self.core.receive(frame.payload_type, frame.payload, time.monotonic())
                    for ev in events:
                        if isinstance(ev, SendMessage):
                            name = msg.ELEMENT[1] if msg is not None else "?"
                            act = self.script.response(self, name, msg, ev.message, self.counts.get(name, 0))
                            try:
                                await self._send(conn, ev, act)
                            except (ConnectionClosed, ConnectionError, ssl.SSLError, OSError) as exc:
                                self.closed_by_evcc_at = self.evidence.now()
                                self.evidence.note(f"EVCC closed the connection before the answer went out: {exc}")
                                conn.close()
                for ev in events:
                    if isinstance(ev, SessionEnded) and self.ended is None:
                        self.ended = ev
                        self.evidence.note(f"tester SECC session ended: {ev.reason}")
                if conn.closed:
                    break
            # after the end keep reading until the EVCC closes (close delay) or 8 s pass
            if not conn.closed:
                try:
                    async with asyncio.timeout(8.0):
                        while True:
                            frame = await conn.recv()
                            self.evidence.frame("rx", frame.payload_type, frame.payload, None, name="frame after the end",
                                                level="warning")
                            self.requests.append((self.evidence.now(), "frame after the end", None))
                except (TimeoutError, ConnectionClosed, ConnectionError, ssl.SSLError, V2GTPError, asyncio.IncompleteReadError):
                    if self.closed_by_evcc_at is None:
                        self.closed_by_evcc_at = self.evidence.now()
        finally:
            self.done.set()


def local_evcc_launcher(profile: str = "cybertruck-awd", service: str = "AC_BPT", loops: int = 8,
                        control_mode: str = "dynamic") -> EvccLauncher:
    """Our own EVCC (simulated vehicle) as the EVCC under test."""
    from conformance.legacy import legacy_evcc_configs
    from iso15118.session.evcc import EvccConfig
    from iso15118.session.runner import run_evcc
    from iso15118.session.services import ControlMode, EnergyService
    from iso15118.sim import make_ev

    async def launch(host: str, port: int) -> Any:
        ev = make_ev(profile, control_mode=ControlMode[control_mode.upper()])
        cfg = EvccConfig(service=EnergyService[service], max_loops=loops, loop_interval=0.05, ongoing_interval=0.05)
        return await run_evcc(ev, host, port, config=cfg, configs=legacy_evcc_configs(loops))  # DIN / -2 cases end too

    return launch


def local_evcc_tls_launcher(profile: str = "cybertruck-awd", service: str = "AC_BPT", loops: int = 8,
                            pki_dir: Any = None) -> Any:
    """Our EVCC over TLS: it trusts the V2G root of ``pki_dir`` (created when None) and presents
    that PKI's vehicle chain.  ``launch(host, port, trust_dir)``; ``launch.pki`` is the PKI."""
    import tempfile
    from pathlib import Path

    from iso15118.security.pki import create_pki, load_pki
    from iso15118.security.tls import evcc_context_from_pki
    from iso15118.session.evcc import EvccConfig
    from iso15118.session.runner import run_evcc
    from iso15118.session.services import EnergyService
    from iso15118.sim import make_ev

    state: dict[str, Any] = {"pki": Path(pki_dir) if pki_dir else None}

    def pki() -> Path:
        if state["pki"] is None:
            state["pki"] = create_pki(tempfile.mkdtemp(prefix="conformance-evcc-pki-"), "secp521r1").root
        return Path(state["pki"])

    async def launch(host: str, port: int, trust_dir: Any = None) -> Any:
        ctx = evcc_context_from_pki(load_pki(pki()).paths)
        cfg = EvccConfig(service=EnergyService[service], max_loops=loops, loop_interval=0.05, ongoing_interval=0.05)
        return await run_evcc(make_ev(profile), host, port, ctx, config=cfg)

    launch.pki = pki  # type: ignore[attr-defined]
    return launch


def command_evcc_launcher(template: str) -> EvccLauncher:
    """An external EVCC: ``template`` with ``{host}`` and ``{port}`` (and for TLS ``{trust}``:
    a directory holding the V2G root the vehicle must trust), e.g.
    ``tools/peer/josev evcc --host {host} --port {port} --service AC_BPT --no-linger``."""
    import shlex

    async def launch(host: str, port: int, trust_dir: Any = None) -> Any:
        argv = shlex.split(template.format(host=host, port=port, trust=trust_dir or ""))
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return out.decode(errors="replace").strip()

    return launch
