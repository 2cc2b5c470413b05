"""Replay a real vehicle's DIN SPEC 70121 / ISO 15118-2 session against an SECC.

The vehicle's requests come from a capture (:mod:`conformance.recording`); each is sent again as
recorded -- the vehicle's values -- re-encoded by our codec, with what must change rewritten:

* the SessionID becomes the one the SUT assigned in its SessionSetupRes;
* time stamps (``TMeter``, ``TimeStamp``) become now, a MeteringReceiptReq carries the SUT's
  last MeterInfo, a header Signature is dropped (it signed another session);
* a SAScheduleTupleID or a selected charge ServiceID the SUT did not offer becomes the one it did,
  and a ChargingProfile entry above the SUT's PMax schedule is cut to it (what the vehicle does
  with a charger's offer).

What the SUT decides, the replay follows as the vehicle would:

* SupportedAppProtocol: the SUT picks from the vehicle's recorded list; its SchemaID names the
  protocol the rest of the session speaks.  If it picks another protocol than the recorded
  charger did, that is a difference, and the replay reconnects offering the recorded protocol
  only (the recorded session cannot continue in another protocol's messages);
* EVSEProcessing=Ongoing loops (ContractAuthentication / Authorization, ChargeParameterDiscovery,
  CableCheck): the recorded requests are sent in order while the SUT says Ongoing; when the SUT
  finishes early the rest of the recorded loop is skipped, when it needs longer the last recorded
  request is repeated (every 50 ms) until Finished, bounded by the vehicle's loop timer
  (:func:`iso15118.facts.timing.loop_limit`);
* PreCharge: the recorded requests, then the last one again until the SUT's present voltage is as
  close to the target as the recorded charger's was (at least 20 V / 5 %), bounded by
  V2G_EVCC_PreCharge_Timeout; a SUT that never gets there is reported (a real vehicle would stop)
  and the replay goes on as recorded -- a refusal only with ``strict_precharge`` (a simulated
  charger such as Josev's reports a constant 1 V);
* CurrentDemand / ChargingStatus / WeldingDetection: the recorded sequence, as long as it was;
  a StopCharging notification or a shutdown status of the SUT ends the loop (as a vehicle must);
* a recording that stops before SessionStop (the capture was cut, the charger failed) is ended
  cleanly: PowerDelivery(stop) if the power was on, then SessionStop (after a SessionSetup when
  the recording never got that far); the verdict says what was appended.  DIN and -2 allow
  SessionStopReq from SessionSetupRes on except inside the charge loop ([V2G-DC-439], [V2G-543]
  and the tables after them), which the replay leaves with PowerDelivery(stop) first; so a refusal
  of an appended request counts like any other (Josev 0.31.2 refuses an early SessionStop).

Verdict: **the SUT refused** -- a FAILED response code, an answer of the wrong message, an
undecodable answer, a close, no answer within V2G_EVCC_Msg_Timeout + 3 s, a loop it never
finishes, a pre-charge it never completes -- is a failure of the SUT (every FAILED code counts,
also where the recorded charger refused the same request: the verdict then says so).  **The SUT
answered differently from the recorded charger** -- other limits, present values, processing
steps, a later answer -- is evidence: a per-message diff in the report, never a failure.  A SUT
that cannot be reached is an error (the runner's reach rules, with a DIN / -2 reach check).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from conformance.catalogue import CaseContext, TestCase
from conformance.evidence import Evidence
from conformance.recording import REPLAYABLE, RecordedExchange, RecordedSession, RecordingError, body_message, read_sessions
from conformance.replay_report import FieldDiff, MessageDiff, ReplayReport, diff_messages
from conformance.runner import UNREACHABLE, Campaign, run_campaign
from conformance.sut import SutEndpoint
from iso15118.capture.decode import element_to_json, flatten
from iso15118.exi import ExiError
from iso15118.exi.codec import get_codec
from iso15118.exi.tree import Element
from iso15118.facts.namespaces import protocol_for_namespace
from iso15118.facts.timing import TIMERS, loop_limit, message_timing
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection
from iso15118.transport.v2gtp import V2GTPError

__all__ = [
    "GRACE",
    "ReplayReport",
    "SutUnreachable",
    "VehicleReplay",
    "copy_tree",
    "diff_messages",
    "replay_campaign",
    "replay_reach",
    "vehicle_replay_case",
    "vehicle_replay_cases",
]

GRACE = 3.0
"""Seconds the replay waits beyond V2G_EVCC_Msg_Timeout before it calls an answer missing (times
the SUT's ``time_scale``); a later answer than the timeout itself is reported, not failed."""
ONGOING = ("ContractAuthentication", "Authorization", "ChargeParameterDiscovery", "CableCheck")
"""Requests the SUT paces with EVSEProcessing=Ongoing."""
LOOPS = ("CurrentDemand", "ChargingStatus")
EXTRA_INTERVAL = 0.05
"""Pause between repeats the recording does not hold (Ongoing / pre-charge beyond the recording)."""
MAX_EXTRA = 2000
STOP_STATUS = ("EVSE_Shutdown", "EVSE_EmergencyShutdown")
PAYLOAD_TYPE = 0x8001
"""SAP, DIN and -2 all travel as 0x8001."""

_NS = {"din": "urn:din:70121:2012:", "iso2": "urn:iso:15118:2:2013:"}


class SutUnreachable(RuntimeError):
    """Nothing answers at the SUT's address (the case is an error, not a failure)."""


class _Refused(Exception):
    """The SUT refused the vehicle: the replay stops here (the reason is the message)."""


def copy_tree(el: Element) -> Element:
    """A copy of an element tree to rewrite (values are immutable; a list value is copied);
    ``copy.deepcopy`` costs ten times as much, and a replay copies every request."""
    value = list(el.value) if isinstance(el.value, list) else el.value
    kids: list[Element | str] = [copy_tree(c) if isinstance(c, Element) else c for c in el.children]
    return Element(el.ns, el.name, dict(el.attrs), kids, value)


def _watts(el: Element | None) -> float | None:
    """A power: a -2 PhysicalValue (Multiplier, Unit, Value) or DIN's plain PMax number."""
    if el is None:
        return None
    if isinstance(el.value, int):
        return float(el.value)
    value, mult = el.find("Value"), el.find("Multiplier")
    if value is None or not isinstance(value.value, int):
        return None
    return float(value.value) * 10.0 ** (mult.value if mult is not None and isinstance(mult.value, int) else 0)


def _code(msg: Element | None) -> str | None:
    rc = msg.find("ResponseCode") if msg is not None else None
    return str(rc.value) if rc is not None and rc.value is not None else None


def _refusing(code: str | None) -> bool:
    return code is not None and code.upper().startswith("FAILED")


def _processing(msg: Element | None) -> str | None:
    el = msg.find("EVSEProcessing") if msg is not None else None
    return str(el.value) if el is not None and el.value is not None else None


def _physical(msg: Element | None, name: str) -> float | None:
    if msg is None:
        return None
    for el in msg.iter():
        if el.name == name:
            v = flatten(Element("", "_", children=[el])).get(name)
            return float(v) if isinstance(v, (int, float)) else None
    return None


class VehicleReplay:
    """One recorded session against one SUT (one TCP connection, two when the SUT picks another
    protocol than the recorded charger did)."""

    def __init__(self, sut: SutEndpoint, session: RecordedSession, evidence: Evidence, *, pace: float = 0.0,
                 strict_precharge: bool = False) -> None:
        self.sut = sut
        self.strict_precharge = strict_precharge
        self.session = session
        self.evidence = evidence
        self.pace = pace
        self.conn: V2GTPConnection | None = None
        self.report = ReplayReport(session.label, session.protocol,
                                   recorded_requests=len(session.exchanges))
        self.protocol: str | None = session.protocol
        self.session_id: bytes | None = None
        self.tuple_ids: list[int] = []
        self.pmax: dict[int, list[tuple[int, float]]] = {}
        """The SUT's PMax schedule per SAScheduleTupleID: (start s, W) steps."""
        self.charge_service: int | None = None
        self.recorded_charge_service: int | None = None
        self.meter_info: Element | None = None
        self.power_on = False
        self.stopped = False
        self.stop_asked = ""
        self.last_t: float | None = None

    # ----------------------------------------------------------------------------- transport

    async def connect(self) -> None:
        kw: dict[str, Any] = {}
        if self.sut.tls:
            kw = {"ssl": self.sut.client_context(), "server_hostname": self.sut.host}
        try:
            async with asyncio.timeout(self.sut.connect_timeout):
                reader, writer = await asyncio.open_connection(self.sut.host, self.sut.port, limit=65536, **kw)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.evidence.note(f"connect to {self.sut.name} failed: {why}", "error")
            raise SutUnreachable(f"{UNREACHABLE}: {why}") from exc
        self.conn = V2GTPConnection(reader, writer)
        self.evidence.note(f"connected to {self.sut.name}")

    async def close(self) -> None:
        if self.conn is not None:
            try:
                await asyncio.wait_for(self.conn.aclose(), 2.0)
            except Exception:  # noqa: BLE001 - the connection is done with either way
                pass
            self.conn = None

    # ----------------------------------------------------------------------------- one exchange

    def _refuse(self, why: str) -> _Refused:
        self.report.refusal = why
        self.evidence.note(f"the SUT refused the vehicle: {why}", "error")
        return _Refused(why)

    async def exchange(self, name: str, tree: Element, schema: str, recorded: RecordedExchange | None,
                       label: str = "") -> Element:
        """Send ``tree``; the SUT's answer (message element), or :class:`_Refused`."""
        assert self.conn is not None
        try:
            payload = get_codec(schema).encode(tree)
        except ExiError as exc:  # a harness problem, not the SUT's: the case is an error
            raise RuntimeError(f"cannot re-encode the recorded {name}: {exc}") from exc
        try:
            await self.conn.send(PAYLOAD_TYPE, payload)
        except (ConnectionClosed, ConnectionError) as exc:
            raise self._refuse(f"the SUT closed the connection before {name} ({exc})") from None
        sent = time.monotonic()
        self.report.sent += 1
        e = self.evidence.frame("tx", PAYLOAD_TYPE, payload, name=name, detail=label)
        e.decoded = element_to_json(body_message(tree) or tree)
        timing = message_timing(self.protocol, name)
        grace = GRACE * self.sut.time_scale  # a slow lab peer (Josev's JVM on a loaded machine) gets more
        wait = timing.evcc_timeout + grace
        try:
            frame = await self.conn.recv(timeout=wait)
        except TimeoutError:
            raise self._refuse(f"no answer to {name} within {wait:g} s (V2G_EVCC_Msg_Timeout {timing.evcc_timeout:g} s "
                               f"+ {grace:g} s)") from None
        except (ConnectionClosed, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            raise self._refuse(f"the SUT closed the connection after {name}"
                               + (f" (the recorded charger answered {recorded.response_name} {recorded.response_code or ''})".rstrip()
                                  if recorded is not None and recorded.response_name else "") + f": {exc}") from None
        except V2GTPError as exc:
            raise self._refuse(f"a broken V2GTP frame in answer to {name}: {exc}") from None
        rt = time.monotonic() - sent
        try:
            answer = get_codec(schema).decode(frame.payload)
        except ExiError as exc:
            self.evidence.frame("rx", frame.payload_type, frame.payload, name="?", detail=str(exc), response_time=rt,
                                level="error")
            raise self._refuse(f"an undecodable answer to {name}: {exc}") from None
        msg = body_message(answer)
        got = msg.name if msg is not None else "?"
        code = _code(msg)
        e = self.evidence.frame("rx", frame.payload_type, frame.payload, name=got, response_time=rt,
                                level="error" if _refusing(code) else "info")
        e.decoded = element_to_json(msg) if msg is not None else None
        e.response_code = code
        self.report.answered += 1
        if rt > timing.evcc_timeout:
            self.report.late_count += 1
            if len(self.report.late) < 20:
                self.report.late.append(f"{got} after {rt * 1000:.0f} ms (V2G_EVCC_Msg_Timeout "
                                        f"{timing.evcc_timeout * 1000:.0f} ms)")
        want = (recorded.response_name if recorded is not None and recorded.response_name else None) or name[:-3] + "Res"
        if got.lower() != want.lower():
            raise self._refuse(f"answered {got} to {name} (expected {want})")
        if _refusing(code):
            rec_code = recorded.response_code if recorded is not None else None
            then = (f"the recorded charger refused it too ({rec_code})" if _refusing(rec_code)
                    else f"the recorded charger answered {rec_code}" if rec_code else "no recorded answer")
            raise self._refuse(f"{got} {code} to the vehicle's {name} ({then})")
        assert msg is not None
        if recorded is not None and recorded.response is not None:
            rec_msg = body_message(recorded.response)
            if rec_msg is not None:
                self._diff(got, recorded.index, rec_msg, msg)
        if answer.name == "V2G_Message" and name == "SessionSetupReq":
            header = answer.find("Header")
            sid = header.find("SessionID") if header is not None else None
            if sid is not None and isinstance(sid.value, bytes):
                self.session_id = sid.value
        self._learn(got, msg)
        return msg

    def _diff(self, name: str, index: int, recorded: Element, now: Element) -> None:
        d = self.report.diffs.setdefault(name, MessageDiff())
        d.compared += 1
        fields = diff_messages(recorded, now)
        if fields:
            d.differing += 1
            for k, (a, b) in fields.items():
                f = d.fields.get(k)
                if f is None:
                    d.fields[k] = FieldDiff(1, index, a, b)
                else:
                    f.count += 1

    def _learn(self, name: str, msg: Element) -> None:
        """What the vehicle takes from the SUT's answers."""
        if name == "ServiceDiscoveryRes":
            cs = msg.find("ChargeService")
            sid = None
            if cs is not None:
                tag = cs.find("ServiceTag") or cs
                el = tag.find("ServiceID")
                sid = el.value if el is not None else None
            self.charge_service = sid if isinstance(sid, int) else None
        elif name == "ChargeParameterDiscoveryRes":
            ids = [el.value for el in msg.iter() if el.name == "SAScheduleTupleID" and isinstance(el.value, int)]
            if ids:
                self.tuple_ids = ids
            for tup in (t for el in msg.iter() if el.name == "SAScheduleList" for t in el.findall("SAScheduleTuple")):
                tid = tup.find("SAScheduleTupleID")
                steps = []
                for entry in (e for el in tup.iter() if el.name == "PMaxSchedule" for e in el.findall("PMaxScheduleEntry")):
                    start = next((el.value for el in entry.iter() if el.name == "start"), 0)
                    watts = _watts(entry.find("PMax"))
                    if isinstance(start, int) and watts is not None:
                        steps.append((start, watts))
                if tid is not None and isinstance(tid.value, int) and steps:
                    self.pmax[tid.value] = sorted(steps)
        mi = msg.find("MeterInfo")
        if mi is not None:
            self.meter_info = mi
        if name in ("CurrentDemandRes", "ChargingStatusRes"):
            for el in msg.iter():
                if el.name == "EVSENotification" and el.value == "StopCharging":
                    self.stop_asked = f"{name}: EVSENotification=StopCharging"
                elif el.name == "EVSEStatusCode" and el.value in STOP_STATUS:
                    self.stop_asked = f"{name}: EVSEStatusCode={el.value}"

    # ----------------------------------------------------------------------------- requests

    def _count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n

    def prepare(self, ex: RecordedExchange) -> Element:
        """The recorded request with what must change rewritten (module docstring)."""
        assert ex.request is not None
        tree = copy_tree(ex.request)
        if tree.name != "V2G_Message":
            return tree
        header = tree.find("Header")
        if header is not None:
            sid = header.find("SessionID")
            if sid is not None and self.session_id is not None and ex.name != "SessionSetupReq":
                sid.value = self.session_id
            sig = header.find("Signature")
            if sig is not None:
                header.children.remove(sig)
                self._count(self.report.rewrites, "Signature dropped")
        msg = body_message(tree)
        if msg is None:
            return tree
        now = int(time.time())
        for el in list(msg.iter()):
            if el.name in ("TMeter", "TimeStamp") and isinstance(el.value, int):
                el.value = now
                self._count(self.report.rewrites, f"{el.name} -> now")
            elif el.name == "SAScheduleTupleID" and self.tuple_ids and el.value not in self.tuple_ids:
                self._count(self.report.rewrites, f"SAScheduleTupleID {el.value} -> {self.tuple_ids[0]} (the SUT's offer)")
                el.value = self.tuple_ids[0]
            elif el.name == "SelectedService":
                sid_el = el.find("ServiceID")
                if (sid_el is not None and self.charge_service is not None and sid_el.value != self.charge_service
                        and sid_el.value == self._recorded_charge_service()):
                    self._count(self.report.rewrites, f"charge ServiceID {sid_el.value} -> {self.charge_service} (the SUT's offer)")
                    sid_el.value = self.charge_service
        if ex.base == "PowerDelivery":
            self._fit_profile(msg)
        if ex.base == "MeteringReceipt" and self.meter_info is not None:
            for i, c in enumerate(msg.children):
                if isinstance(c, Element) and c.name == "MeterInfo":
                    mi = copy_tree(self.meter_info)
                    mi.ns = c.ns
                    msg.children[i] = mi
                    self._count(self.report.rewrites, "MeterInfo -> the SUT's")
        return tree

    def _fit_profile(self, req: Element) -> None:
        """A recorded ChargingProfile above the SUT's PMax schedule is cut to it, as the vehicle
        plans its profile within the schedule the charger offers ([V2G2-225])."""
        tid_el = next((el for el in req.iter() if el.name == "SAScheduleTupleID"), None)
        steps = self.pmax.get(tid_el.value) if tid_el is not None and isinstance(tid_el.value, int) else None
        if not steps:
            return
        for entry in (el for el in req.iter() if el.name == "ProfileEntry"):
            start_el, power = entry.find("ChargingProfileEntryStart"), entry.find("ChargingProfileEntryMaxPower")
            start = start_el.value if start_el is not None and isinstance(start_el.value, int) else 0
            watts = _watts(power)
            limit = next((w for t, w in reversed(steps) if t <= start), steps[0][1])
            if power is None or watts is None or watts <= limit:
                continue
            value = power.find("Value")
            mult = power.find("Multiplier")
            if value is not None:
                value.value = int(limit // 10 ** (mult.value if mult is not None and isinstance(mult.value, int) else 0))
            else:
                power.value = int(limit)
            self._count(self.report.rewrites, "ChargingProfile entry above the SUT's PMax -> PMax")

    def _recorded_charge_service(self) -> int | None:
        if self.recorded_charge_service is None:
            for ex in self.session.exchanges:
                res = body_message(ex.response)
                if ex.base == "ServiceDiscovery" and res is not None:
                    cs = res.find("ChargeService")
                    if cs is not None:
                        el = (cs.find("ServiceTag") or cs).find("ServiceID")
                        if el is not None and isinstance(el.value, int):
                            self.recorded_charge_service = el.value
                    break
        return self.recorded_charge_service

    async def _pace(self, ex: RecordedExchange) -> None:
        if self.pace > 0 and self.last_t is not None:
            await asyncio.sleep(min(2.0, max(0.0, ex.t - self.last_t) * self.pace))
        self.last_t = ex.t

    async def send_recorded(self, ex: RecordedExchange, label: str = "") -> Element:
        await self._pace(ex)
        tree = self.prepare(ex)
        msg = await self.exchange(ex.name, tree, ex.schema, ex, label or f"recorded #{ex.index + 1}")
        self._track_power(ex.name, body_message(tree))
        return msg

    def _track_power(self, name: str, req: Element | None) -> None:
        if name != "PowerDeliveryReq" or req is None:
            return
        rtc = req.find("ReadyToChargeState")
        prog = req.find("ChargeProgress")
        if rtc is not None:
            self.power_on = bool(rtc.value)
        elif prog is not None:
            self.power_on = prog.value != "Stop"

    # ----------------------------------------------------------------------------- the session

    async def run(self) -> ReplayReport:
        s = self.session
        if s.sap is None or s.sap.request is None:
            raise RecordingError(f"{s.label}: the recording does not start with a readable supportedAppProtocolReq")
        try:
            await self.connect()
            i = await self._negotiate()
            n = len(s.exchanges)
            while i < n and not self.stop_asked:
                ex = s.exchanges[i]
                if ex.request is None:
                    self.report.notes.append(f"the recording's request #{i + 1} is undecodable: replayed up to it")
                    break
                run_end = i
                while run_end + 1 < n and s.exchanges[run_end + 1].name == ex.name:
                    run_end += 1
                if ex.base in ONGOING:
                    await self._ongoing(i, run_end)
                    i = run_end + 1
                elif ex.base == "PreCharge":
                    await self._precharge(i, run_end)
                    i = run_end + 1
                else:
                    await self.send_recorded(ex)
                    i += 1
                    if ex.name == "SessionStopReq":
                        self.stopped = True
                        if i < n:
                            self.report.notes.append(f"the recording goes on after its SessionStop ({n - i} requests): "
                                                     "not sent, the session is over")
                        break
            if self.stop_asked:
                self.report.notes.append(f"the SUT asked the vehicle to stop ({self.stop_asked}): the loop ended there, "
                                         f"as a vehicle must end it")
            if not self.stopped:
                await self._append_stop(i)
            self.report.reached_stop = self.stopped
        except _Refused:
            pass
        finally:
            await self.close()
        return self.report

    async def _negotiate(self) -> int:
        """SupportedAppProtocol; returns the index of the next recorded request."""
        s = self.session
        sap = s.sap
        assert sap is not None and sap.request is not None
        offer = {int(el.find("SchemaID").value): str(el.find("ProtocolNamespace").value)  # type: ignore[union-attr]
                 for el in sap.request.findall("AppProtocol")}
        msg = await self.exchange(sap.name, copy_tree(sap.request), "sap", sap, "recorded #1")
        sid_el = msg.find("SchemaID")
        chosen = int(sid_el.value) if sid_el is not None and isinstance(sid_el.value, int) else None
        ns = offer.get(chosen) if chosen is not None else None
        proto = protocol_for_namespace(ns) if ns else None
        self.report.schema_id, self.report.protocol = chosen, proto
        self.evidence.note(f"the SUT chose SchemaID {chosen} ({ns})")
        if proto in REPLAYABLE and (s.protocol is None or proto == s.protocol):
            self.protocol = proto
            return 1
        if s.protocol is None:
            raise self._refuse(f"the SUT chose SchemaID {chosen} ({ns}), which this replay cannot speak")
        # another protocol than the recorded charger: a difference; replay the recorded one
        self.report.notes.append(f"the SUT chose {ns} (SchemaID {chosen}) where the recorded charger chose "
                                 f"{s.protocol}: reconnected offering only the recorded protocol")
        await self.close()
        if self.sut.before_case is not None:  # a SUT that tears sessions down slowly (Josev)
            await self.sut.before_case()
        await self.connect()
        only = copy_tree(sap.request)
        only.children = [c for c in only.children if not (isinstance(c, Element) and c.name == "AppProtocol"
                         and protocol_for_namespace(str(c.find("ProtocolNamespace").value)) != s.protocol)]  # type: ignore[union-attr]
        msg = await self.exchange(sap.name, only, "sap", None, "recorded offer, reduced to the recorded protocol")
        sid_el = msg.find("SchemaID")
        chosen = int(sid_el.value) if sid_el is not None and isinstance(sid_el.value, int) else None
        ns = offer.get(chosen) if chosen is not None else None
        if (protocol_for_namespace(ns) if ns else None) != s.protocol:
            raise self._refuse(f"offered only {s.protocol}, the SUT chose SchemaID {chosen} ({ns})")
        self.report.schema_id, self.report.protocol = chosen, s.protocol
        self.protocol = s.protocol
        return 1

    async def _ongoing(self, first: int, last: int) -> None:
        """A recorded run of an Ongoing-paced request, adapted to the SUT's pace."""
        s = self.session
        k = first
        started = time.monotonic()
        base = s.exchanges[first].base
        bound = loop_limit(self.protocol, base)
        while True:
            ex = s.exchanges[min(k, last)]
            if k > last:
                if bound is not None and time.monotonic() - started > bound[0]:
                    raise self._refuse(f"{base}Res stayed EVSEProcessing=Ongoing beyond {bound[1]} ({bound[0]:g} s)")
                if k - last > MAX_EXTRA:
                    raise self._refuse(f"{base}Res stayed EVSEProcessing=Ongoing for {MAX_EXTRA} extra requests")
                await asyncio.sleep(EXTRA_INTERVAL)
                msg = await self.exchange(ex.name, self.prepare(ex), ex.schema, ex, f"recorded #{ex.index + 1} repeated")
                self._count(self.report.extra, ex.name)
            else:
                msg = await self.send_recorded(ex)
            if _processing(msg) != "Ongoing":
                break
            k += 1
        if k < last:
            self._count(self.report.skipped, s.exchanges[first].name, last - k)
            self.evidence.note(f"the SUT finished {base} after {k - first + 1} request(s); "
                               f"{last - k} recorded repeat(s) not sent")

    async def _precharge(self, first: int, last: int) -> None:
        s = self.session
        msg: Element | None = None
        for k in range(first, last + 1):
            msg = await self.send_recorded(s.exchanges[k])
        ex = s.exchanges[last]
        req = body_message(ex.request)
        target = _physical(req, "EVTargetVoltage")
        if target is None or msg is None:
            return
        rec_present = _physical(body_message(ex.response), "EVSEPresentVoltage")
        allowed = max(20.0, 0.05 * target, abs(target - rec_present) if rec_present is not None else 0.0)
        started = time.monotonic()
        limit = TIMERS.evcc_pre_charge_2
        while True:
            present = _physical(msg, "EVSEPresentVoltage")
            if present is not None and abs(present - target) <= allowed:
                return
            if time.monotonic() - started > limit:
                why = (f"pre-charge did not reach the vehicle's target {target:g} V (within {allowed:g} V) in "
                       f"V2G_EVCC_PreCharge_Timeout ({limit:g} s): present voltage {present}")
                if self.strict_precharge:
                    raise self._refuse(why)
                self.report.precharge_shortfall = why
                self.evidence.note(f"{why}; a real vehicle would stop here, the replay goes on as recorded", "warning")
                return
            await asyncio.sleep(EXTRA_INTERVAL)
            msg = await self.exchange(ex.name, self.prepare(ex), ex.schema, ex, f"recorded #{ex.index + 1} repeated")
            self._count(self.report.extra, ex.name)

    def _template(self, name: str) -> RecordedExchange | None:
        for ex in reversed(self.session.exchanges):
            if ex.name == name and ex.request is not None:
                return ex
        return None

    def _v2g(self, name: str, children: list[Element]) -> Element:
        """A DIN / -2 request this replay adds (the recording has none)."""
        proto = self.protocol or "din"
        ns = _NS[proto]
        sid = self.session_id if self.session_id is not None else b"\x00"
        return Element(ns + "MsgDef", "V2G_Message", children=[
            Element(ns + "MsgDef", "Header", children=[Element(ns + "MsgHeader", "SessionID", value=sid)]),
            Element(ns + "MsgDef", "Body", children=[Element(ns + "MsgBody", name, children=list(children))]),
        ])

    async def _append_stop(self, at: int) -> None:
        """End a session the recording left open: (SessionSetup,) (PowerDelivery stop,) SessionStop."""
        ended = self.session.exchanges[at - 1].name if at > 0 else "nothing"
        proto = self.protocol or "din"
        ns = _NS[proto] + "MsgBody"
        if self.session_id is None:
            mac = self.session.ev_mac() or bytes(6)
            tree = self._v2g("SessionSetupReq", [Element(ns, "EVCCID", value=mac)])
            self.report.appended.append("SessionSetupReq")
            await self.exchange("SessionSetupReq", tree, proto, None, f"appended: the recording ends after {ended}")
        if self.power_on:
            tpl = self._template("PowerDeliveryReq")
            if tpl is not None:
                tree = self.prepare(tpl)
                req = body_message(tree)
                assert req is not None
                for c in req.children:
                    if isinstance(c, Element) and c.name == "ReadyToChargeState":
                        c.value = False
                    elif isinstance(c, Element) and c.name == "ChargeProgress":
                        c.value = "Stop"
                req.children = [c for c in req.children if not (isinstance(c, Element) and c.name == "ChargingProfile")]
                self.report.appended.append("PowerDeliveryReq(stop)")
                await self.exchange("PowerDeliveryReq", tree, proto, None,
                                    f"appended: the recorded PowerDeliveryReq with the power off (recording ends after {ended})")
                self.power_on = False
        kids = [Element(ns, "ChargingSession", value="Terminate")] if proto == "iso2" else []
        self.report.appended.append("SessionStopReq")
        await self.exchange("SessionStopReq", self._v2g("SessionStopReq", kids), proto, None,
                            f"appended: the recording ends after {ended}")
        self.stopped = True


# ------------------------------------------------------------------------------- as a case


def case_id(session: RecordedSession) -> str:
    return "TC_SECC_VehicleReplay_" + re.sub(r"[^A-Za-z0-9]+", "_", session.label).strip("_")


def judge(ctx: CaseContext, rep: ReplayReport) -> None:
    """The checks of a finished replay (the module docstring's verdict rules)."""
    ctx.evidence.annex["replay"] = rep.to_json()
    ctx.metric("replay_requests_sent", rep.sent)
    ctx.metric("replay_responses_compared", rep.compared)
    ctx.metric("replay_responses_differing", rep.differing)
    proto = f"{rep.protocol} (SchemaID {rep.schema_id})" if rep.protocol else "no protocol"
    ctx.check("replay: the SUT accepts the vehicle's session (no FAILED code, no close, no timeout)",
              rep.refusal is None,
              rep.refusal or f"{rep.answered} of the vehicle's requests answered in {proto}"
              + (f"; {sum(rep.extra.values())} repeats beyond the recording" if rep.extra else "")
              + (f"; {sum(rep.skipped.values())} recorded repeats not needed" if rep.skipped else ""))
    if rep.refusal is None:
        how = ("as recorded" if not rep.appended
               else f"appended {', '.join(rep.appended)}: the recording did not reach SessionStop")
        ctx.check("replay: the session ends with SessionStop", rep.reached_stop, how)
    ctx.check("replay: answers compared with the recorded charger (differences are evidence, not failures)", True,
              f"{rep.differing} of {rep.compared} responses differ: {rep.diff_summary()}"
              + (f"; {rep.late_count} answers later than V2G_EVCC_Msg_Timeout" if rep.late_count else "")
              + (f"; {rep.precharge_shortfall}" if rep.precharge_shortfall else ""))
    for n in rep.notes:
        ctx.evidence.note(n, "warning")


def vehicle_replay_case(session: RecordedSession, *, pace: float = 0.0, strict_precharge: bool = False) -> TestCase:
    """A catalogue-style case replaying one recorded vehicle session (not registered; give it to
    the runner)."""

    async def run(ctx: CaseContext) -> None:
        ctx.evidence.note(f"replaying {session.source.name} session {session.number}/{session.of}: "
                          f"{len(session.exchanges)} requests, {session.protocol or 'no protocol agreed'}, "
                          f"{'ends with SessionStop' if session.reached_stop else 'no SessionStop recorded'}")
        rep = await VehicleReplay(ctx.sut, session, ctx.evidence, pace=pace, strict_precharge=strict_precharge).run()
        judge(ctx, rep)

    n = len(session.exchanges)
    return TestCase(
        id=case_id(session), title=f"Replay of the real vehicle session {session.label}", group="VehicleReplay",
        purpose="The SUT serves a real vehicle's recorded session; where it answers differently from the recorded "
                "charger the differences are reported.",
        requirement="interoperability with a recorded real vehicle (DIN SPEC 70121 / ISO 15118-2)",
        steps=("SupportedAppProtocol with the vehicle's offer", "the vehicle's requests as recorded, SessionID and "
               "time stamps rewritten, Ongoing loops at the SUT's pace", "SessionStop (appended where the recording "
               "has none)", "diff each answer against the recorded charger's"),
        preconditions=("an SECC speaking the recorded protocol",),
        tags=("replay", "vehicle", "secc", session.protocol or "sap", (session.family or "any").lower()),
        role="SECC", needs=frozenset(), run=run, timeout=120.0 + 0.3 * n + (pace * (session.exchanges[-1].t if n else 0)),
    )


def vehicle_replay_cases(paths: Iterable[str | Path], *, pace: float = 0.0) -> list[TestCase]:
    """One case per recorded V2G session of each capture (raises :class:`RecordingError`)."""
    return [vehicle_replay_case(s, pace=pace) for p in paths for s in read_sessions(p)]


def replay_reach(sap: Element) -> Callable[[SutEndpoint], Awaitable[str | None]]:
    """The runner's reach check for DIN / -2 SUTs: connect and get an answer to a recorded
    vehicle's supportedAppProtocolReq (any answer: a refusal is the case's to judge)."""

    async def reach(sut: SutEndpoint) -> str | None:
        if sut.before_case is not None:
            await sut.before_case()
        ev = Evidence()
        probe = VehicleReplay(sut, RecordedSession(Path("reach"), 1, 1, None), ev)
        try:
            await probe.connect()
        except SutUnreachable as exc:
            return str(exc).removeprefix(f"{UNREACHABLE}: ")
        try:
            assert probe.conn is not None
            await probe.conn.send(PAYLOAD_TYPE, get_codec("sap").encode(sap))
            frame = await probe.conn.recv(timeout=2.0 + GRACE * sut.time_scale)
            msg = get_codec("sap").decode(frame.payload)
            if not isinstance(msg, Element) or msg.name != "supportedAppProtocolRes":
                return f"no supportedAppProtocolRes to a recorded vehicle's offer (got {getattr(msg, 'name', msg)})"
            return None
        except TimeoutError:
            return "no answer to a recorded vehicle's supportedAppProtocolReq"
        except (ConnectionClosed, ConnectionError, asyncio.IncompleteReadError, V2GTPError, ExiError, ssl.SSLError) as exc:
            return f"the supportedAppProtocol handshake failed: {type(exc).__name__}: {exc}"
        finally:
            await probe.close()

    return reach


async def replay_campaign(suts: list[SutEndpoint], sessions: list[RecordedSession], *, pace: float = 0.0,
                          strict_precharge: bool = False, **kw: Any) -> Campaign:
    """Every session against every SUT under the runner's rules (an unreachable SUT makes every
    case an error), reaching each SUT with the first session's SupportedAppProtocol offer."""
    saps = [s.sap.request for s in sessions if s.sap is not None and s.sap.request is not None]
    if not saps:
        raise RecordingError("no recorded session starts with a readable supportedAppProtocolReq")
    cases = [vehicle_replay_case(s, pace=pace, strict_precharge=strict_precharge) for s in sessions]
    return await run_campaign(suts, cases, probe=False, reach=replay_reach(saps[0]), **kw)
