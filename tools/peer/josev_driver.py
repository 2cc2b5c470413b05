"""Drives Josev (PyPI ``iso15118`` 0.31.2) as this project's independent peer.

Runs ONLY inside the peer's own venv, started by ``tools/peer/josev`` (``python -E -s``, a working
directory of its own): Josev's import name is ``iso15118``, like this project's, and this file never
imports anything of the project. Three commands (``tools/peer/README.md`` has the details):

  secc   a Josev SECC on a fixed address and port (no SDP needed); stdout: READY / SESSION lines
  evcc   one Josev EVCC session against a host and port; stdout: one PASS / FAIL line
  exi    Josev's own codec object (EXIficient in a JVM through py4j): decode, encode, batch, bench

Only the lines above go to stdout; everything Josev logs (it logs to stdout by default) and
everything its JVM prints goes to stderr: the process's file descriptor 1 is pointed at stderr
before Josev is imported, and the driver keeps a private copy of the real stdout.

Exit status: 0 success (a session that ended with a successful SessionStop), 1 a failed session or a
refused codec input, 2 usage error, 3 the peer cannot run (certificates missing or expired).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

# -- stdout is ours, everything else goes to stderr -------------------------------------------------
_STDOUT = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def emit(line: str) -> None:
    """One protocol line on the real stdout (READY, SESSION, PASS/FAIL, codec output)."""
    _STDOUT.write(line + "\n")
    _STDOUT.flush()


def die(status: int, message: str) -> None:
    sys.stderr.write(f"josev: {message}\n")
    raise SystemExit(status)


HOME = os.environ.get("ISO15118_PEER_HOME") or os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "peer")
CALLER_CWD = os.environ.get("JOSEV_CALLER_CWD") or os.getcwd()
PKI_DIR = os.path.join(HOME, "pki")
CERTS = os.path.join(PKI_DIR, "iso15118_2", "certs")
KEYS = os.path.join(PKI_DIR, "iso15118_2", "private_keys")

#: Energy services: (service id in -20, SupportedAppProtocol name of the -20 namespace carrying it)
SERVICES = {"AC": (1, "ISO_15118_20_AC"), "DC": (2, "ISO_15118_20_DC"), "AC_BPT": (5, "ISO_15118_20_AC"),
            "DC_BPT": (6, "ISO_15118_20_DC")}
#: ControlMode parameter values of ServiceDetailRes parameter sets (-20)
CONTROL_MODES = {"scheduled": 1, "dynamic": 2}
#: The project's schema keys and the namespaces Josev's codec takes
NAMESPACES = {
    "sap": "urn:iso:15118:2:2010:AppProtocol",
    "common": "urn:iso:std:iso:15118:-20:CommonMessages",
    "ac": "urn:iso:std:iso:15118:-20:AC",
    "dc": "urn:iso:std:iso:15118:-20:DC",
    "acdp": "urn:iso:std:iso:15118:-20:ACDP",
    "wpt": "urn:iso:std:iso:15118:-20:WPT",
    "xmldsig": "http://www.w3.org/2000/09/xmldsig#",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
    "din": "urn:din:70121:2012:MsgDef",
}


def caller_path(path: str | None) -> str | None:
    """A path given on the command line, taken relative to the caller's directory."""
    if not path:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(CALLER_CWD, path)


def csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}ms"


def quiet_josev_logging(level: str) -> None:
    """Josev configures its loggers on import; keep its output on stderr at ``level``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in ("py4j", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)


# -- certificates ------------------------------------------------------------------------------------


def require_pki(tls: str) -> None:
    """Exit 3 when the files a TLS mode needs are missing or the SECC certificate has expired."""
    if tls == "none":
        return
    needed = [os.path.join(CERTS, "cpoCertChain.pem"), os.path.join(CERTS, "v2gRootCACert.pem"),
              os.path.join(KEYS, "seccLeaf.key")]
    if tls == "tls13":
        needed += [os.path.join(CERTS, "oemCertChain.pem"), os.path.join(CERTS, "oemRootCACert.pem"),
                   os.path.join(KEYS, "oemLeaf.key")]
    missing = [p for p in needed if not os.path.isfile(p)]
    if missing:
        die(3, f"test PKI incomplete ({missing[0]} is missing): run tools/peer/setup")
    leaf = os.path.join(CERTS, "seccLeafCert.pem")
    expired = subprocess.run(["openssl", "x509", "-checkend", "0", "-noout", "-in", leaf], capture_output=True)
    if expired.returncode != 0:
        die(3, "the SECC certificate of the test PKI has expired (it lives 60 days): run tools/peer/setup")


def josev_settings(tls: str) -> None:
    """Josev's shared settings, set directly (no .env file is read)."""
    from iso15118.shared.settings import SettingKey, shared_settings

    shared_settings.update({
        SettingKey.PKI_PATH: PKI_DIR + os.sep,
        SettingKey.MESSAGE_LOG_JSON: False,
        SettingKey.MESSAGE_LOG_EXI: False,
        SettingKey.ENABLE_TLS_1_3: tls == "tls13",
    })


def josev_ssl_context(server_side: bool, keylog: str | None) -> ssl.SSLContext | None:
    """Josev's own SSL context for its role; Josev builds it with ``SSLContext()``, which ignores
    ``SSLKEYLOGFILE``, so the key log file is set on it here."""
    from iso15118.shared.security import get_ssl_context

    ctx = get_ssl_context(server_side)
    if ctx is not None and keylog:
        ctx.keylog_filename = keylog
    return ctx


# -- what each side sent and received -----------------------------------------------------------------


@dataclass
class Message:
    t: float  # wall clock (Unix seconds), for the trace
    mono: float  # monotonic, for durations
    direction: str  # "tx" | "rx"
    payload_type: int
    size: int
    name: str
    ns: str | None
    exi: bytes


@dataclass
class Log:
    messages: list[Message] = field(default_factory=list)
    tls: str = "none"

    def count(self, direction: str) -> int:
        return sum(m.direction == direction for m in self.messages)

    def last(self, direction: str) -> str:
        return next((m.name for m in reversed(self.messages) if m.direction == direction), "-")

    def gaps(self, first: str, then: str) -> list[float]:
        """Seconds from each ``first`` message to the ``then`` message right after it."""
        return [b.mono - a.mono for a, b in zip(self.messages, self.messages[1:])
                if a.direction == first and b.direction == then]

    def span(self) -> float:
        return self.messages[-1].mono - self.messages[0].mono if len(self.messages) > 1 else 0.0


class Recorder:
    """Hooks Josev's session class at its two ends: the raw V2GTP bytes a session receives
    (``SessionStateMachine.process_message``) and sends (``V2GCommunicationSession.send``); names and
    namespaces come from Josev's EXI facade (``EXI.from_exi`` / ``EXI.to_exi``)."""

    def __init__(self, trace_path: str | None) -> None:
        self.trace = open(trace_path, "a", buffering=1, encoding="utf-8") if trace_path else None
        self.decoded: dict[str, Any] = {}

    def log_of(self, session: Any) -> Log:
        log = getattr(session, "_peer_log", None)
        if log is None:
            log = Log()
            try:
                ssl_object = session.writer.get_extra_info("ssl_object")
                log.tls = ssl_object.version() if ssl_object is not None else "none"
            except Exception:  # noqa: BLE001 - a transport without extra info
                log.tls = "?"
            session._peer_log = log
        return log

    def add(self, session: Any, direction: str, raw: bytes, name: str, ns: str | None, t: float, mono: float) -> None:
        ptype = int.from_bytes(raw[2:4], "big") if len(raw) >= 8 else 0
        msg = Message(t, mono, direction, ptype, len(raw), name, ns, bytes(raw[8:]))
        self.log_of(session).messages.append(msg)
        if self.trace is not None:
            self.trace.write(json.dumps({"t": t, "dir": direction, "payload_type": f"0x{ptype:04x}", "len": len(raw),
                                         "name": name, "ns": ns, "exi_hex": msg.exi.hex()}) + "\n")

    def install(self) -> None:
        from iso15118.shared.comm_session import SessionStateMachine, V2GCommunicationSession
        from iso15118.shared.exi_codec import EXI

        rec = self
        decode, encode = EXI.from_exi, EXI.to_exi
        receive, send = SessionStateMachine.process_message, V2GCommunicationSession.send

        def from_exi(exi: Any, payload: bytes, namespace: Any) -> Any:
            rec.decoded["rx_ns"] = str(getattr(namespace, "value", namespace))
            message = decode(exi, payload, namespace)
            rec.decoded["rx_name"] = str(message)
            return message

        def to_exi(exi: Any, element: Any, namespace: Any) -> bytes:
            rec.decoded["tx_ns"] = str(getattr(namespace, "value", namespace))
            return encode(exi, element, namespace)

        async def process_message(machine: Any, message: bytes) -> None:
            t, mono = time.time(), time.perf_counter()
            rec.decoded.pop("rx_name", None)
            rec.decoded.pop("rx_ns", None)
            try:
                await receive(machine, message)
            finally:
                rec.add(machine, "rx", message, rec.decoded.get("rx_name", "?"), rec.decoded.get("rx_ns"), t, mono)

        async def send_message(session: Any, message: Any) -> None:
            raw = message.to_bytes()
            t, mono = time.time(), time.perf_counter()
            await send(session, message)
            rec.add(session, "tx", raw, str(session.current_state.message), rec.decoded.get("tx_ns"), t, mono)

        EXI.from_exi = from_exi
        EXI.to_exi = to_exi
        SessionStateMachine.process_message = process_message
        V2GCommunicationSession.send = send_message


def auth_mode(session: Any) -> str:
    for value in (getattr(getattr(session, "authorization_req_message", None), "selected_auth_service", None),
                  getattr(session, "selected_auth_option", None)):
        if value is not None:
            return str(getattr(value, "name", value))
    return "-"


def control_name(session: Any) -> str:
    mode = getattr(session, "control_mode", None)
    return mode.name.lower() if mode is not None else "-"


def service_name(session: Any) -> str:
    chosen = getattr(getattr(session, "selected_energy_service", None), "service", None)
    return str(getattr(chosen, "name", chosen)) if chosen is not None else "-"


async def ipv6_sockaddr(host: str, port: int, iface: str) -> tuple[Any, ...]:
    """The socket address of ``host``: a link-local address gets the interface as its scope."""
    try:
        if IPv6Address(host).is_link_local and "%" not in host:
            host = f"{host}%{iface}"
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET6, type=socket.SOCK_STREAM)
    return tuple(infos[0][4])


def interrupt(*_: Any) -> None:
    """SIGTERM ends a peer like Ctrl-C does."""
    raise KeyboardInterrupt


# -- SECC --------------------------------------------------------------------------------------------


def run_secc(args: argparse.Namespace) -> int:
    services = [s.upper() for s in csv(args.services)]
    unknown = [s for s in services if s not in SERVICES]
    if unknown or not services:
        die(2, f"--services: unknown {unknown[0] if unknown else '(empty)'}; one or more of {', '.join(SERVICES)}")
    protocols = csv(args.protocols) if args.protocols else list(dict.fromkeys(
        [SERVICES[s][1] for s in services] + ["ISO_15118_2", "DIN_SPEC_70121"]))
    auth = [a.upper() for a in csv(args.auth)]
    if args.sdp and not 49152 <= args.port <= 65535:
        die(2, "--sdp needs a --port in 49152..65535 (Josev builds no SDP response for other ports)")
    require_pki(args.tls)

    import iso15118.secc  # noqa: F401  (sets up Josev's loggers)

    quiet_josev_logging(args.log_level)
    josev_settings(args.tls)
    keylog = caller_path(args.keylog) or os.environ.get("SSLKEYLOGFILE")
    recorder = Recorder(caller_path(args.trace))
    recorder.install()

    import iso15118.secc.comm_session_handler as handler_module
    import iso15118.secc.transport.tcp_server as tcp_server_module
    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.secc.secc_settings import Config
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.utils import load_requested_auth_modes, load_requested_protocols

    offered_ids = {SERVICES[s][0] for s in services}
    offered_modes = set(CONTROL_MODES.values()) if args.control == "both" else {CONTROL_MODES[args.control]}

    class OfferingController(SimEVSEController):
        """Josev's simulated EVSE, offering only the services and control modes asked for."""

        async def get_energy_service_list(self) -> Any:
            offer = await super().get_energy_service_list()
            offer.services = [s for s in offer.services if s.service_id in offered_ids]
            return offer

        async def send_charging_command(self, ev_target_voltage: Any, ev_target_current: Any,
                                        is_precharge: bool = False, is_session_bpt: bool = False) -> None:
            """A power stage that follows the EV's DC target voltage (Josev's stub stays at 1 V), up to
            the simulator's own 600 V: DIN / -2 pre-charge then converges.  The current stays Josev's
            1 A (its controller outlives the session, and its PreCharge refuses more than 2 A)."""
            if ev_target_voltage is not None:
                self.evse_data_context.present_voltage = max(0, min(float(ev_target_voltage), 600.0))

        async def stop_charger(self) -> None:
            """Power off (PowerDelivery Stop): the output falls to 0 V, as welding detection expects."""
            await super().stop_charger()
            self.evse_data_context.present_voltage = 0

        async def get_service_parameter_list(self, service_id: int) -> Any:
            offer = await super().get_service_parameter_list(service_id)
            if offer is not None:
                offer.parameter_sets = [
                    ps for ps in offer.parameter_sets
                    if all(p.int_value in offered_modes for p in ps.parameters if p.name == "ControlMode")
                ]
            return offer

    class FixedAddressServer(tcp_server_module.TCPServer):
        """Josev's TCP server on our address and port (Josev's own picks a random port on the
        interface's link-local address, after an SDP request)."""

        def __init__(self, queue: asyncio.Queue[Any], iface: str) -> None:
            super().__init__(queue, iface)
            self.port = args.port

        async def server_factory(self, ready_event: asyncio.Event, tls: bool) -> None:
            context = josev_ssl_context(True, keylog) if tls else None
            self.is_tls_enabled = context is not None
            address = await ipv6_sockaddr(args.bind, self.port, args.iface)
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            self.full_ipv6_address = address  # type: ignore[assignment]
            self.ipv6_address_host = address[0]
            self.server = await asyncio.start_server(self, sock=sock, ssl=context)
            ready_event.set()
            try:
                await asyncio.shield(self.server.wait_closed())
            except asyncio.CancelledError:  # the session handler ends the server after each session
                self.server.close()
                await self.server.wait_closed()

    by_peer: dict[tuple[Any, ...], Any] = {}

    class TrackedSession(handler_module.SECCCommunicationSession):  # type: ignore[misc, valid-type]
        """Josev keys its sessions by the peer's IP address alone; this keeps the full address."""

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            if self.peer_name:
                by_peer[tuple(self.peer_name)] = self

    handler_module.TCPServer = FixedAddressServer
    handler_module.SECCCommunicationSession = TrackedSession

    config = Config()
    config.iface = args.iface
    config.log_level = args.log_level
    config.enforce_tls = args.tls != "none"
    config.free_charging_service = False
    config.free_cert_install_service = True
    config.allow_cert_install_service = True
    config.use_cpo_backend = False
    config.standby_allowed = False
    config.supported_protocols = load_requested_protocols(protocols)
    config.supported_auth_options = load_requested_auth_modes(auth)
    config.env_dump = {"bind": args.bind, "port": args.port, "tls": args.tls, "services": services,
                       "control": args.control, "protocols": protocols, "auth": auth}
    tally = {"sessions": 0, "passed": 0}
    status: list[int] = []

    class PeerSecc(SECCHandler):  # type: ignore[misc]
        async def start_session_handler(self, iface: str, start_udp_server: bool | None = True) -> None:
            self.list_of_tasks.append(self.listen())
            await super().start_session_handler(iface, start_udp_server)

        async def listen(self) -> None:
            await self.start_tcp_server(args.tls != "none")
            server = self.tcp_server.server if self.tcp_server is not None else None
            if server is None or not server.is_serving():
                emit(f"ERROR cannot listen on [{args.bind}]:{args.port}")
                status.append(2)
                raise SystemExit(2)
            emit(f"READY {args.tls if self.tcp_server.is_tls_enabled else 'none'} [{args.bind}]:{args.port}")

        async def end_current_session(self, peer_ip_address: Any, session_stop_action: Any) -> None:
            session = by_peer.pop(tuple(peer_ip_address or ()), None)
            try:
                await super().end_current_session(peer_ip_address, session_stop_action)
            finally:
                self.report(session)
            if args.once:
                status.append(0 if tally["passed"] else 1)
                raise SystemExit(status[-1])
            await self.listen()

        def report(self, session: Any) -> None:
            tally["sessions"] += 1
            stop = getattr(session, "stop_reason", None)
            ok = bool(stop is not None and stop.successful)
            tally["passed"] += ok
            log = recorder.log_of(session) if session is not None else Log()
            proc = log.gaps("rx", "tx")
            reason = (stop.reason if stop is not None else "no stop reason").replace("\n", " ")[:200]
            emit(f"SESSION {tally['sessions']} {'PASS' if ok else 'FAIL'} "
                 f"protocol={getattr(getattr(session, 'protocol', None), 'name', '-')} service={service_name(session)} "
                 f"control={control_name(session)} tls={log.tls} auth={auth_mode(session)} rx={log.count('rx')} "
                 f"tx={log.count('tx')} last_rx={log.last('rx')} "
                 f"proc_median={ms(statistics.median(proc) if proc else None)} duration={log.span():.1f}s "
                 f'reason="{reason}"')

    if args.sdp:
        allow_sdp_on_loopback()

    async def main() -> None:
        controller = OfferingController()
        await controller.set_status(ServiceStatus.STARTING)
        handler = PeerSecc(exi_codec=ExificientEXICodec(), evse_controller=controller, config=config)
        await handler.start(args.iface, start_udp_server=args.sdp)

    signal.signal(signal.SIGTERM, interrupt)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except SystemExit as stop:
        return int(stop.code or 0)
    return status[-1] if status else 0


def allow_sdp_on_loopback() -> None:
    """Josev's SDP server joins ff02::1 on its interface; ``lo`` has no multicast, so a failed join
    is tolerated (unicast SDP to UDP port 15118 still reaches it)."""
    import iso15118.secc.transport.udp_server as udp_module

    class LenientSocket(socket.socket):
        def setsockopt(self, level: int, option: int, value: Any, *rest: Any) -> None:  # type: ignore[override]
            try:
                super().setsockopt(level, option, value, *rest)
            except OSError as exc:
                if (level, option) != (socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP):
                    raise
                logging.getLogger("josev-driver").warning("no multicast on this interface (%s): unicast SDP only", exc)

    class SocketModule:
        socket = LenientSocket

        def __getattr__(self, name: str) -> Any:
            return getattr(socket, name)

    udp_module.socket = SocketModule()


# -- EVCC --------------------------------------------------------------------------------------------


async def discover(host: str, iface: str, tls: bool, tries: int = 50) -> tuple[str, int, bool] | None:
    """SDP by unicast UDP to ``[host]:15118`` (``lo`` cannot multicast), 250 ms per try."""
    from iso15118.shared.messages.enums import Protocol
    from iso15118.shared.messages.sdp import SDPRequest, SDPResponse, Security, Transport
    from iso15118.shared.messages.v2gtp import V2GTPMessage

    request = SDPRequest(security=Security.TLS if tls else Security.NO_TLS, transport_protocol=Transport.TCP)
    datagram = V2GTPMessage(Protocol.UNKNOWN, request.payload_type, request.to_payload()).to_bytes()
    address = await ipv6_sockaddr(host, 15118, iface)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for _ in range(tries):
            sock.sendto(datagram, address)
            try:
                answer = await asyncio.wait_for(loop.sock_recv(sock, 1024), 0.25)
            except TimeoutError:
                continue
            response = SDPResponse.from_payload(V2GTPMessage.from_bytes(Protocol.UNKNOWN, answer).payload)
            return (IPv6Address(int.from_bytes(response.ip_address, "big")).compressed, response.port,
                    response.security == Security.TLS)
    return None


def run_evcc(args: argparse.Namespace) -> int:
    service = args.service.upper()
    if service not in SERVICES:
        die(2, f"--service: unknown {service}; one of {', '.join(SERVICES)}")
    if args.protocol == "iso20":
        protocols = [SERVICES[service][1]]
    elif service.endswith("_BPT"):
        die(2, "BPT services exist only in ISO 15118-20 (--protocol iso20)")
    elif args.protocol == "din" and service != "DC":
        die(2, "DIN SPEC 70121 is DC only")
    else:
        protocols = ["ISO_15118_2" if args.protocol == "iso2" else "DIN_SPEC_70121"]
    if args.port is None and not args.sdp:
        die(2, "--port is required (or --sdp to discover it)")
    require_pki(args.tls)

    import iso15118.evcc  # noqa: F401  (sets up Josev's loggers)

    quiet_josev_logging(args.log_level)
    josev_settings(args.tls)
    keylog = caller_path(args.keylog) or os.environ.get("SSLKEYLOGFILE")
    recorder = Recorder(caller_path(args.trace))
    recorder.install()

    import iso15118.evcc.comm_session_handler as handler_module
    import iso15118.evcc.transport.tcp_client as tcp_client_module
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig
    from iso15118.shared.comm_session import V2GCommunicationSession
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.notifications import StopNotification

    class DirectClient(tcp_client_module.TCPClient):
        """Josev's TCP client, connecting to the address as given (Josev's own always appends its
        interface as a scope, which only a link-local address takes), with a TLS key log."""

        def __init__(self, queue: asyncio.Queue[Any], port: int, is_tls: bool) -> None:
            super().__init__(queue, port, False)
            self.ssl_context = josev_ssl_context(False, keylog) if is_tls else None

        @staticmethod
        async def create(host: IPv6Address, port: int, queue: asyncio.Queue[Any], is_tls: bool, iface: str) -> Any:
            client = DirectClient(queue, port, is_tls)
            target = host.compressed + (f"%{iface}" if host.is_link_local else "")
            client.reader, client.writer = await asyncio.open_connection(
                host=target, port=port, family=socket.AF_INET6, ssl=client.ssl_context)
            return client

    handler_module.TCPClient = DirectClient

    settings: dict[str, Any] = {
        "supportedProtocols": protocols, "supportedEnergyServices": [service],
        "isCertInstallNeeded": args.cert_install, "useTls": args.tls != "none", "enforceTls": args.tls != "none",
        "chargeLoopCycle": args.loops, "sdpRetryCycles": 1,
    }
    if args.protocol != "iso20":
        settings["energyTransferMode"] = "DC_extended" if service == "DC" else "AC_three_phase_core"
    ev_config = EVCCConfig(**settings)
    ev_config.load_raw_values()
    wanted_mode = CONTROL_MODES[args.control]

    class ModeChoosingEV(SimEVController):
        """Josev's simulated EV; takes the first parameter set with the ControlMode asked for
        (Josev's own takes the first set of the first service)."""

        async def select_energy_service_v20(self, services: Any) -> Any:
            choice = await super().select_energy_service_v20(services)
            for offered in services:
                if not offered.is_energy_service:
                    continue
                for ps in offered.parameter_sets:
                    if [p.int_value for p in ps.parameters if p.name == "ControlMode"][:1] == [wanted_mode]:
                        choice.service, choice.is_free, choice.parameter_set = offered.service, offered.is_free, ps
                        return choice
            logging.getLogger("josev-driver").warning("the SECC offered no parameter set with ControlMode=%s", wanted_mode)
            return choice

    if args.no_linger:
        async def close_now(session: Any, reason: str) -> None:
            session.writer.close()

        V2GCommunicationSession.stop = close_now

    outcome: dict[str, Any] = {"ok": False, "why": "not started", "session": None, "wall": 0.0}

    async def main() -> None:
        t_start = time.perf_counter()
        handler = EVCCHandler(evcc_config=ev_config, iface=args.iface, exi_codec=ExificientEXICodec(),
                              ev_controller=ModeChoosingEV(ev_config))
        host, port, tls = args.host, args.port, args.tls != "none"
        if args.sdp:
            found = await discover(args.host, args.iface, tls)
            if found is None:
                outcome["why"] = f"no SDP response from [{args.host}]:15118"
                return
            host, port, tls = found
        await handler.start_comm_session(IPv6Address(host.split("%")[0]), port, tls)
        session, task = handler.comm_session
        if task is None:
            outcome["why"] = f"could not connect to [{host}]:{port} ({'TLS' if tls else 'TCP'})"
            return
        outcome["session"] = session
        stop = None
        try:
            deadline = time.monotonic() + args.timeout
            while stop is None:
                note = await asyncio.wait_for(handler._rcv_queue.get(), max(0.0, deadline - time.monotonic()))
                if isinstance(note, StopNotification):
                    stop = note
        except TimeoutError:
            outcome["why"] = f"no end of session within {args.timeout:g} s"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        log = recorder.log_of(session)
        if stop is not None:
            outcome["why"] = stop.reason
            outcome["ok"] = bool(stop.successful) and log.last("rx") == "SessionStopRes"
        mode = getattr(session, "control_mode", None)
        if outcome["ok"] and args.protocol == "iso20" and (mode is None or int(mode.value) != wanted_mode):
            outcome["ok"] = False
            outcome["why"] = f"the session ran in control mode {getattr(mode, 'name', None)}, not {args.control}"
        outcome["wall"] = time.perf_counter() - t_start

    signal.signal(signal.SIGTERM, interrupt)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        outcome["why"] = "interrupted"
    session = outcome["session"]
    log = recorder.log_of(session) if session is not None else Log()
    rtt = log.gaps("tx", "rx")
    reason = str(outcome["why"]).replace("\n", " ")[:200]
    emit(f"{'PASS' if outcome['ok'] else 'FAIL'} protocol={getattr(getattr(session, 'protocol', None), 'name', '-')} "
         f"service={service_name(session) if session is not None else service} control={control_name(session)} "
         f"tls={log.tls} auth={auth_mode(session)} messages={len(log.messages)} (tx={log.count('tx')} "
         f"rx={log.count('rx')}) final={log.last('rx')} rtt_median={ms(statistics.median(rtt) if rtt else None)} "
         f"rtt_max={ms(max(rtt) if rtt else None)} exchange={log.span():.1f}s wall={outcome['wall']:.1f}s "
         f'reason="{reason}"')
    return 0 if outcome["ok"] else 1


# -- codec -------------------------------------------------------------------------------------------


class Codec:
    """Josev's codec object, the one its sessions use: Josev JSON <-> EXI through EXIficient."""

    def __init__(self) -> None:
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        t0 = time.perf_counter()
        self.josev = ExificientEXICodec()
        self.start_seconds = time.perf_counter() - t0

    def encode(self, josev_json: str, schema: str) -> bytes:
        return bytes(self.josev.encode(josev_json, NAMESPACES[schema]))

    def decode(self, exi: bytes, schema: str) -> str:
        return str(self.josev.decode(exi, NAMESPACES[schema]))

    def decoded_xml(self) -> str:
        """The XML EXIficient produced inside the last decode (before Josev bound it to JSON)."""
        return str(self.josev.exi_codec.getDecodedExi())


def read_text(arg: str) -> str:
    """``-`` (stdin), a file, or the text itself."""
    if arg == "-":
        return sys.stdin.read()
    path = caller_path(arg)
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    return arg


def read_exi(arg: str, v2gtp: bool) -> bytes:
    """Hex text (``-``, a text file or the argument itself) or a binary file."""
    path = caller_path(arg) if arg != "-" else None
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            data = bytes.fromhex(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            data = raw
    else:
        text = sys.stdin.read() if arg == "-" else arg
        try:
            data = bytes.fromhex("".join(text.split()))
        except ValueError:
            die(2, f"not hexadecimal and not a file: {arg[:60]}")
    return data[8:] if v2gtp else data


def run_exi(args: argparse.Namespace) -> int:
    import iso15118.shared.logging  # noqa: F401  (Josev's logging set-up, then ours over it)

    quiet_josev_logging(args.log_level)
    if args.exi_command == "bench":
        return exi_bench(args)
    codec = Codec()
    try:
        if args.exi_command == "decode":
            text = codec.decode(read_exi(args.input, args.v2gtp), args.schema)
            emit(text if args.json else codec.decoded_xml())
            return 0
        if args.exi_command == "encode":
            source = read_text(args.input).strip()
            if source.startswith("<"):
                die(2, "encode takes Josev's JSON form of a message (decode --json prints it), not XML")
            emit(codec.encode(source, args.schema).hex())
            return 0
    except Exception as exc:  # noqa: BLE001 - py4j / Josev raise plain Exception for refused input
        die(1, f"{args.exi_command} refused: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return exi_batch(codec)


def exi_batch(codec: Codec) -> int:
    """stdin lines ``decode SCHEMA IN.exi OUT [json]`` or ``encode SCHEMA IN.json OUT.exi``; one
    ``OK <line>`` or ``ERR <line> :: reason`` per line (the shape of the reference oracle's batch)."""
    for raw_line in sys.stdin:
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = line.split()
            if len(words) not in (4, 5) or words[0] not in ("encode", "decode") or words[1] not in NAMESPACES:
                raise ValueError("expected: encode|decode SCHEMA IN OUT [json]")
            op, schema, src, dst = words[0], words[1], caller_path(words[2]), caller_path(words[3])
            assert src and dst
            if op == "encode":
                with open(src, encoding="utf-8") as f:
                    data = codec.encode(f.read().strip(), schema)
                with open(dst, "wb") as out:
                    out.write(data)
            else:
                with open(src, "rb") as f:
                    text = codec.decode(f.read(), schema)
                with open(dst, "w", encoding="utf-8") as out:
                    out.write(text if words[4:] == ["json"] else codec.decoded_xml())
            emit(f"OK {line}")
        except Exception as exc:  # noqa: BLE001 - one answer per job, whatever went wrong
            emit(f"ERR {line} :: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return 0


def exi_bench(args: argparse.Namespace) -> int:
    """Warm encode (Josev JSON -> EXI) and decode (EXI -> Josev JSON) timings per message."""
    path = caller_path(args.messages)
    if not path or not os.path.isfile(path):
        die(2, f"--messages: no such file: {args.messages}")
    with open(path, encoding="utf-8") as f:
        messages = [json.loads(ln) for ln in f if ln.strip() and not ln.startswith("#")]
    if args.only:
        messages = [m for m in messages if args.only in m["name"]]
    if not messages:
        die(2, "no messages to time")
    codec = Codec()
    t0 = time.perf_counter()
    codec.encode(messages[0]["json"], messages[0]["schema"])
    first = time.perf_counter() - t0
    emit(f"# Josev's codec: JVM start {codec.start_seconds * 1000:.0f} ms, first encode {first * 1000:.0f} ms; "
         f"{args.n} timed runs after {args.warmup} untimed")
    rows = []
    for m in messages:
        exi, schema = bytes.fromhex(m["exi_hex"]), m["schema"]
        for _ in range(args.warmup):
            codec.encode(m["json"], schema)
            codec.decode(exi, schema)
        enc: list[float] = []
        dec: list[float] = []
        same = True
        for _ in range(args.n):
            a = time.perf_counter()
            out = codec.encode(m["json"], schema)
            b = time.perf_counter()
            codec.decode(exi, schema)
            enc.append((b - a) * 1000)
            dec.append((time.perf_counter() - b) * 1000)
            same = same and out == exi
        row = {"name": m["name"], "schema": schema, "bytes": len(exi), "enc_min_ms": min(enc),
               "enc_median_ms": statistics.median(enc), "dec_min_ms": min(dec), "dec_median_ms": statistics.median(dec),
               "reencode_identical": same}
        rows.append(row)
        emit(f"{m['name'][:34]:34} {schema:7} {len(exi):5} B  encode {row['enc_median_ms']:7.2f} ms  "
             f"decode {row['dec_median_ms']:7.2f} ms  {'same bytes' if same else 'DIFFERENT bytes'}")
    if args.json_out:
        with open(caller_path(args.json_out) or args.json_out, "w", encoding="utf-8") as f:
            json.dump({"jvm_start_ms": codec.start_seconds * 1000, "first_encode_ms": first * 1000, "n": args.n,
                       "warmup": args.warmup, "rows": rows}, f, indent=1)
    return 0


# -- Plug & Charge primitives of ISO 15118-2 (Josev's own functions) --------------------------------


def _load_key(path: str, password: str | None) -> Any:
    from cryptography.hazmat.primitives import serialization

    with open(caller_path(path) or path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password.encode() if password else None)


def _load_cert_der(path: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(caller_path(path) or path, "rb") as f:
        data = f.read()
    cert = x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_certificate(data)
    return cert.public_bytes(serialization.Encoding.DER)


def run_pnc(args: argparse.Namespace) -> int:
    """-2 contract key delivery and AuthorizationReq signatures, done by Josev's ``shared.security``:
    one JSON line on stdout."""
    import iso15118.shared.logging  # noqa: F401

    quiet_josev_logging(args.log_level)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from iso15118.shared import security as sec
    from iso15118.shared.exi_codec import EXI
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.messages.enums import Namespace

    josev_settings("none")
    EXI().set_exi_codec(ExificientEXICodec())
    if args.pnc_command == "keyenc":
        dh, enc = sec.encrypt_priv_key(_load_cert_der(args.recipient_cert), _load_key(args.contract_key, args.password))
        emit(json.dumps({"dh": dh.hex(), "enc": enc.hex()}))
        return 0
    if args.pnc_command == "keydec":
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(args.dh))
        raw = sec.decrypt_priv_key(bytes.fromhex(args.enc), _load_key(args.key, args.password), peer)
        public = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()).public_key()
        emit(json.dumps({"public_der": public.public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo).hex()}))
        return 0
    from iso15118.shared.messages.iso15118_2.body import AuthorizationReq, Body
    from iso15118.shared.messages.iso15118_2.header import MessageHeader
    from iso15118.shared.messages.iso15118_2.msgdef import V2GMessage

    if args.pnc_command == "sign-auth":
        req = AuthorizationReq(id=args.id, gen_challenge=bytes.fromhex(args.challenge))
        fragment = EXI().to_exi(req, Namespace.ISO_V2_MSG_DEF)
        signature = sec.create_signature([(req.id, fragment)], _load_key(args.key, args.password))
        msg = V2GMessage(header=MessageHeader(session_id=args.session, signature=signature), body=Body(authorization_req=req))
        emit(json.dumps({"message": EXI().to_exi(msg, Namespace.ISO_V2_MSG_DEF).hex(), "fragment": fragment.hex()}))
        return 0
    # verify-auth: what Josev's SECC does with a received AuthorizationReq
    msg = EXI().from_exi(bytes.fromhex(args.message), Namespace.ISO_V2_MSG_DEF)
    req = msg.body.authorization_req
    fragment = EXI().to_exi(req, Namespace.ISO_V2_MSG_DEF)
    ok = sec.verify_signature(signature=msg.header.signature, elements_to_sign=[(req.id, fragment)],
                              leaf_cert=_load_cert_der(args.cert))
    emit(json.dumps({"valid": bool(ok), "fragment": fragment.hex()}))
    return 0


# -- command line ------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="josev", description="Josev (PyPI iso15118 0.31.2) as a test peer.")
    sub = top.add_subparsers(dest="command", required=True)

    s = sub.add_parser("secc", help="a Josev SECC in the foreground (READY / SESSION lines on stdout)")
    s.add_argument("--bind", default="::1", help="IPv6 address to listen on (default ::1)")
    s.add_argument("--port", type=int, default=15119)
    s.add_argument("--tls", choices=("none", "tls12", "tls13"), default="none",
                   help="tls12: TLS 1.2, no client certificate; tls13: TLS 1.3 (or 1.2), client certificate required")
    s.add_argument("--services", default="AC,DC,AC_BPT,DC_BPT", help="energy services offered (comma list)")
    s.add_argument("--control", choices=("scheduled", "dynamic", "both"), default="both")
    s.add_argument("--auth", default="EIM,PNC", help="authorization services offered (Josev offers PnC even over TCP)")
    s.add_argument("--protocols", default=None, help="SupportedAppProtocol list in priority order")
    s.add_argument("--once", action="store_true", help="exit after the first session: 0 if it passed, else 1")
    s.add_argument("--sdp", action="store_true", help="also answer SDP on UDP port 15118 of --iface")
    s.add_argument("--iface", default="lo")
    s.add_argument("--keylog", help="write TLS secrets here (NSS key log format)")
    s.add_argument("--trace", help="append one JSON line per V2GTP message here")
    s.add_argument("--log-level", default="INFO")

    e = sub.add_parser("evcc", help="one Josev EVCC session (one PASS / FAIL line on stdout)")
    e.add_argument("--host", default="::1")
    e.add_argument("--port", type=int)
    e.add_argument("--service", default="DC_BPT", help="AC, DC, AC_BPT or DC_BPT")
    e.add_argument("--control", choices=("scheduled", "dynamic"), default="scheduled")
    e.add_argument("--tls", choices=("none", "tls12", "tls13"), default="none")
    e.add_argument("--protocol", choices=("iso20", "iso2", "din"), default="iso20")
    e.add_argument("--loops", type=int, default=10, help="charge loop cycles")
    e.add_argument("--cert-install", action="store_true", help="ask for CertificateInstallation")
    e.add_argument("--sdp", action="store_true", help="discover the SECC by unicast SDP to [--host]:15118 first")
    e.add_argument("--iface", default="lo")
    e.add_argument("--timeout", type=float, default=120.0, help="overall limit in seconds")
    e.add_argument("--no-linger", action="store_true", help="close TCP right after SessionStopRes (Josev waits 5 s)")
    e.add_argument("--keylog")
    e.add_argument("--trace")
    e.add_argument("--log-level", default="INFO")

    x = sub.add_parser("exi", help="Josev's codec")
    xs = x.add_subparsers(dest="exi_command", required=True)
    d = xs.add_parser("decode", help="EXI (hex, hex file or binary file) -> the XML EXIficient made, or --json")
    d.add_argument("schema", choices=sorted(NAMESPACES))
    d.add_argument("input", nargs="?", default="-")
    d.add_argument("--json", action="store_true", help="print Josev's JSON instead")
    d.add_argument("--v2gtp", action="store_true", help="the input starts with an 8-byte V2GTP header")
    c = xs.add_parser("encode", help="Josev's JSON form of a message -> EXI hex")
    c.add_argument("schema", choices=sorted(NAMESPACES))
    c.add_argument("input", nargs="?", default="-")
    xs.add_parser("batch", help="stdin lines 'encode|decode SCHEMA IN OUT [json]', one JVM")
    b = xs.add_parser("bench", help="warm per-message timings")
    b.add_argument("--messages", required=True, help="JSON lines with name, schema, exi_hex, json")
    b.add_argument("--n", type=int, default=20)
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--only")
    b.add_argument("--json-out")
    for p in xs.choices.values():
        p.add_argument("--log-level", default="WARNING")

    pn = sub.add_parser("pnc", help="-2 Plug & Charge primitives by Josev's shared.security (one JSON line)")
    ps = pn.add_subparsers(dest="pnc_command", required=True)
    ke = ps.add_parser("keyenc", help="encrypt a P-256 contract key for a recipient certificate (DHpublickey, 48-byte blob)")
    ke.add_argument("--recipient-cert", required=True)
    ke.add_argument("--contract-key", required=True)
    kd = ps.add_parser("keydec", help="decrypt a delivered contract key; prints its public key (DER hex)")
    kd.add_argument("--dh", required=True)
    kd.add_argument("--enc", required=True)
    kd.add_argument("--key", required=True, help="the recipient's static private key (PEM)")
    sa = ps.add_parser("sign-auth", help="a signed -2 AuthorizationReq V2G_Message (EXI hex) as Josev's EVCC makes it")
    sa.add_argument("--key", required=True)
    sa.add_argument("--id", default="id1")
    sa.add_argument("--challenge", required=True)
    sa.add_argument("--session", default="0000000000000001")
    va = ps.add_parser("verify-auth", help="verify a signed -2 AuthorizationReq V2G_Message as Josev's SECC does")
    va.add_argument("--message", required=True)
    va.add_argument("--cert", required=True)
    for p in ps.choices.values():
        p.add_argument("--password", default=None)
        p.add_argument("--log-level", default="WARNING")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "secc":
        return run_secc(args)
    if args.command == "evcc":
        return run_evcc(args)
    if args.command == "pnc":
        return run_pnc(args)
    return run_exi(args)


if __name__ == "__main__":
    sys.exit(main())
