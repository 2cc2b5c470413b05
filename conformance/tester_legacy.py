"""The tester vehicle for DIN SPEC 70121 and ISO 15118-2 chargers under test (message level).

It speaks V2GTP over TCP and builds every request itself (:mod:`conformance.legacy`): the
normal session runs step by step (:meth:`LegacyTester.run_to` stops before the step a case
deviates at), and a case sends whatever it wants instead -- a wrong SessionID, a request out of
sequence, a value out of range, malformed EXI, the other protocol's message -- and judges the
answer.  Every response time is checked against V2G_EVCC_Msg_Timeout of its request (DIN/-2
digest §4.1), every answer after SessionSetup against the session's SessionID (§5.2), and
every answer's type against the request (§5.1): a late, foreign or mistyped answer is a failed
check even when the case goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from conformance import legacy as L
from conformance.evidence import Check, Evidence
from conformance.sut import SutEndpoint
from conformance.tester import Rx
from iso15118 import messages as m
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection
from iso15118.transport.v2gtp import V2GTPError, encode_frame

GRACE = 3.0
"""Extra seconds the tester waits after a timeout expired (to record what happens)."""


class LRx(Rx):
    """An answer of a DIN / -2 charger (``msg`` is a :class:`conformance.legacy.Msg`)."""

    @property
    def code(self) -> str | None:
        c = getattr(self.msg, "code", None)
        if c is not None:
            return str(c)
        rc = getattr(self.msg, "response_code", None)  # the typed SAP response
        return getattr(rc, "value", None)


DC_STEPS = ("SessionSetup", "ServiceDiscovery", "PaymentSelection", "Authorization", "ChargeParameterDiscovery",
            "CableCheck", "PreCharge", "PowerDeliveryStart", "ChargeLoop", "PowerDeliveryStop", "WeldingDetection",
            "SessionStop")
AC_STEPS = ("SessionSetup", "ServiceDiscovery", "PaymentSelection", "Authorization", "ChargeParameterDiscovery",
            "PowerDeliveryStart", "ChargeLoop", "PowerDeliveryStop", "SessionStop")


class LegacyTester:
    """One tester connection to a DIN / -2 charger."""

    def __init__(self, sut: SutEndpoint, evidence: Evidence, checks: list[Check], proto: L.Proto, *,
                 ev: L.EvState | None = None, loops: int = 3) -> None:
        self.sut = sut
        self.evidence = evidence
        self.checks = checks
        self.proto = proto
        self.ev = ev or L.EvState()
        self.loops = loops
        self.conn: V2GTPConnection | None = None
        self.connected = False
        self.connect_error = ""
        self.closed_by_sut = False
        self.closed_at: float | None = None
        self.response_times: dict[str, list[float]] = {}
        self.late: list[str] = []
        self.values: Any = None
        self.session_id = bytes(8)
        self.negotiated = False
        self.sap_schema_id: int | None = None
        self.service_id = 1
        self.payment_options: list[str] = []
        self.energy_modes: list[str] = []
        self.tuple_ids: list[int] = []
        self.evse_max_voltage: Decimal | None = None
        self.evse_max_current: Decimal | None = None
        self.evse_max_power: Decimal | None = None
        self.answers: list[LRx] = []
        self.done: list[str] = []
        self._sent_at: float | None = None
        self._sent_name: str | None = None
        self.on_answer: Callable[[str, LRx], None] | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        return AC_STEPS if self.ev.ac else DC_STEPS

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        try:
            async with asyncio.timeout(self.sut.connect_timeout):
                reader, writer = await asyncio.open_connection(self.sut.host, self.sut.port, limit=65536)
        except (OSError, TimeoutError) as exc:
            self.connect_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.evidence.note(f"connect to {self.sut.name} failed: {self.connect_error}", "error")
            raise
        self.connected = True
        self.conn = V2GTPConnection(reader, writer)
        self.evidence.note(f"connected to {self.sut.name} ({self.proto.title} tester vehicle)")

    async def close(self) -> None:
        if self.conn is not None:
            try:
                await asyncio.wait_for(self.conn.aclose(), 2.0)
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    # ------------------------------------------------------------------ sending and receiving

    async def send_frame(self, payload_type: int, payload: bytes, *, name: str, detail: str = "", decoded: Any = None) -> None:
        assert self.conn is not None
        await self.conn.send_raw(encode_frame(payload_type, payload))
        self._sent_at = time.monotonic()
        self._sent_name = name
        e = self.evidence.frame("tx", payload_type, payload, None, name=name, detail=detail)
        e.decoded = decoded

    async def send_raw(self, data: bytes, name: str, detail: str = "") -> None:
        assert self.conn is not None
        await self.conn.send_raw(data)
        self._sent_at = time.monotonic()
        self._sent_name = None
        self.evidence.frame("tx", None, data, None, name=name, detail=detail or f"{len(data)} raw bytes")

    async def send(self, body: Any, *, session_id: bytes | None = None, validate: bool = True, detail: str = "",
                   proto: L.Proto | None = None, payload_type: int = L.PT_EXI) -> None:
        p = proto or self.proto
        sid = self.session_id if session_id is None else session_id
        payload = L.encode(p, body, sid, validate=validate)
        await self.send_frame(payload_type, payload, name=body.name, detail=detail,
                              decoded={"SessionID": sid.hex(), "body": L._plain(body)})

    def _mark_closed(self, detail: str) -> None:
        if not self.closed_by_sut:
            self.closed_by_sut = True
            self.closed_at = self.evidence.now()
            self.evidence.note(f"connection closed: {detail}")

    async def recv(self, timeout: float) -> LRx:
        assert self.conn is not None
        try:
            frame = await self.conn.recv(timeout=timeout)
        except TimeoutError:
            return LRx(error=f"no response within {timeout:g} s")
        except (ConnectionClosed, ConnectionError, asyncio.IncompleteReadError) as exc:
            self._mark_closed(str(exc) or type(exc).__name__)
            return LRx(closed=True, error=f"connection closed by the SUT: {exc}")
        except V2GTPError as exc:
            self.evidence.note(f"SUT sent a bad V2GTP frame: {exc}", "error")
            return LRx(error=f"bad V2GTP frame: {exc}")
        rt = time.monotonic() - self._sent_at if self._sent_at is not None else None
        req = self._sent_name
        msg: Any = None
        err = ""
        if frame.payload_type != L.PT_EXI:
            err = f"payload type 0x{frame.payload_type:04x}, not 0x8001"
        else:
            try:
                msg = m.decode(frame.payload, "sap") if not self.negotiated else L.decode(self.proto, frame.payload)
            except Exception as exc:  # noqa: BLE001 - undecodable answer: evidence
                err = f"undecodable EXI: {exc}"
        name = (msg.ELEMENT[1] if hasattr(msg, "ELEMENT") else msg.name) if msg is not None else f"0x{frame.payload_type:04x}"
        e = self.evidence.frame("rx", frame.payload_type, frame.payload, msg if hasattr(msg, "ELEMENT") else None, name=name,
                                detail=err, response_time=rt, level="error" if err else "info")
        rx = LRx(msg, name, frame.payload_type, rt, error=err, raw=frame.payload)
        if isinstance(msg, L.Msg):
            e.decoded = msg.summary()
            e.response_code = msg.code
        if msg is not None and req is not None:
            self._judge(req, rx)
        self._sent_at = None
        self._sent_name = None
        self.answers.append(rx)
        if self.on_answer is not None and msg is not None:
            self.on_answer(name, rx)
        return rx

    def _judge(self, req: str, rx: LRx) -> None:
        """Timing, response type and SessionID of every answer."""
        limit = self.proto.timeout(req) if req != "supportedAppProtocolReq" else 2.0
        rt = rx.response_time or 0.0
        self.response_times.setdefault(rx.name, []).append(rt)
        if rt > limit:
            self.late.append(rx.name)
            self.checks.append(Check(f"{self.proto.ref('§4.1')}: V2G_EVCC_Msg_Timeout({req}) = {limit:g} s", False,
                                     f"{rx.name} arrived {rt * 1000:.0f} ms after {req} (limit {limit * 1000:.0f} ms)"))
        want = req[:-3] + "Res"
        if rx.name != want:
            self.checks.append(Check(f"{self.proto.ref('§5.1')}: the answer is the response to the request", False,
                                     f"{rx.name} answered {req}"))
        if isinstance(rx.msg, L.Msg) and req != "SessionSetupReq" and self.session_id != bytes(8) \
                and rx.msg.session_id != self.session_id:
            self.checks.append(Check(f"{self.proto.ref('§5.2')}: every answer carries the session's SessionID", False,
                                     f"{rx.name} carries {rx.msg.session_id.hex()}, the session is {self.session_id.hex()}"))

    async def exchange(self, body: Any, *, timeout: float | None = None, **kw: Any) -> LRx:
        await self.send(body, **kw)
        return await self.recv(timeout if timeout is not None else self.proto.timeout(body.name) + GRACE)

    async def exchange_frame(self, payload_type: int, payload: bytes, name: str, timeout: float = 2.5, detail: str = "") -> LRx:
        await self.send_frame(payload_type, payload, name=name, detail=detail)
        return await self.recv(timeout)

    async def wait_closed(self, within: float) -> float | None:
        deadline = time.monotonic() + within
        while not self.closed_by_sut:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            rx = await self.recv(left)
            if rx.error and not rx.closed and not rx.msg and "no response" not in rx.error:
                return None
        return self.closed_at

    # ------------------------------------------------------------------ SAP

    def app_protocol(self, proto: L.Proto | None = None, *, schema_id: int = 1, priority: int = 1,
                     major: int | None = None, minor: int | None = None, ns: str | None = None) -> m.AppProtocol:
        p = proto or self.proto
        return m.AppProtocol(protocol_namespace=ns or p.ns, version_number_major=p.major if major is None else major,
                             version_number_minor=p.minor if minor is None else minor, schema_id=schema_id, priority=priority)

    async def sap(self, entries: list[m.AppProtocol] | None = None) -> LRx:
        if self.conn is None:
            await self.connect()
        req = m.SupportedAppProtocolReq(app_protocol=entries or [self.app_protocol()])
        payload = m.encode(req)
        await self.send_frame(L.PT_EXI, payload, name="supportedAppProtocolReq", decoded=None)
        self.evidence.entries[-1].decoded = {"AppProtocol": [(a.protocol_namespace, a.version_number_major, a.version_number_minor,
                                                              a.schema_id, a.priority) for a in req.app_protocol]}
        rx = await self.recv(2.0 + GRACE)
        if rx.answered and (rx.code or "").startswith("OK"):
            chosen = next((a for a in req.app_protocol if a.schema_id == rx.msg.schema_id), None)
            self.sap_schema_id = rx.msg.schema_id
            self.negotiated = chosen is not None and chosen.protocol_namespace == self.proto.ns
        return rx

    # ------------------------------------------------------------------ the normal session

    def precondition_ok(self, rx: LRx, step: str) -> tuple[bool, str]:
        if not rx.answered:
            return False, f"{step}: no answer ({rx.error})"
        ok = (rx.code or "").startswith("OK")
        return ok, f"{step}: {rx.name} {rx.code}"

    async def step(self, step: str) -> LRx:
        """One step of the normal session (with its Ongoing / voltage loops); returns the last answer."""
        p, ev = self.proto, self.ev
        if step == "SAP":
            return await self.sap()
        if step == "SessionSetup":
            rx = await self.exchange(L.req_session_setup(p, ev), session_id=bytes(8))
            if isinstance(rx.msg, L.Msg) and rx.msg.session_id:
                self.session_id = rx.msg.session_id
            return rx
        if step == "ServiceDiscovery":
            rx = await self.exchange(L.req_service_discovery(p, ev))
            if isinstance(rx.msg, L.Msg):
                self._read_services(rx.msg)
            return rx
        if step == "PaymentSelection":
            return await self.exchange(L.req_payment_selection(p, ev, self.service_id))
        if step == "Authorization":
            return await self._loop(lambda: L.req_authorization(p, ev), L.ONGOING_TIMEOUT, 0.2)
        if step == "ChargeParameterDiscovery":
            rx = await self._loop(lambda: L.req_charge_parameter(p, ev), L.ONGOING_TIMEOUT, 0.2)
            if isinstance(rx.msg, L.Msg):
                self._read_cpd(rx.msg)
            return rx
        if step == "CableCheck":
            return await self._loop(lambda: L.req_cable_check(p, ev), L.CABLE_CHECK_TIMEOUT, 0.2)
        if step == "PreCharge":
            return await self._pre_charge()
        if step == "PowerDeliveryStart":
            return await self.exchange(L.req_power_delivery(p, ev, "Start", self.tuple_id()))
        if step == "ChargeLoop":
            rx = LRx(error="no loop")
            for _ in range(self.loops):
                rx = await self.exchange(L.req_charging_status(p, ev) if ev.ac else L.req_current_demand(p, ev))
                if not (rx.answered and (rx.code or "").startswith("OK")):
                    return rx
                await asyncio.sleep(0.05)
            return rx
        if step == "PowerDeliveryStop":
            return await self.exchange(L.req_power_delivery(p, ev, "Stop", self.tuple_id()))
        if step == "WeldingDetection":
            return await self.exchange(L.req_welding(p, ev))
        if step == "SessionStop":
            return await self.exchange(L.req_session_stop(p, ev))
        raise ValueError(step)

    def tuple_id(self) -> int:
        return self.tuple_ids[0] if self.tuple_ids else 1

    async def _loop(self, build: Callable[[], Any], budget: float, pause: float) -> LRx:
        t0 = time.monotonic()
        while True:
            rx = await self.exchange(build())
            proc = rx.msg.text("EVSEProcessing") if isinstance(rx.msg, L.Msg) else None
            if not (rx.answered and (rx.code or "").startswith("OK")) or proc is None or proc == "Finished":
                return rx
            if time.monotonic() - t0 > budget:
                self.evidence.note(f"{rx.name}: still {proc} after {budget:g} s (the EV gives up)", "error")
                rx.error = f"still {proc} after {budget:g} s"
                return rx
            await asyncio.sleep(pause)

    async def _pre_charge(self) -> LRx:
        t0 = time.monotonic()
        target = Decimal(self.ev.target_voltage)
        while True:
            rx = await self.exchange(L.req_pre_charge(self.proto, self.ev))
            if not (rx.answered and (rx.code or "").startswith("OK")):
                return rx
            v = rx.msg.phys("EVSEPresentVoltage")
            if v is not None and abs(v - target) <= 20:
                return rx
            if time.monotonic() - t0 > L.PRECHARGE_TIMEOUT:
                rx.error = f"present voltage {v} V still not within 20 V of {target} V after {L.PRECHARGE_TIMEOUT:g} s"
                self.evidence.note(rx.error, "error")
                return rx
            await asyncio.sleep(0.1)

    def _read_services(self, msg: L.Msg) -> None:
        if self.proto.din:
            self.payment_options = [e.value for e in msg.all("PaymentOptions/PaymentOption")]
            sid = msg.text("ChargeService/ServiceTag/ServiceID")
            self.energy_modes = [msg.text("ChargeService/EnergyTransferType")] if msg.text("ChargeService/EnergyTransferType") else []
        else:
            self.payment_options = [e.value for e in msg.all("PaymentOptionList/PaymentOption")]
            sid = msg.text("ChargeService/ServiceID")
            self.energy_modes = [e.value for e in msg.all("ChargeService/SupportedEnergyTransferMode/EnergyTransferMode")]
        if sid is not None:
            self.service_id = int(sid)

    def _read_cpd(self, msg: L.Msg) -> None:
        self.tuple_ids = [int(t.find("SAScheduleTupleID").value) for t in msg.all("SAScheduleList/SAScheduleTuple")  # type: ignore[union-attr]
                          if t.find("SAScheduleTupleID") is not None]
        dc = "DC_EVSEChargeParameter"
        self.evse_max_voltage = msg.phys(f"{dc}/EVSEMaximumVoltageLimit")
        self.evse_max_current = msg.phys(f"{dc}/EVSEMaximumCurrentLimit")
        self.evse_max_power = msg.phys(f"{dc}/EVSEMaximumPowerLimit")

    async def run_to(self, step: str, *, first: str | None = None) -> None:
        """Run the normal session up to (not including) ``step``; each step must succeed (the
        caller turns a failure into a failed precondition).  Raises :class:`StepFailed`."""
        if self.conn is None:
            await self.connect()
        if not self.negotiated:
            rx = await self.sap()
            if not self.negotiated:
                raise StepFailed("SAP", rx, f"{self.proto.title} not negotiated: {rx.name} {rx.code or rx.error}")
        for s in self.steps:
            if s in self.done:
                continue
            if s == step:
                return
            rx = await self.step(s)
            ok, why = self.precondition_ok(rx, s)
            if ok and rx.error:
                ok, why = False, f"{s}: {rx.error}"
            if not ok:
                raise StepFailed(s, rx, why)
            self.done.append(s)
        if step != "end":
            raise ValueError(f"no step {step} in {self.steps}")


class StepFailed(Exception):
    def __init__(self, step: str, rx: LRx, why: str) -> None:
        super().__init__(why)
        self.step = step
        self.rx = rx


async def reach_legacy(sut: SutEndpoint, proto: L.Proto, evidence: Evidence | None = None) -> str | None:
    """A fresh connection completes SupportedAppProtocol (``proto`` only) and SessionSetup.
    None when it does, else why not."""
    if sut.before_case is not None:
        await sut.before_case()
    t = LegacyTester(sut, evidence or Evidence(), [], proto)
    try:
        await t.connect()
        rx = await t.sap()
        if not t.negotiated:
            return f"{proto.title} SupportedAppProtocol failed: {rx.name} {rx.code or rx.error}"
        rx = await t.step("SessionSetup")
        if not (rx.answered and (rx.code or "").startswith("OK")):
            return f"{proto.title} SessionSetup failed: {rx.name} {rx.code or rx.error}"
        return None
    except (OSError, TimeoutError) as exc:
        return t.connect_error or f"{type(exc).__name__}: {exc}"
    finally:
        await t.close()
