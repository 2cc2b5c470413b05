"""Defective and merely different DIN / -2 chargers for the real-vehicle replay's own proofs.

:class:`V2GProxy` stands between the replaying tester and a working SECC (ours, or Josev) and
changes the SECC's answers at the protocol level, where a product would have the defect: it reads
SupportedAppProtocol to learn the session's schema (``din`` / ``iso2``), then decodes every answer
with our codec and

* ``refuse``: answers a request with a FAILED response code (``{"PreChargeRes": "FAILED"}``);
* ``close_after``: closes the vehicle's connection instead of forwarding the n-th answer of a kind
  (a charger that drops the session in the middle of the charge loop);
* ``scale``: multiplies physical values of the answers (``{"EVSEMaxCurrent": 0.5}``): other EVSE
  limits, a charger that merely differs.

Everything else passes through byte for byte, one V2GTP frame per write.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from conformance.recording import body_message
from iso15118.exi.codec import get_codec
from iso15118.exi.tree import Element
from iso15118.facts.namespaces import protocol_for_namespace
from iso15118.transport.tcp import V2GTPConnection, open_connection, start_server

__all__ = ["V2GProxy"]


@dataclass
class V2GProxy:
    """A protocol-level defect in front of the SECC at ``[host]:target_port``."""

    target_port: int
    host: str = "::1"
    refuse: dict[str, str] = field(default_factory=dict)
    close_after: tuple[str, int] | None = None
    scale: dict[str, float] = field(default_factory=dict)
    rewritten: int = 0
    closed: int = 0
    server: asyncio.Server | None = None

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

    def _change(self, msg: Element) -> bool:
        changed = False
        code = self.refuse.get(msg.name)
        rc = msg.find("ResponseCode")
        if code is not None and rc is not None:
            rc.value = code
            changed = True
        for el in msg.iter():
            factor = self.scale.get(el.name)
            val = el.find("Value")
            if factor is not None and val is not None and isinstance(val.value, int):
                val.value = int(val.value * factor)
                changed = True
        return changed

    async def _handle(self, ev: V2GTPConnection) -> None:
        try:
            secc = await open_connection(self.host, self.target_port)
        except OSError:
            ev.close()
            return
        state: dict[str, Any] = {"offer": {}, "schema": "sap", "seen": {}}

        async def up() -> None:
            while True:
                f = await ev.recv()
                if state["schema"] == "sap":
                    with contextlib.suppress(Exception):
                        req = get_codec("sap").decode(f.payload)
                        state["offer"] = {int(a.find("SchemaID").value): str(a.find("ProtocolNamespace").value)
                                          for a in req.findall("AppProtocol")}
                await secc.send(f.payload_type, f.payload)

        async def down() -> None:
            while True:
                f = await secc.recv()
                schema = state["schema"]
                payload = f.payload
                try:
                    tree = get_codec(schema).decode(payload)
                except Exception:  # noqa: BLE001 - not ours to judge: pass it on
                    tree = None
                msg = body_message(tree) if isinstance(tree, Element) else None
                if msg is not None and schema == "sap":
                    sid = msg.find("SchemaID")
                    ns = state["offer"].get(sid.value) if sid is not None else None
                    state["schema"] = protocol_for_namespace(ns) or "sap" if ns else "sap"
                elif msg is not None:
                    n = state["seen"][msg.name] = state["seen"].get(msg.name, 0) + 1
                    if self.close_after is not None and self.close_after == (msg.name, n):
                        self.closed += 1
                        ev.close()
                        secc.close()
                        return
                    if self._change(msg):
                        assert tree is not None
                        payload = get_codec(schema).encode(tree)
                        self.rewritten += 1
                await ev.send(f.payload_type, payload)

        a, b = asyncio.ensure_future(up()), asyncio.ensure_future(down())
        try:
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (a, b):
                t.cancel()
            ev.close()  # no waiting for the peers' slow teardown (Josev lingers 5 s)
            secc.close()
