"""The protocol registry of the SupportedAppProtocol negotiation (``session/negotiation.py``).

A protocol plugs in with :func:`register` (keyed by :class:`~iso15118.facts.namespaces.AppProtocol`):
what it serves as an SECC and offers as an EVCC (:class:`Offer`: namespace, version, energy
family) and two factories that build its SECC / EVCC core right after the negotiation
(:class:`SeccHandover` / :class:`EvccHandover`).  The built cores keep the sans-IO interface of
``SeccSession`` / ``EvccSession`` (:class:`SeccCore` / :class:`EvccCore`).

-20 registers here.  DIN (``iso15118.session.din``) and -2 (``iso15118.session.iso2``) register
themselves when imported; ``iso15118.session.protocols`` imports every one of them, and the
negotiation imports that module.  A protocol package imports this module only (never the
negotiation: that would be an import circle).

    from iso15118.session.registry import Offer, ProtocolSupport, register
    register(ProtocolSupport(AppProtocol.ISO2, secc_offers, evcc_offers, build_secc, build_evcc))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from iso15118 import messages as m
from iso15118.facts.namespaces import NAMESPACE, AppProtocol, Family
from iso15118.session.events import Event

__all__ = [
    "ALL_PROTOCOLS",
    "Agreement",
    "EvccCore",
    "EvccHandover",
    "Offer",
    "ProtocolSupport",
    "SeccCore",
    "SeccHandover",
    "parse_protocols",
    "register",
    "registered",
    "support",
]

ALL_PROTOCOLS: tuple[AppProtocol, ...] = (AppProtocol.ISO20, AppProtocol.ISO2, AppProtocol.DIN)
"""Every protocol, in the EVCC's default preference order (-20 first)."""


@dataclass(frozen=True)
class Offer:
    """One SupportedAppProtocol entry a side can serve (SECC) or offers (EVCC)."""

    protocol: AppProtocol
    namespace: str
    major: int
    minor: int = 0
    family: Family | None = None
    """The energy family the namespace fixes (-20 AC / DC; DIN: DC), None when the protocol
    chooses it later (-2)."""


@dataclass(frozen=True)
class Agreement:
    """What the SupportedAppProtocol exchange decided."""

    offer: Offer
    schema_id: int
    response_code: m.AppProtocolResponseCode
    peer_minor: int

    @property
    def protocol(self) -> AppProtocol:
        return self.offer.protocol


class SeccCore(Protocol):
    """What the runner needs of an SECC core after the negotiation (``SeccSession`` has it)."""

    ended: bool
    ok: bool
    end_reason: str
    rx: int
    tx: int

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]: ...

    def handle_timer(self, now: float) -> list[Event]: ...

    def next_deadline(self) -> float | None: ...

    def connection_lost(self, now: float) -> list[Event]: ...


class EvccCore(SeccCore, Protocol):
    """An EVCC core has the same interface (it was started by the negotiator)."""


@dataclass(frozen=True)
class SeccHandover:
    """Everything an SECC core is built from, right after the SECC sent supportedAppProtocolRes."""

    agreement: Agreement
    controller: Any
    config: Any
    """The protocol's own configuration object (``SeccNegotiator(configs=...)``), None = defaults."""
    now: float
    clock: Callable[[], float]
    tls: bool
    peer_certificate: str | None


@dataclass(frozen=True)
class EvccHandover:
    """Everything an EVCC core is built from, right after supportedAppProtocolRes arrived."""

    agreement: Agreement
    controller: Any
    config: Any
    now: float
    started: float
    """When the negotiator started (V2G_EVCC_CommunicationSetup_Timeout runs from here)."""
    clock: Callable[[], float]
    tls: bool


@dataclass(frozen=True)
class ProtocolSupport:
    """How one protocol plugs into the negotiation."""

    protocol: AppProtocol
    secc_offers: Callable[[Any, bool], list[Offer]]
    """``(evse_controller, tls) -> entries this charger serves`` (empty: not served)."""
    evcc_offers: Callable[[Any, Any, bool], list[Offer]]
    """``(ev_controller, protocol config, tls) -> entries this vehicle offers``, most preferred first."""
    secc: Callable[[SeccHandover], SeccCore]
    """Build the SECC core; it expects the protocol's first request (SessionSetupReq) next."""
    evcc: Callable[[EvccHandover], tuple[EvccCore, list[Event]]]
    """Build the EVCC core; returns it with the events of its first request."""
    secc_config: Callable[[], Any] | None = None
    """A default SECC configuration.  A server builds it once and hands the same object to every
    connection's core: what outlives a connection (the paused sessions' store) lives in it."""


_REGISTRY: dict[AppProtocol, ProtocolSupport] = {}


def register(entry: ProtocolSupport) -> None:
    """Add (or replace) the support of one protocol."""
    _REGISTRY[entry.protocol] = entry


def support(protocol: AppProtocol) -> ProtocolSupport | None:
    """The registered support of ``protocol``, or None (not served by this build)."""
    return _REGISTRY.get(AppProtocol(protocol))


def registered() -> tuple[AppProtocol, ...]:
    """The protocols that have a support, in :data:`ALL_PROTOCOLS` order."""
    return tuple(p for p in ALL_PROTOCOLS if support(p) is not None)


def parse_protocols(values: Sequence[str] | None) -> tuple[AppProtocol, ...]:
    """``["din", "iso2,iso20"]`` -> protocols in the order given (CLI: repeatable or comma lists);
    ``iso20`` / ``20`` / ``-20`` all name -20.  None or empty -> every protocol, -20 first."""
    if not values:
        return ALL_PROTOCOLS
    aliases = {"din": AppProtocol.DIN, "iso2": AppProtocol.ISO2, "-2": AppProtocol.ISO2, "2": AppProtocol.ISO2,
               "iso20": AppProtocol.ISO20, "-20": AppProtocol.ISO20, "20": AppProtocol.ISO20}
    out: list[AppProtocol] = []
    for value in values:
        for part in value.split(","):
            key = part.strip().lower()
            if not key:
                continue
            if key not in aliases:
                raise ValueError(f"unknown protocol {part!r} (din, iso2, iso20)")
            if aliases[key] not in out:
                out.append(aliases[key])
    return tuple(out) or ALL_PROTOCOLS


# ---------------------------------------------------------------------------------- -20


def _families_of_evse(controller: Any) -> list[Family]:
    fams: list[Family] = []
    for offer in controller.energy_services():
        fam = offer.service.family
        if fam is not None and fam not in fams:
            fams.append(fam)
    return fams


def _iso20_secc_offers(controller: Any, tls: bool) -> list[Offer]:
    return [Offer(AppProtocol.ISO20, NAMESPACE[f], 1, 0, f) for f in _families_of_evse(controller)]


def _iso20_evcc_offers(controller: Any, config: Any, tls: bool) -> list[Offer]:
    from iso15118.session.services import EnergyService

    service = getattr(config, "service", None)
    services = [service] if service else controller.preferred_services()
    fams: list[Family] = []
    for svc in services:
        fam = EnergyService(svc).family
        if fam is not None and fam not in fams:
            fams.append(fam)
    return [Offer(AppProtocol.ISO20, NAMESPACE[f], 1, 0, f) for f in fams]


def _iso20_secc(h: SeccHandover) -> SeccCore:
    from iso15118.session.secc import SeccSession

    core = SeccSession(h.controller, h.config, now=h.now, clock=h.clock, tls=h.tls, peer_certificate=h.peer_certificate)
    assert h.agreement.offer.family is not None
    core.negotiated(h.agreement.offer.family, h.now)
    return core


def _iso20_evcc(h: EvccHandover) -> tuple[EvccCore, list[Event]]:
    from iso15118.session.evcc import EvccSession

    core = EvccSession(h.controller, h.config, clock=h.clock, tls=h.tls)
    assert h.agreement.offer.family is not None
    return core, core.negotiated(h.agreement.offer.family, h.now, h.started)


register(ProtocolSupport(AppProtocol.ISO20, _iso20_secc_offers, _iso20_evcc_offers, _iso20_secc, _iso20_evcc))


