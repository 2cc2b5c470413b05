"""``iso15118 conformance list|run|replay``: the campaign runner on the command line.

    iso15118 conformance list --tag derate
    iso15118 conformance run --sut tcp://[::1]:15119 --id 'TC_SECC_SAP_*' --html report.html
    iso15118 conformance run --sut local:wall-connector --sut local:dc-bidi --jobs 4 --junit out.xml
    iso15118 conformance run --evcc local:cybertruck-awd --id 'TC_EVCC_*'
    iso15118 conformance replay --sut tcp://[::1]:15119 session.jsonl

Before a campaign the runner reaches every SUT (connect, TLS where asked, SupportedAppProtocol
and SessionSetup) and reads what it supports from --pics FILE (a PICS-style TOML capability
statement), --services, or a probe; the capabilities are printed and saved with the report.

Exit status:
  0  every selected case passed or is not applicable (a feature the SUT declares unsupported)
  1  at least one case failed
  2  an error, an unreachable SUT, an undecided (inconclusive) case, or bad usage
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

EXIT_HELP = """exit status:
  0  every selected case passed or is not applicable (a feature the SUT declares unsupported)
  1  at least one case failed
  2  an error, an unreachable SUT, an undecided (inconclusive) case, or bad usage
"""


REPLAY_HELP = """Replay recorded sessions against an SECC.

Real-vehicle captures (pcap / pcapng of DIN SPEC 70121 or ISO 15118-2 sessions, e.g. fixtures/vehicles/):
every V2G session in them is sent again as that vehicle, SessionID and time stamps rewritten, Ongoing
loops at the SUT's pace, ended with SessionStop where the recording was cut (conformance/vehicle_replay.py).
A FAILED code, a close or a missing answer fails the case; answers that differ from the recorded
charger's are a per-message diff (report), not a failure.  For a SUT that tears sessions down slowly
(Josev) give --gap 5.5.

-20 recordings (the harness's JSONL logs, Josev traces, -20 pcaps): every answer is compared with the
recorded one within --tolerance; a difference fails (conformance/replay.py).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("conformance", help="ISO 15118-21 style conformance tests against a charger or vehicle",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="conformance_command", metavar="ACTION")

    ls = sub.add_parser("list", help="list the test cases")
    _selection(ls)
    ls.add_argument("--json", action="store_true", help="full case descriptions as JSON")
    ls.set_defaults(func=cmd_list)

    run = sub.add_parser("run", help="run test cases against one or more SUTs", epilog=EXIT_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _selection(run)
    _sut_args(run)
    run.add_argument("--evcc", action="append", default=[], metavar="CMD|local:PROFILE",
                     help="an EVCC under test: a command with {host} {port}, or local:cybertruck-awd")
    run.add_argument("--evcc-tls", metavar="CMD",
                     help="how to start the EVCC under test over TLS: a command with {host} {port} {trust} "
                          "({trust}: a directory with v2gRootCACert.pem, the V2G root the vehicle must trust); "
                          "needs --evcc-pki")
    run.add_argument("--evcc-pki", metavar="DIR", help="PKI (iso15118 security pki layout, with the root key) whose "
                     "root the EVCC under test trusts: the tester SECC issues its good and broken chains from it")
    run.add_argument("--junit", metavar="FILE")
    run.add_argument("--json", metavar="FILE")
    run.add_argument("--html", metavar="FILE")
    run.add_argument("--logs", metavar="DIR", help="write each case's message log as JSONL (replayable) and pcap")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="replay a recorded session (JSONL, Josev trace or pcap) and diff the answers",
                        description=REPLAY_HELP, epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("recording", nargs="+")
    _sut_args(rp)
    rp.add_argument("--tolerance", type=float, default=0.1, help="relative tolerance on measured values (default 0.1)")
    rp.add_argument("--pace", type=float, default=0.0, metavar="F",
                    help="real-vehicle captures: pause between requests as recorded times F (default 0: as fast as "
                         "the SUT answers)")
    rp.add_argument("--strict-precharge", action="store_true",
                    help="real-vehicle captures: a SUT that never pre-charges to the vehicle's target fails "
                         "(default: reported as a difference)")
    rp.add_argument("--sdp", metavar="IFACE",
                    help="real-vehicle captures: find the SECC by SDP on this interface (plain TCP, as the recordings) "
                         "and replay against it")
    rp.add_argument("--sdp-to", metavar="[ADDR]:PORT",
                    help="with --sdp: send the SDP request to this unicast address instead of the multicast group")
    rp.add_argument("--junit", metavar="FILE")
    rp.add_argument("--json", metavar="FILE")
    rp.add_argument("--html", metavar="FILE")
    rp.set_defaults(func=cmd_replay)
    mu = sub.add_parser("mutation", help="prove the tester: run the catalogue against the defective chargers and vehicles",
                        description="Runs every defect of conformance/faults.py against the cases that can catch it and "
                                    "writes the defect x case matrix. Exit 0 when every defect is caught and every case "
                                    "is killed (mutation score 100 %), else 1.")
    mu.add_argument("--role", choices=("SECC", "EVCC"), help="only chargers or only vehicles")
    mu.add_argument("--defect", action="append", default=[], metavar="NAME", help="only these defects (repeatable)")
    mu.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    mu.add_argument("--json", metavar="FILE")
    mu.add_argument("--csv", metavar="FILE")
    mu.add_argument("--html", metavar="FILE")
    mu.add_argument("--list", action="store_true", help="list the defects")
    mu.set_defaults(func=cmd_mutation)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", action="append", default=[], metavar="GLOB", help="case ID glob (repeatable)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="required tag (repeatable)")
    p.add_argument("--role", choices=("SECC", "EVCC"), help="only cases for this SUT role")


def _sut_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sut", action="append", default=[], metavar="URL",
                   help="tcp://[::1]:PORT, tls://..., or local:wall-connector / local:dc-bidi (repeatable: run in parallel)")
    p.add_argument("--tls", action="store_true", help="use TLS for tcp:// SUTs")
    p.add_argument("--pki", metavar="DIR", help="PKI directory (iso15118 security pki layout, or Josev's pki/iso15118_2)")
    p.add_argument("--services", metavar="LIST", help="declare the SUT's services (e.g. AC_BPT,AC) instead of probing")
    p.add_argument("--pics", metavar="FILE", help="capability statement (PICS-style TOML) instead of probing")
    p.add_argument("--probe", metavar="URL", help="power probe: GET URL?evccid=ID -> {power_w, contactors_closed}")
    p.add_argument("--control", metavar="URL", help="lab control: POST URL {evccid, event}")
    p.add_argument("--jobs", type=int, default=1, help="cases run concurrently per SUT (default 1)")
    p.add_argument("--gap", type=float, default=0.0, metavar="S",
                   help="pause before each connection (peers that tear down slowly, e.g. Josev: 5.5)")


def cmd_list(args: argparse.Namespace) -> int:
    from conformance.cases import select

    cases = select(args.id, args.tag, args.role)
    if args.json:
        print(json.dumps([c.to_json() for c in cases], indent=1))
        return 0
    if not sys.stdout.isatty():
        for c in cases:
            print(f"{c.id}\t{c.title}\t{c.requirement}\t{' '.join(c.tags)}")
        print(f"{len(cases)} cases")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(cases)} conformance test cases")
    for col in ("ID", "title", "requirement", "tags"):
        t.add_column(col, overflow="fold")
    for c in cases:
        t.add_row(c.id, c.title, c.requirement, " ".join(c.tags))
    Console().print(t)
    return 0


async def _make_suts(args: argparse.Namespace, stack: list[Any]) -> list[Any]:
    from conformance.sut import HttpControl, HttpProbe, SutEndpoint

    suts = []
    for url in args.sut:
        if url.startswith("local:"):
            from conformance.local import start_local_secc

            profile = url.split(":", 1)[1]
            tls_ctx = None
            pki = Path(args.pki) if args.pki else None
            if args.tls:
                from iso15118.security.pki import create_pki, load_pki
                from iso15118.security.tls import secc_context_from_pki

                if pki is None:
                    import tempfile

                    pki = create_pki(tempfile.mkdtemp(prefix="conformance-pki-")).root
                tls_ctx = secc_context_from_pki(load_pki(pki).paths)
            loc = await start_local_secc(profile, tls=tls_ctx,
                                         evse_kwargs={"home_load_w": 11520.0} if profile == "wall-connector" else None)
            stack.append(loc)
            sut = loc.endpoint(pki_dir=pki, jobs=max(1, args.jobs))
        else:
            sut = SutEndpoint.parse(url, tls=args.tls, pki=args.pki, jobs=max(1, args.jobs))
            if args.probe:
                sut.probe = HttpProbe(args.probe)
            if args.control:
                sut.control = HttpControl(args.control)
        if args.gap > 0:
            gap = args.gap

            async def pause(gap: float = gap) -> None:
                await asyncio.sleep(gap)

            sut.before_case = pause
        if getattr(args, "pics", None):
            from conformance.pics import load_pics

            sut.info = load_pics(args.pics)
        if args.services:
            from iso15118.session.services import EnergyService

            sut.info.services = {EnergyService[s.strip()] for s in args.services.split(",") if s.strip()}
            sut.info.source = sut.info.source or "--services"
        suts.append(sut)
    for spec in getattr(args, "evcc", []):
        from conformance.tester_secc import command_evcc_launcher, local_evcc_launcher

        if spec.startswith("local:"):
            from conformance.tester_secc import local_evcc_tls_launcher

            launcher = local_evcc_launcher(spec.split(":", 1)[1])
            tls_launcher = local_evcc_tls_launcher(spec.split(":", 1)[1])
        else:
            launcher = command_evcc_launcher(spec)
            tls_launcher = command_evcc_launcher(args.evcc_tls) if getattr(args, "evcc_tls", None) else None
        s = SutEndpoint.evcc(launcher, f"evcc:{spec}")
        s.evcc_tls_launcher = tls_launcher
        if getattr(args, "evcc_pki", None):
            s.evcc_pki = Path(args.evcc_pki)
        if getattr(args, "pics", None):
            from conformance.pics import load_pics

            s.info = load_pics(args.pics)
        s.jobs = max(1, args.jobs) if spec.startswith("local:") else 1
        suts.append(s)
    return suts


def _write_outputs(camp: Any, args: argparse.Namespace) -> None:
    from conformance.report import write_html, write_json, write_junit

    for target in (getattr(args, "json", None), getattr(args, "html", None)):
        if target:  # the capability statements go with the report
            from conformance.pics import to_toml

            Path(str(target) + ".pics.toml").write_text(
                "".join(f"# SUT {s.name}\n{to_toml(s.info)}\n" for s in camp.suts))
            break
    if getattr(args, "junit", None):
        write_junit(camp, args.junit)
    if getattr(args, "json", None):
        write_json(camp, args.json)
    if getattr(args, "html", None):
        write_html(camp, args.html)
    if getattr(args, "logs", None):
        from conformance.evidence import dump_jsonl
        from conformance.replay import write_pcap

        d = Path(args.logs)
        d.mkdir(parents=True, exist_ok=True)
        for r in camp.results:
            stem = f"{r.case_id}__{r.sut.replace('/', '_').replace(':', '_')}"
            (d / f"{stem}.jsonl").write_text(dump_jsonl(r.evidence.entries))
            if any(e.exi_hex for e in r.evidence.entries):
                write_pcap(r.evidence.entries, d / f"{stem}.pcap")


def _print_summary(camp: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    from rich.markup import escape as esc

    for s in camp.suts:
        cap = s.info.to_json()
        con.print(f"[bold]{esc(s.name)}[/bold] capabilities ({esc(cap['source'])}): services {', '.join(cap['services']) or '-'}; "
                  f"control modes {', '.join(cap['control_modes']) or '-'}; authorization {', '.join(cap['authorization']) or '-'}"
                  + (f"; features {esc(str(cap['features']))}" if cap["features"] else ""))
    for line in camp.headline():
        con.print(f"[bold red]{esc(line)}[/bold red]")
    t = Table(title="conformance verdicts")
    for col in ("SUT", "pass", "fail", "inconclusive", "error"):
        t.add_column(col)
    for s in camp.suts:
        c = camp.counts(s.name)
        t.add_row(s.name, str(c["pass"]), str(c["fail"]), str(c["inconclusive"]), str(c["error"]))
    con.print(t)
    from rich.markup import escape

    for r in camp.results:
        if r.verdict.value in ("fail", "error"):
            con.print(f"[red]{r.verdict.value.upper()}[/red] {r.case_id} {escape(f'[{r.sut}]')}: {escape(r.reason)}")


def cmd_run(args: argparse.Namespace) -> int:
    from conformance.cases import select
    from conformance.runner import run_campaign

    if not args.sut and not args.evcc:
        print("conformance run: give --sut and/or --evcc", file=sys.stderr)
        return 2
    if args.pics and not Path(args.pics).exists():
        print(f"conformance run: no PICS file {args.pics}", file=sys.stderr)
        return 2

    async def main() -> Any:
        stack: list[Any] = []
        try:
            suts = await _make_suts(args, stack)
        except ValueError as exc:  # bad URL, bad PICS
            print(f"conformance run: {exc}", file=sys.stderr)
            return None
        roles = {s.role for s in suts}
        cases = [c for c in select(args.id, args.tag, args.role) if c.role in roles]
        try:
            if args.no_progress:
                return await run_campaign(suts, cases)
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.fields[last]}"), transient=False) as prog:
                tasks = {s.name: prog.add_task(s.name, total=sum(1 for c in cases if c.role == s.role), last="") for s in suts}

                def progress(sut: Any, tc: Any, r: Any) -> None:
                    colour = {"pass": "green", "fail": "red", "inconclusive": "yellow", "error": "magenta"}[r.verdict.value]
                    prog.update(tasks[sut.name], advance=1, last=f"[{colour}]{r.verdict.value}[/] {tc.id}")

                return await run_campaign(suts, [c for c in cases], progress=progress)
        finally:
            for loc in stack:
                loc.close()

    camp = asyncio.run(main())
    if camp is None:
        return 2
    _write_outputs(camp, args)
    _print_summary(camp)
    return int(camp.exit_status())


def cmd_mutation(args: argparse.Namespace) -> int:
    from conformance.faults import EVCC_DEFECTS, SECC_DEFECTS
    from conformance.mutation import run_matrix

    if args.list:
        for role, table in (("SECC", SECC_DEFECTS), ("EVCC", EVCC_DEFECTS)):
            for name, d in table.items():
                print(f"{role}\t{name}\t{d.what}")
        return 0
    unknown = [d for d in args.defect if d not in SECC_DEFECTS and d not in EVCC_DEFECTS]
    if unknown:
        print(f"conformance mutation: unknown defect(s) {unknown}", file=sys.stderr)
        return 2
    secc = [d for d in SECC_DEFECTS if not args.defect or d in args.defect] if args.role in (None, "SECC") else []
    evcc = [d for d in EVCC_DEFECTS if not args.defect or d in args.defect] if args.role in (None, "EVCC") else []
    mx = run_matrix(secc, evcc, jobs=max(1, args.jobs))
    mx.write(args.json, args.csv, args.html)
    print(json.dumps(mx.summary(), indent=1))
    partial = bool(args.defect) or args.role is not None
    ok = all(mx.caught(r) for r in mx.rows) and (partial or mx.ok())
    return 0 if ok else 1


def _vehicle_sessions(paths: list[str]) -> list[Any] | None:
    """The DIN / -2 sessions of the recordings when they are all real-vehicle captures, None when
    none is (-20 recordings); raises ValueError for a mix or a capture without a session."""
    from conformance.recording import read_sessions
    from conformance.replay import is_capture

    caps = [p for p in paths if is_capture(p)]
    sessions: list[Any] = []
    legacy = [p for p in paths if p not in caps]
    for p in caps:
        found = read_sessions(p)  # RecordingError (a ValueError): no session at all
        if all(s.schemas <= {"sap", "din", "iso2"} for s in found):
            sessions.extend(found)
        else:
            legacy.append(p)
    if sessions and legacy:
        raise ValueError("replay real-vehicle (DIN / -2) captures and -20 recordings in separate runs")
    return sessions or None


def cmd_replay(args: argparse.Namespace) -> int:
    from conformance.replay import replay_case
    from conformance.runner import run_campaign

    try:
        sessions = _vehicle_sessions(args.recording)
    except (ValueError, OSError) as exc:
        print(f"conformance replay: {exc}", file=sys.stderr)
        return 2
    if not args.sut and not (args.sdp and sessions is not None):
        print("conformance replay: give --sut (or --sdp IFACE for real-vehicle captures)", file=sys.stderr)
        return 2
    if sessions is not None:
        return _cmd_vehicle_replay(args, sessions)

    async def main() -> Any:
        stack: list[Any] = []
        suts = await _make_suts(args, stack)
        try:
            cases = [replay_case(p, args.tolerance) for p in args.recording]
            # without --services / --pics the SUT is probed for what it offers
            return await run_campaign(suts, cases, probe=not (args.services or args.pics))
        finally:
            for loc in stack:
                loc.close()

    camp = asyncio.run(main())
    _write_outputs(camp, args)
    _print_summary(camp)
    for r in camp.results:
        for c in r.checks:
            if not c.ok:
                print(f"  diff {r.case_id}: {c.requirement}: {c.detail}")
    return int(camp.exit_status())


def _cmd_vehicle_replay(args: argparse.Namespace, sessions: list[Any]) -> int:
    from conformance.vehicle_replay import replay_campaign

    async def main() -> Any:
        stack: list[Any] = []
        suts = await _make_suts(args, stack)
        if args.sdp:
            try:
                suts.append(await _sdp_sut(args.sdp, args.sdp_to))
            except (OSError, ValueError, TimeoutError) as exc:  # SdpTimeout is a TimeoutError
                print(f"conformance replay: no SECC found by SDP on {args.sdp}: {exc}", file=sys.stderr)
                for loc in stack:
                    loc.close()
                return None
        try:
            return await replay_campaign(suts, sessions, pace=args.pace, strict_precharge=args.strict_precharge)
        finally:
            for loc in stack:
                loc.close()

    camp = asyncio.run(main())
    if camp is None:
        return 2
    _write_outputs(camp, args)
    _print_summary(camp)
    for r in camp.results:
        rep = r.evidence.annex.get("replay")
        if rep:
            print(f"  {r.case_id}: {rep['protocol']}, {rep['sent']} requests, SessionStop "
                  f"{'reached' if rep['reached_stop'] else 'not reached'}"
                  + (f" (appended {', '.join(rep['appended'])})" if rep["appended"] else "")
                  + f"; {rep['differing']} of {rep['compared']} answers differ from the recorded charger")
    return int(camp.exit_status())


async def _sdp_sut(iface: str, to: str | None) -> Any:
    """The SECC that answers SDP (plain TCP) on ``iface`` (or at the unicast ``[ADDR]:PORT``)."""
    from conformance.sut import SutEndpoint
    from iso15118.transport.sdp import Security
    from iso15118.transport.sdp_asyncio import discover, endpoint_host

    kw: dict[str, Any] = {}
    if to:
        addr, _, port = to.rpartition(":")
        kw = {"address": addr.strip("[]"), "port": int(port)}
    resp = await discover(Security.NONE, interface=iface, **kw)
    host = endpoint_host(resp, iface)
    return SutEndpoint(host, resp.port, name=f"sdp:{iface} [{host}]:{resp.port}")
