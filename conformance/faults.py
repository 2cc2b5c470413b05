"""Deliberate defects around our own SECC, to prove the harness catches them (fault seeding).

* :class:`IgnoreDerate` -- the charger keeps using the EV limits of the first charge loop,
  i.e. ignores a later derate.
* :class:`PowerOnAfterAbort` -- after an aborted session the output stays on (stuck contactor
  / power stage), as the power probe will see.
* :class:`DefectProxy` -- a V2GTP proxy in front of the SECC that answers late (delays
  ChargeLoopRes) or makes it accept a wrong SessionID (rewrites it to the right one).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from iso15118 import messages as m
from iso15118.transport.tcp import ConnectionClosed, V2GTPConnection, open_connection, start_server
from iso15118.transport.v2gtp import V2GTPError, schema_key_for


class _Wrapper:
    """Delegates everything to ``inner`` (the simulated charger)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class IgnoreDerate(_Wrapper):
    """Uses the EV limits of the first charge loop for the whole session."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.first_limits: Any = None

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        if self.first_limits is None:
            self.first_limits = status.limits
        return self.inner.charge_loop(now, ctx, dataclasses.replace(status, limits=self.first_limits))


class PowerOnAfterAbort(_Wrapper):
    """When the SECC core aborts a session while delivering power, the output stays on."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.last_power = 0.0
        self.stop_at: float | None = None
        self.before_stop: tuple[float, bool] = (0.0, False)

    def charge_loop(self, now: float, ctx: Any, status: Any) -> Any:
        r = self.inner.charge_loop(now, ctx, status)
        self.last_power = float(r.target_power)
        return r

    def power_delivery(self, now: float, progress: str, discharge: bool) -> bool:
        if progress == "Stop":
            self.stop_at = now
            self.before_stop = (self.inner.power_w, self.inner.contactors_closed)
        return bool(self.inner.power_delivery(now, progress, discharge))

    def session_ended(self, now: float, reason: str, ok: bool) -> None:
        self.inner.session_ended(now, reason, ok)
        if ok:
            return
        if self.stop_at == now:  # the core's abort path: Stop and end at the same instant
            power, closed = self.before_stop
        else:  # connection lost while charging: no Stop at all
            power, closed = self.last_power, self.last_power != 0.0
        if closed:
            self.inner.power_w = power
            self.inner.contactors_closed = True


class DefectProxy:
    """A V2GTP proxy between the tester and the SECC with deliberate defects.

    ``loop_delay``: hold every ChargeLoopRes this long.  ``accept_wrong_session``: rewrite a
    wrong SessionID in requests to the one the SECC assigned (so the SECC "accepts" it).
    """

    def __init__(self, target_port: int, *, loop_delay: float = 0.0, accept_wrong_session: bool = False) -> None:
        self.target_port = target_port
        self.loop_delay = loop_delay
        self.accept_wrong_session = accept_wrong_session
        self.server: asyncio.Server | None = None
        self.rewrites = 0
        self.delayed = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        self.server = await start_server(self._handle, "::1", 0)
        return self.port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, ev_side: V2GTPConnection) -> None:
        secc = await open_connection("::1", self.target_port)
        state: dict[str, bytes | None] = {"sid": None}

        async def up() -> None:  # EV -> SECC
            while True:
                f = await ev_side.recv()
                payload = f.payload
                if self.accept_wrong_session and state["sid"] is not None and f.payload_type != 0x8001:
                    try:
                        msg: Any = m.decode(payload, schema_key_for(f.payload_type))  # type: ignore[arg-type]
                        if msg.header.session_id != state["sid"]:
                            msg = dataclasses.replace(msg, header=dataclasses.replace(msg.header, session_id=state["sid"]))
                            payload = m.encode(msg)
                            self.rewrites += 1
                    except Exception:
                        pass
                await secc.send(f.payload_type, payload)

        async def down() -> None:  # SECC -> EV
            while True:
                f = await secc.recv()
                if f.payload_type in (0x8002, 0x8003, 0x8004):
                    try:
                        msg: Any = m.decode(f.payload, schema_key_for(f.payload_type))  # type: ignore[arg-type]
                        name = msg.ELEMENT[1]
                        if name == "SessionSetupRes":
                            state["sid"] = msg.header.session_id
                        if name.endswith("ChargeLoopRes") and self.loop_delay:
                            self.delayed += 1
                            await asyncio.sleep(self.loop_delay)
                    except Exception:
                        pass
                await ev_side.send(f.payload_type, f.payload)

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionClosed, V2GTPError, ConnectionError):
            pass
        finally:
            for t in tasks:
                t.cancel()
            await secc.aclose()
