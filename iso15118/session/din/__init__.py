"""DIN SPEC 70121 sessions (DC, EIM): the rule table both roles obey (``rules``), the sans-IO SECC
(``secc``) and EVCC (``evcc``) cores, and their registration with the SupportedAppProtocol
negotiation (``iso15118.session.registry``).

The negotiation builds them; on their own::

    from iso15118.session.din import DinSeccSession, DinEvccSession
"""

from __future__ import annotations

from typing import Any

from iso15118.facts.namespaces import NS_DIN, AppProtocol, Family
from iso15118.session.din.evcc import DinEvccConfig, DinEvccSession
from iso15118.session.din.secc import DinSeccConfig, DinSeccSession
from iso15118.session.events import Event
from iso15118.session.registry import EvccCore, EvccHandover, Offer, ProtocolSupport, SeccCore, SeccHandover, register

__all__ = ["DIN_OFFER", "DinEvccConfig", "DinEvccSession", "DinSeccConfig", "DinSeccSession"]

DIN_OFFER = Offer(AppProtocol.DIN, NS_DIN, 2, 0, Family.DC)
"""DIN's SupportedAppProtocol entry: urn:din:70121:2012:MsgDef, version 2.0 (DIN/-2 digest §1.2)."""


def _has_dc(services: Any) -> bool:
    return any(getattr(s, "family", None) is Family.DC for s in services)


def _secc_offers(controller: Any, tls: bool) -> list[Offer]:
    # DC chargers only (DIN runs over plain TCP only: the negotiation asks facts.transport)
    if not _has_dc(o.service for o in controller.energy_services()):
        return []
    return [DIN_OFFER]


def _evcc_offers(controller: Any, config: Any, tls: bool) -> list[Offer]:
    # a DC vehicle offers DIN for charging; never for bidirectional power (V2H stays -20: an EV
    # asked for a BPT service offers -20 only); never over TLS (facts.transport, in the negotiation)
    wanted = getattr(config, "service", None)
    if wanted is not None and getattr(wanted, "bpt", False):
        return []
    return [DIN_OFFER] if _has_dc(controller.preferred_services()) else []


def _secc(h: SeccHandover) -> SeccCore:
    config = h.config if isinstance(h.config, DinSeccConfig) else None
    return DinSeccSession(h.controller, config, now=h.now, clock=h.clock, tls=h.tls, peer_certificate=h.peer_certificate)


def _evcc(h: EvccHandover) -> tuple[EvccCore, list[Event]]:
    config = h.config if isinstance(h.config, DinEvccConfig) else None
    core = DinEvccSession(h.controller, config, clock=h.clock, tls=h.tls)
    return core, core.begin(h.now, h.started)


register(ProtocolSupport(AppProtocol.DIN, _secc_offers, _evcc_offers, _secc, _evcc))
