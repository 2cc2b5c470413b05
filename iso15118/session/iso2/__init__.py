"""ISO 15118-2 sessions (EIM, AC and DC), both roles: sans-IO cores on the -2 rule table.

=============  ==================================================================================
``rules``      the one table of legal -2 sequences both cores obey; message specs and timers
               (values from ``iso15118.facts``)
``parts``      message parts both cores build: envelope, PhysicalValues, energy transfer modes,
               status records, minimal FAILED responses
``secc``       :class:`Iso2SeccSession` (+ :class:`Iso2SeccConfig`)
``evcc``       :class:`Iso2EvccSession` (+ :class:`Iso2EvccConfig`)
=============  ==================================================================================

Importing this package registers -2 with :mod:`iso15118.session.registry` (the negotiation imports
it through ``iso15118.session.protocols``): an SECC whose
controller has an AC or DC service serves ``urn:iso:15118:2:2013:MsgDef`` 2.0, an EV with an
AC or DC service offers it; after SupportedAppProtocol the negotiator builds these cores
(``configs={AppProtocol.ISO2: Iso2SeccConfig(...) / Iso2EvccConfig(...)}``).
"""

from __future__ import annotations

from typing import Any

from iso15118.facts.namespaces import NS_ISO2, AppProtocol
from iso15118.session import registry as reg
from iso15118.session.events import Event
from iso15118.session.iso2.evcc import Iso2EvccConfig, Iso2EvccSession
from iso15118.session.iso2.secc import Iso2SeccConfig, Iso2SeccSession

__all__ = ["ISO2_OFFER", "Iso2EvccConfig", "Iso2EvccSession", "Iso2SeccConfig", "Iso2SeccSession"]

ISO2_OFFER = reg.Offer(AppProtocol.ISO2, NS_ISO2, 2, 0, None)
"""The -2 SupportedAppProtocol entry (major 2, minor 0: DIN/-2 digest §1.2); the family is chosen
later, by the requested energy transfer mode."""


def _secc_offers(controller: Any, tls: bool) -> list[reg.Offer]:
    fams = {o.service.family for o in controller.energy_services()}
    return [ISO2_OFFER] if fams - {None} else []


def _evcc_offers(controller: Any, config: Any, tls: bool) -> list[reg.Offer]:
    wanted = getattr(config, "service", None)
    if wanted is not None and getattr(wanted, "bpt", False):
        return []  # asked for bidirectional power: -2 cannot give it (V2H stays -20 only)
    family = getattr(config, "family", None)
    fams = {s.family for s in controller.preferred_services()} - {None}
    return [ISO2_OFFER] if fams and (family is None or family in fams) else []


def _secc(h: reg.SeccHandover) -> Iso2SeccSession:
    config = h.config if isinstance(h.config, Iso2SeccConfig) else None
    return Iso2SeccSession(h.controller, config, now=h.now, clock=h.clock, tls=h.tls,
                           peer_certificate=h.peer_certificate)


def _evcc(h: reg.EvccHandover) -> tuple[Iso2EvccSession, list[Event]]:
    config = h.config if isinstance(h.config, Iso2EvccConfig) else None
    core = Iso2EvccSession(h.controller, config, clock=h.clock, tls=h.tls)
    return core, core.negotiated(h.now, h.started)


reg.register(reg.ProtocolSupport(AppProtocol.ISO2, _secc_offers, _evcc_offers, _secc, _evcc, Iso2SeccConfig))
