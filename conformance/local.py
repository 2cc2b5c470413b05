"""Our own SECC as a SUT, started in-process on loopback (proofs, demos, ``--sut local:PROFILE``).

Each connection gets a fresh simulated charger of the profile (so concurrent cases do not
share contactors), and a :class:`~conformance.sut.CallableProbe` reports the output state of
the charger that served a given EVCCID -- the in-process equivalent of a lab power analyser.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.sut import CallableProbe, PowerState, SutEndpoint, SutInfo
from iso15118.session.runner import SeccServer, start_secc
from iso15118.session.secc import SeccConfig
from iso15118.session.services import EnergyService
from iso15118.sim import make_evse


@dataclass
class LocalSecc:
    """A running in-process SECC and the chargers it created."""

    server: SeccServer
    profile: str
    tls: bool
    controllers: list[Any] = field(default_factory=list)
    by_evcc: dict[str, Any] = field(default_factory=dict)
    cores: dict[str, Any] = field(default_factory=dict)
    watcher: Any = None

    async def _watch(self) -> None:
        """Map EVCCIDs to the chargers serving them (sessions end and vanish from ``active``)."""
        import asyncio

        while True:
            for core in list(self.server.active):
                if core.evcc_id and core.evcc_id not in self.by_evcc:
                    self.by_evcc[core.evcc_id] = core.controller
                    self.cores[core.evcc_id] = core
            await asyncio.sleep(0.01)

    async def trigger(self, evcc_id: str, event: str) -> bool:
        """The lab control of the in-process SECC (grid outage, EVSE notifications)."""
        ctrl = self.controller_for(evcc_id)
        if ctrl is None:
            return False
        inner = getattr(ctrl, "inner", ctrl)
        import time

        if event == "grid_outage":
            inner.set_grid_outage(time.monotonic(), True)
        elif event == "grid_restored":
            inner.set_grid_outage(time.monotonic(), False)
        elif event.startswith("notify:"):
            kind = event.split(":", 1)[1]
            core = self.cores.get(evcc_id)
            if core is None:
                return False
            core.notify(kind, 0 if kind == "Terminate" else 60)
        else:
            return False
        return True

    def controller_for(self, evcc_id: str) -> Any:
        ctrl = self.by_evcc.get(evcc_id)
        if ctrl is None:
            for core in list(self.server.active):
                if core.evcc_id == evcc_id:
                    ctrl = self.by_evcc[evcc_id] = core.controller
        return ctrl

    def probe_state(self, evcc_id: str) -> PowerState | None:
        ctrl = self.controller_for(evcc_id)
        if ctrl is None:
            return None
        inner = getattr(ctrl, "inner", ctrl)
        return PowerState(float(inner.power_w), bool(inner.contactors_closed), float(inner.meter.charged_wh))

    def endpoint(self, *, pki_dir: Any = None, jobs: int = 4, probe: bool = True) -> SutEndpoint:
        services = {o.service for o in make_evse(self.profile).energy_services()}
        info = SutInfo(set(services), probed=False)
        info.features.update(served_protocols(self.server.protocols, self.tls))
        return SutEndpoint(
            "::1", self.server.port, self.tls, pki_dir, name=f"local:{self.profile}{'+tls' if self.tls else ''}",
            probe=CallableProbe(self.probe_state) if probe else None, control=self if probe else None, info=info,
            jobs=jobs,
        )

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        self.server.close()


async def start_local_secc(
    profile: str = "wall-connector",
    *,
    tls: ssl.SSLContext | None = None,
    config: SeccConfig | None = None,
    wrap: Callable[[Any], Any] | None = None,
    evse_kwargs: dict[str, Any] | None = None,
    configs: dict[Any, Any] | None = None,
) -> LocalSecc:
    """Start our SECC with the given simulator profile on ``[::1]`` and a free port.

    ``wrap(controller) -> controller`` lets fault-seeding tests put a defect around each
    charger; ``configs``: the other protocols' core configurations (-2 Plug & Charge)."""
    holder: dict[str, LocalSecc] = {}

    def factory() -> Any:
        ctrl: Any = make_evse(profile, **(evse_kwargs or {}))
        if wrap is not None:
            ctrl = wrap(ctrl)
        holder["l"].controllers.append(ctrl)
        return ctrl

    server = await start_secc(factory, "::1", 0, tls, config=config or SeccConfig(), configs=configs)
    loc = LocalSecc(server, profile, tls is not None)
    holder["l"] = loc
    import asyncio

    loc.watcher = asyncio.get_running_loop().create_task(loc._watch())
    return loc


def served_protocols(protocols: Any, tls: bool) -> dict[str, bool]:
    """PICS features ``din`` / ``iso2`` of our SECC: the protocols it serves (registered cores,
    restricted by ``protocols``; DIN never over TLS)."""
    from iso15118.facts.namespaces import AppProtocol
    from iso15118.facts.transport import carries
    from iso15118.session import negotiation as neg

    out = {}
    for proto in (AppProtocol.DIN, AppProtocol.ISO2):
        served = neg.support(proto) is not None and (protocols is None or proto in protocols)
        out[proto.value] = served and carries(proto, tls)  # DIN never over TLS (facts.transport)
    return out


def unserved(tc: Any) -> bool:
    """A DIN / -2 case (needs ``din`` / ``iso2``) for a protocol our stack does not have (yet): our SECC
    does not serve it, our EVCC does not offer it (one registry for both roles), so the case is
    outside our proofs (never counted)."""
    served = served_protocols(None, False)
    return any(p in tc.needs and not ok for p, ok in served.items())


def profile_services(profile: str) -> set[EnergyService]:
    return {o.service for o in make_evse(profile).energy_services()}
