"""Sub-commands ``secc``, ``evcc`` and ``demo``.

    iso15118 secc --profile wall-connector [--host ::1 --port N] [--tls|--no-tls] [--pki DIR] [--pnc]
    iso15118 evcc --profile cybertruck-awd --service AC_BPT [--host H --port N | --discover] [--tls] [--loops N]
                  [--pnc | --install-contract]
    iso15118 secc|evcc ... --protocol din|iso2|iso20 (repeatable or a comma list; default all, -20 first)
    iso15118 demo [--speed 60] [--outage-at 6] [--duration 16] [--no-live] [--pnc [--install-contract]]

``--pnc`` uses the MO/contract/CPS parts of the lab PKI: the SECC offers PnC (+EIM) over TLS
with CertificateInstallation and asks for one signed meter reading; the EV authorizes with
the lab contract, or with ``--install-contract`` installs one first (OEM provisioning only).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from pathlib import Path
from typing import Any

DEFAULT_PKI = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "iso15118" / "lab-pki"


def _pki(path: str | None, josev: bool) -> Path:
    d = Path(path) if path else DEFAULT_PKI
    if not (d / "certs" / "cpoCertChain.pem").exists():
        if josev:
            raise SystemExit(f"no Josev PKI at {d}")
        from iso15118.security.pki import create_pki

        create_pki(d, "secp521r1")
        print(f"created a secp521r1 lab PKI in {d}", file=sys.stderr)
    return d


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _raise_fd_limit(want: int) -> None:
    """A server needs a descriptor per connection (asyncio accepts a burst at once before the
    limits sort it out): lift the soft limit towards the hard one (best effort)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want + 1024
        if hard != resource.RLIM_INFINITY:
            target = min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


def _revocation(args: argparse.Namespace) -> dict[str, Any]:
    """``--crl`` / ``--ocsp`` files (PEM or DER) as keyword arguments of the TLS contexts."""
    from cryptography import x509
    from cryptography.x509 import ocsp

    crls = []
    for name in args.crl or ():
        data = Path(name).read_bytes()
        crls.append(x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data))
    responses = [ocsp.load_der_ocsp_response(Path(name).read_bytes()) for name in args.ocsp or ()]
    return {"crls": crls, "ocsp_responses": responses}


def _tls_profile_note(args: argparse.Namespace) -> None:
    if args.tls and args.josev_pki and _iso2_tls(args):
        print("TLS profile: iso15118-2 (TLS 1.2, ECDHE-ECDSA-AES128-SHA256; Josev's P-256 PKI)", file=sys.stderr)
    elif args.tls and args.josev_pki:
        print("TLS profile: josev-compat (compatibility: P-256 PKI, TLS 1.2-1.3; --josev-pki)", file=sys.stderr)


def _protocols(args: argparse.Namespace) -> Any:
    """``--protocol din --protocol iso2,iso20`` -> AppProtocols in that order (None: all)."""
    from iso15118.session.negotiation import parse_protocols

    if not args.protocol:
        if _iso2_tls(args):  # a -2 lab PKI over TLS: TLS 1.2, where -20 (TLS 1.3 only) cannot run
            from iso15118.facts.namespaces import AppProtocol

            return (AppProtocol.ISO2,)
        return None
    try:
        return parse_protocols(args.protocol)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def _iso2_tls(args: argparse.Namespace) -> bool:
    """-2 TLS 1.2 contexts (``tls.ISO2``) and -2 PnC: TLS with an ISO2 lab PKI (``pki create --profile
    iso2``; then -2 only: -20 needs TLS 1.3), or with Josev's P-256 PKI (``--josev-pki``) when only -2
    is served / offered (``--protocol iso2``)."""
    from iso15118.facts.namespaces import AppProtocol
    from iso15118.session.negotiation import parse_protocols
    from iso15118.session.tlsconf import is_iso2_pki

    if not getattr(args, "tls", False):
        return False
    pki = getattr(args, "pki", None)
    if getattr(args, "josev_pki", False):
        try:
            wanted = parse_protocols(args.protocol) if args.protocol else None
        except ValueError:
            return False
        return wanted is not None and set(wanted) == {AppProtocol.ISO2}
    return bool(pki and is_iso2_pki(pki))


def _iso2_pnc(args: argparse.Namespace, configs: dict[Any, Any], role: str, **kw: Any) -> None:
    """``--pnc`` / ``--install-contract`` for -2 (session/iso2/pnc.py) from a P-256 PKI."""
    from iso15118.facts.namespaces import AppProtocol
    from iso15118.session.iso2.lab import secc_pnc2_from_pki

    if role == "secc":
        configs[AppProtocol.ISO2].pnc = secc_pnc2_from_pki(_pki(args.pki, args.josev_pki), **kw)


def _protocol_configs(args: argparse.Namespace, role: str) -> dict[Any, Any]:
    """Per-protocol core configurations built from the command line (-20's is ``config``)."""
    from iso15118.facts.namespaces import AppProtocol

    _check_protocols(args)
    configs: dict[Any, Any] = {}
    configs.update(_iso2_config(args, role))
    if role != "evcc":
        return configs
    from iso15118.session.din import DinEvccConfig

    configs[AppProtocol.DIN] = DinEvccConfig(max_loops=args.loops, timeout_scale=args.timeout_scale,
                                             pre_charge_give_up=args.pre_charge_give_up)
    return configs


def _iso2_config(args: argparse.Namespace, role: str) -> dict[Any, Any]:
    """-2: the EV's family, loops and relaxed timeouts from the -20 options; for the SECC one
    configuration (one store of paused -2 sessions) shared by all its connections, with Plug & Charge
    (``--pnc``) when its PKI is a -2 one."""
    from iso15118.facts.namespaces import AppProtocol
    from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig
    from iso15118.session.services import EnergyService

    if role == "secc":
        if getattr(args, "pnc", False) and _iso2_tls(args):
            from iso15118.session.iso2.lab import secc_pnc2_from_pki

            return {AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(_pki(args.pki, args.josev_pki)))}
        return {AppProtocol.ISO2: Iso2SeccConfig()}
    service = getattr(args, "service", None)
    return {AppProtocol.ISO2: Iso2EvccConfig(
        family=EnergyService[service].family if service else None,
        service=EnergyService[service] if service else None,
        max_loops=getattr(args, "loops", None),
        timeout_scale=getattr(args, "timeout_scale", 1.0) or 1.0,
        pre_charge_give_up=getattr(args, "pre_charge_give_up", None),
    )}


def _check_protocols(args: argparse.Namespace) -> None:
    """Refuse what cannot run, before any PKI or socket is touched."""
    from iso15118.facts.namespaces import AppProtocol

    if _protocols(args) == (AppProtocol.DIN,) and args.tls:
        raise SystemExit("DIN SPEC 70121 runs over plain TCP only ([V2G-DC-618]): add --no-tls")


def _protocol_arg(p: argparse.ArgumentParser, role: str) -> None:
    what = "serve" if role == "secc" else "offer, most preferred first"
    p.add_argument("--protocol", action="append", metavar="din|iso2|iso20",
                   help=f"protocols to {what} in SupportedAppProtocol (repeatable or a comma list; default all, -20 first)")


def _secc(args: argparse.Namespace) -> int:
    from iso15118.session import SeccConfig
    from iso15118.session.runner import ServerLimits, SessionResult, run_secc
    from iso15118.session.tlsconf import secc_context
    from iso15118.sim import make_evse

    _check_protocols(args)
    _logging(args.verbose)
    _tls_profile_note(args)
    revocation = _revocation(args)
    tls = (
        secc_context(_pki(args.pki, args.josev_pki), josev=args.josev_pki, iso2=_iso2_tls(args), keylog=args.keylog,
                     **revocation)
        if args.tls
        else None
    )
    count = {"n": 0}

    def sink(side: str, now: float, ev: Any) -> None:
        if args.verbose and hasattr(ev, "name") and type(ev).__name__ in ("MessageReceived",):
            print(f"{now:.3f} rx {ev.name}", flush=True)

    def on_result(r: SessionResult) -> None:
        # each session's own authorization, from its own core (sessions may overlap)
        count["n"] += 1
        print(
            f"SESSION {count['n']} {'PASS' if r.ok else 'FAIL'} auth={r.authorization or 'none'} "
            f"protocol={r.protocol.value if r.protocol else 'none'} reason=\"{r.reason}\"",
            flush=True,
        )
        if args.once:
            raise_later.append(r)

    raise_later: list[Any] = []
    _raise_fd_limit(args.max_connections + 256)
    limits = ServerLimits(
        max_connections=args.max_connections,
        max_per_address=args.max_per_address,
        max_handshakes=args.max_handshakes,
        max_handshakes_per_address=args.max_handshakes_per_address,
        handshake_timeout=args.handshake_timeout,
    )

    def ready(server: Any) -> None:
        print(f"READY {'tls' if tls else 'none'} [{args.host}]:{server.port}", flush=True)

    config = SeccConfig(authorization_services=("EIM",))
    configs = _protocol_configs(args, "secc")
    if args.pnc and _iso2_tls(args):  # -2 Plug & Charge (the -20 core stays EIM with a P-256 PKI)
        _iso2_pnc(args, configs, "secc", crls=tuple(revocation["crls"]), ocsp_responses=tuple(revocation["ocsp_responses"]))
    elif args.pnc:
        if args.josev_pki:
            raise SystemExit("--pnc with Josev's P-256 PKI is -2 Plug & Charge: add --protocol iso2 (-20 PnC needs a secp521r1/Ed448 lab PKI)")
        if not args.tls:
            print("warning: PnC is offered over TLS only; this SECC will offer EIM", file=sys.stderr)
        from iso15118.session.pnc import secc_pnc_from_pki

        config = SeccConfig(
            authorization_services=("PnC", "EIM"),
            pnc=secc_pnc_from_pki(
                _pki(args.pki, False),
                metering_confirmation_after_loops=args.metering_confirmation,
                crls=revocation["crls"],
                ocsp_responses=revocation["ocsp_responses"],
            ),
        )
    if getattr(args, "iface", None):  # the whole stack on an interface (iso15118.link)
        from iso15118.link.stack import secc_cli

        return secc_cli(args, tls, config, _protocols(args), configs)

    async def main() -> int:
        task = asyncio.create_task(
            run_secc(
                lambda: make_evse(args.profile, speed=args.speed),
                args.host,
                args.port,
                tls,
                config=config,
                sdp=args.sdp,
                sink=sink,
                ready=ready,
                limits=limits,
                on_result=on_result,
                protocols=_protocols(args),
                configs=configs,
            )
        )
        while not task.done():
            await asyncio.sleep(0.2)
            if raise_later:
                await asyncio.sleep(0.5)
                task.cancel()
                return 0 if raise_later[0].ok else 1
        await task
        return 0

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        return 0


def _evcc(args: argparse.Namespace) -> int:
    from iso15118.session import ControlMode, EnergyService, EvccConfig
    from iso15118.session.rules import AuthorizationMode
    from iso15118.session.runner import run_evcc
    from iso15118.session.tlsconf import evcc_context
    from iso15118.sim import make_ev

    _check_protocols(args)
    _logging(args.verbose)
    _tls_profile_note(args)
    tls = (
        evcc_context(_pki(args.pki, args.josev_pki), josev=args.josev_pki, iso2=_iso2_tls(args), keylog=args.keylog,
                     **_revocation(args))
        if args.tls
        else None
    )
    creds: dict[str, Any] = {}
    if (args.pnc or args.install_contract) and _iso2_tls(args):  # -2 PnC from a P-256 PKI (ours or Josev's)
        from iso15118.session.iso2.lab import credentials_from_pki

        contract, provisioning = credentials_from_pki(_pki(args.pki, args.josev_pki))
        creds = {"provisioning": provisioning} if args.install_contract else {"contract": contract,
                                                                              "provisioning": provisioning}
    elif args.pnc or args.install_contract:
        if args.josev_pki:
            raise SystemExit("--pnc with Josev's P-256 PKI is -2 Plug & Charge: add --protocol iso2 (-20 PnC needs a secp521r1/Ed448 lab PKI)")
        from iso15118.session.pnc import contract_from_pki, provisioning_from_pki

        pki = _pki(args.pki, False)
        if args.install_contract:
            creds["provisioning"] = provisioning_from_pki(pki)
        else:
            creds["contract"] = contract_from_pki(pki)
    ev = make_ev(args.profile, soc=args.soc, speed=args.speed, **creds)
    if args.service and EnergyService[args.service] not in ev.preferred_services():
        offered = ", ".join(s.name for s in ev.preferred_services())
        raise SystemExit(f"{args.profile} does not offer {args.service} (it offers {offered}): refusing to start")
    config = EvccConfig(
        authorization=AuthorizationMode.PNC if creds else None,
        service=EnergyService[args.service] if args.service else None,
        control_mode=ControlMode[args.control.upper()],
        max_loops=args.loops,
        timeout_scale=args.timeout_scale,
        pre_charge_give_up=args.pre_charge_give_up,
    )

    if getattr(args, "iface", None):  # the whole stack on an interface (iso15118.link)
        from iso15118.link.stack import evcc_cli

        return evcc_cli(args, ev, config, tls, _protocols(args), _protocol_configs(args, "evcc"))

    def sink(side: str, now: float, event: Any) -> None:
        if args.verbose and type(event).__name__ in ("SendMessage", "ProtocolError", "NotificationReceived"):
            print(f"{now:.3f} {type(event).__name__} {getattr(event, 'name', '')} {getattr(event, 'detail', '')}", flush=True)

    try:
        r = asyncio.run(
            run_evcc(
                ev,
                None if args.discover else args.host,
                None if args.discover else args.port,
                tls,
                config=config,
                discover=args.discover,
                sdp_address=args.host,
                sink=sink,
                protocols=_protocols(args),
                configs=_protocol_configs(args, "evcc"),
            )
        )
    except ssl.SSLError as exc:  # the handshake failed: say why (the alert we sent or got)
        from iso15118.transport.tlsstream import describe_ssl_error

        print(f"FAIL profile={args.profile} tls=handshake-failed reason=\"TLS: {describe_ssl_error(exc)}\"", flush=True)
        return 1
    print(
        f"{'PASS' if r.ok else 'FAIL'} profile={args.profile} service={args.service or 'auto'} "
        f"protocol={r.protocol.value if r.protocol else 'none'} tls={r.tls_version or 'none'} "
        f"auth={r.authorization or 'none'}{f' emaid={r.emaid}' if r.emaid else ''} "
        f"messages={r.rx + r.tx} (tx={r.tx} rx={r.rx}) loops={r.loops} duration={r.duration:.1f}s "
        f"soc={ev.battery.soc:.1f} reason=\"{r.reason}\"",
        flush=True,
    )
    return 0 if r.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from iso15118.sim.demo import run_demo

    live = None if args.live is None else args.live
    res = asyncio.run(
        run_demo(
            speed=args.speed,
            outage_at=args.outage_at,
            duration=args.duration,
            home_load_w=args.home_load * 1000,
            console=Console(),
            live=live,
            pnc=args.pnc or args.install_contract,
            install_contract=args.install_contract,
        )
    )
    return 0 if res.ok else 1


def _link_arguments(p: Any) -> None:
    from iso15118.link.stack import add_arguments

    add_arguments(p)


def _revocation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crl", action="append", metavar="FILE", help="CRL (PEM/DER) checked for the peer's TLS chain (repeatable)")
    p.add_argument("--ocsp", action="append", metavar="FILE", help="OCSP response (DER) checked for the peer's chain (repeatable)")


def register(subparsers: Any) -> None:
    from iso15118.sim import EV_PROFILES, EVSE_PROFILES

    p = subparsers.add_parser("secc", help="run an SECC simulator (TCP or TLS 1.3 server)")
    p.add_argument("--profile", choices=EVSE_PROFILES, default="wall-connector")
    p.add_argument("--host", default="::1")
    p.add_argument("--port", type=int, default=15119)
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True, help="TLS 1.3 with mutual auth (default)")
    p.add_argument("--pki", help=f"lab PKI directory (created if missing; default {DEFAULT_PKI})")
    p.add_argument("--josev-pki", action="store_true",
                   help="--pki is Josev's P-256 test PKI: the josev-compat TLS profile (P-256, TLS 1.2-1.3; logged)")
    p.add_argument("--keylog", help="write TLS secrets (NSS key log) to this file")
    p.add_argument("--sdp", action="store_true", help="also answer SDP on UDP 15118")
    p.add_argument("--once", action="store_true", help="exit after the first session (status 0 if it passed)")
    p.add_argument("--speed", type=float, default=1.0, help="physics runs this many times faster than the protocol clock")
    p.add_argument("--pnc", action="store_true", help="offer Plug & Charge (+EIM) with the lab PKI's MO roots and CPS (TLS only)")
    p.add_argument("--metering-confirmation", type=int, default=4, metavar="N",
                   help="with --pnc: ask for one signed meter reading after N charge loops (default 4)")
    _revocation_args(p)
    from iso15118.transport.tcp import ServerLimits

    d = ServerLimits()
    p.add_argument("--max-connections", type=int, default=d.max_connections, help="open connections in total")
    p.add_argument("--max-per-address", type=int, default=d.max_per_address, help="open connections per peer address")
    p.add_argument("--max-handshakes", type=int, default=d.max_handshakes, help="TLS handshakes in progress")
    p.add_argument("--max-handshakes-per-address", type=int, default=d.max_handshakes_per_address,
                   help="TLS handshakes in progress per peer address")
    p.add_argument("--handshake-timeout", type=float, default=d.handshake_timeout, help="seconds for the TLS handshake")
    p.add_argument("-v", "--verbose", action="store_true")
    _protocol_arg(p, "secc")
    _link_arguments(p)
    p.set_defaults(func=_secc)

    p = subparsers.add_parser("evcc", help="run one EVCC session with an EV simulator")
    p.add_argument("--profile", choices=EV_PROFILES, default="cybertruck-awd")
    p.add_argument("--service", choices=("AC", "DC", "AC_BPT", "DC_BPT"))
    p.add_argument("--control", choices=("scheduled", "dynamic"), default="dynamic")
    p.add_argument("--host", default="::1")
    p.add_argument("--port", type=int, default=15119)
    p.add_argument("--discover", action="store_true", help="find the SECC with SDP (unicast to --host:15118)")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--pki", help=f"lab PKI directory (default {DEFAULT_PKI})")
    p.add_argument("--josev-pki", action="store_true",
                   help="--pki is Josev's P-256 test PKI: the josev-compat TLS profile (P-256, TLS 1.2-1.3; logged)")
    p.add_argument("--keylog")
    _revocation_args(p)
    p.add_argument("--loops", type=int, default=10, help="charge loops before stopping (default 10)")
    p.add_argument("--soc", type=float, default=50.0)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--timeout-scale", type=float, default=1.0, help="relax message timeouts for slow peers")
    p.add_argument("--pre-charge-give-up", type=int, help="accept pre-charge after N requests (simulated peers)")
    pnc = p.add_mutually_exclusive_group()
    pnc.add_argument("--pnc", action="store_true", help="authorize with Plug & Charge using the lab PKI's contract")
    pnc.add_argument("--install-contract", action="store_true",
                     help="Plug & Charge with only the OEM provisioning certificate: CertificateInstallation first")
    p.add_argument("-v", "--verbose", action="store_true")
    _protocol_arg(p, "evcc")
    _link_arguments(p)
    p.set_defaults(func=_evcc)

    p = subparsers.add_parser("demo", help="V2H grid-outage demo: both sides over loopback TLS 1.3")
    p.add_argument("--speed", type=float, default=60.0, help="physics speed-up (default 60: a minute per second)")
    p.add_argument("--outage-at", type=float, default=6.0, help="seconds until the grid fails")
    p.add_argument("--duration", type=float, default=16.0, help="seconds until the user ends the session")
    p.add_argument("--home-load", type=float, default=7.2, help="home load in kW during the outage")
    p.add_argument("--live", action=argparse.BooleanOptionalAction, default=None, help="rich live view (default: on a terminal)")
    p.add_argument("--pnc", action="store_true", help="authorize with Plug & Charge (contract from the lab PKI)")
    p.add_argument("--install-contract", action="store_true", help="PnC: the truck installs its contract first")
    p.set_defaults(func=_demo)
