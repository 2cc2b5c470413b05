"""SupportedAppProtocol negotiation and protocol dispatch (sans-IO, like ``secc.py`` / ``evcc.py``).

    secc = SeccNegotiator(evse, now=now, clock=time.time)          # serves every registered protocol
    events = secc.receive(payload_type, payload, now)               # SAP answered, then the chosen core
    evcc = EvccNegotiator(ev, protocols=(AppProtocol.DIN,), clock=time.time)
    events = evcc.start(now)                                        # [SendMessage(supportedAppProtocolReq)]

Both wrappers keep the cores' interface (``receive``, ``handle_timer``, ``next_deadline``,
``connection_lost``, ``start`` for the EVCC): the runner, the memory pair and the CLI drive them
like any core.  After the SupportedAppProtocol exchange every call goes to the core of the
protocol agreed on, built by that protocol's :class:`ProtocolSupport` from the
:data:`registry <support>`.

Registry
--------

A protocol plugs in with :func:`register` (keyed by :class:`~iso15118.facts.namespaces.AppProtocol`):
what it serves as an SECC and offers as an EVCC (:class:`Offer`: namespace, version, energy
family) and two factories that build its SECC / EVCC core right after the negotiation
(:class:`SeccHandover` / :class:`EvccHandover`).  -20 is registered here; DIN and -2 live in the
packages ``iso15118.session.din`` / ``iso15118.session.iso2``, imported on first use (a missing
package means the protocol is not served).

SECC rule (DIN/-2 digest §1.3, the Josev / RISE-V2G reading): the EV's entries sorted by Priority
(stable: on a tie the first listed wins), the first whose namespace *and* major version the
charger serves wins; ``OK_SuccessfulNegotiation`` when the minor version equals ours, else
``OK_SuccessfulNegotiationWithMinorDeviation``; nothing in common -> ``Failed_NoNegotiation``
without SchemaID and the session ends.  DIN is never served or offered over TLS ([V2G-DC-618]).
An undecodable request, or anything but supportedAppProtocolReq first, ends the session without
an answer (what Josev and EVerest do).

EVCC rule: one entry per protocol in the configured order (SchemaID and Priority both counting
from 1, as Josev); the answer is acted on by its SchemaID (an SECC may ignore priorities), an
unknown SchemaID or ``Failed_NoNegotiation`` ends the session.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from iso15118 import messages as m
from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import NAMESPACE, NS_DIN, NS_ISO2, AppProtocol, Family
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import TIMERS, Timers, message_timing
from iso15118.session.events import (
    Event,
    MessageReceived,
    ProtocolError,
    SendMessage,
    SessionEnded,
)

log = logging.getLogger(__name__)

__all__ = [
    "ALL_PROTOCOLS",
    "Agreement",
    "EvccCore",
    "EvccHandover",
    "EvccNegotiator",
    "NS_DIN",
    "NS_ISO2",
    "Offer",
    "ProtocolSupport",
    "SeccCore",
    "SeccHandover",
    "SeccNegotiator",
    "choose",
    "parse_protocols",
    "register",
    "registered",
    "support",
]

APC = m.AppProtocolResponseCode

ALL_PROTOCOLS: tuple[AppProtocol, ...] = (AppProtocol.ISO20, AppProtocol.ISO2, AppProtocol.DIN)
"""Every protocol, in the EVCC's default preference order (-20 first)."""


# ---------------------------------------------------------------------------------- registry


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


_REGISTRY: dict[AppProtocol, ProtocolSupport] = {}

_PROVIDERS: dict[AppProtocol, str] = {
    AppProtocol.DIN: "iso15118.session.din",
    AppProtocol.ISO2: "iso15118.session.iso2",
}
"""Packages that register a protocol when imported (looked up on first use)."""


def register(entry: ProtocolSupport) -> None:
    """Add (or replace) the support of one protocol."""
    _REGISTRY[entry.protocol] = entry


def support(protocol: AppProtocol) -> ProtocolSupport | None:
    """The registered support of ``protocol`` (importing its package on first use), or None."""
    protocol = AppProtocol(protocol)
    if protocol not in _REGISTRY and protocol in _PROVIDERS:
        name = _PROVIDERS[protocol]
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the package exists but something it imports does not: a real error
    return _REGISTRY.get(protocol)


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


def choose(entries: Sequence[m.AppProtocol], offers: Sequence[Offer]) -> Agreement | None:
    """The SECC's choice: the EV's entries by Priority (stable), the first whose namespace and
    major version are served; None when nothing matches."""
    served = {(o.namespace, o.major): o for o in offers}
    for entry in sorted(entries, key=lambda e: e.priority):
        offer = served.get((entry.protocol_namespace, entry.version_number_major))
        if offer is None:
            continue
        code = (
            APC.OK_SUCCESSFUL_NEGOTIATION
            if entry.version_number_minor == offer.minor
            else APC.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION
        )
        return Agreement(offer, entry.schema_id, code, entry.version_number_minor)
    return None


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


# ---------------------------------------------------------------------------------- shared plumbing


def _element(msg: Any) -> str:
    el = getattr(msg, "ELEMENT", None)
    return str(el[1]) if el else type(msg).__name__


class _Negotiator:
    """What both wrappers share: counters, the hand-over to ``core`` and delegation to it."""

    core: Any

    def __init__(self, controller: Any, timers: Timers) -> None:
        self.controller = controller
        self.timers = timers
        self.core = None
        self.agreement: Agreement | None = None
        self._ended = False
        self._ok = False
        self._reason = ""
        self._rx = 0
        self._tx = 0
        self._deadline: float | None = None
        self._deadline_reason = ""

    # the runner's view of the session, whichever core runs it
    @property
    def protocol(self) -> AppProtocol | None:
        return self.agreement.protocol if self.agreement is not None else None

    @property
    def ended(self) -> bool:
        return bool(self.core.ended) if self.core is not None else self._ended

    @property
    def ok(self) -> bool:
        return bool(self.core.ok) if self.core is not None else self._ok

    @property
    def end_reason(self) -> str:
        return str(self.core.end_reason) if self.core is not None else self._reason

    @property
    def rx(self) -> int:
        return self._rx + (int(self.core.rx) if self.core is not None else 0)

    @property
    def tx(self) -> int:
        return self._tx + (int(self.core.tx) if self.core is not None else 0)

    @property
    def authorization(self) -> Any:
        return getattr(self.core, "authorization", None)

    @property
    def evcc_id(self) -> str:
        return str(getattr(self.core, "evcc_id", "") or "")

    @property
    def state(self) -> Any:
        return getattr(self.core, "state", None)

    def next_deadline(self) -> float | None:
        if self.core is not None:
            return self.core.next_deadline()  # type: ignore[no-any-return]
        return None if self._ended else self._deadline

    def connection_lost(self, now: float) -> list[Event]:
        if self.core is not None:
            return self.core.connection_lost(now)  # type: ignore[no-any-return]
        if self._ended:
            return []
        return self._end(now, "connection lost before the protocol was negotiated", ok=False)

    def _end(self, now: float, reason: str, ok: bool, close_after: float = 0.0) -> list[Event]:
        self._ended, self._ok, self._reason = True, ok, reason
        self._deadline = None
        try:
            self.controller.session_ended(now, reason, ok)
        except Exception:  # pragma: no cover - a controller bug must not hide the end
            log.exception("controller.session_ended failed")
        return [SessionEnded(reason, ok, close_after=close_after)]

    def _abort(self, now: float, code: str, detail: str) -> list[Event]:
        return [ProtocolError(code, detail), *self._end(now, f"{code}: {detail}", ok=False)]


# ---------------------------------------------------------------------------------- SECC


class SeccNegotiator(_Negotiator):
    """SECC side: answers supportedAppProtocolReq, then hands the connection to the chosen core.

    ``protocols``: what this charger serves (None: every registered protocol); ``configs``:
    per-protocol configuration objects handed to the cores (``{AppProtocol.ISO20: SeccConfig(...)}``).
    """

    def __init__(
        self,
        controller: Any,
        *,
        protocols: Sequence[AppProtocol] | None = None,
        configs: Mapping[AppProtocol, Any] | None = None,
        now: float = 0.0,
        clock: Callable[[], float],
        tls: bool = False,
        peer_certificate: str | None = None,
        timers: Timers = TIMERS,
    ) -> None:
        super().__init__(controller, timers)
        self.protocols = tuple(AppProtocol(p) for p in (protocols or ALL_PROTOCOLS))
        self.configs = dict(configs or {})
        self._clock = clock
        self.tls = tls
        self.peer_certificate = peer_certificate
        self._deadline = now + timers.secc_first_message
        self._deadline_reason = "no supportedAppProtocolReq"
        self._pending_notes: list[tuple[str, int]] = []

    def offers(self) -> list[Offer]:
        """The entries this charger serves on this connection."""
        out: list[Offer] = []
        for proto in self.protocols:
            sup = support(proto)
            if sup is not None:
                out += sup.secc_offers(self.controller, self.tls)
        return out

    def notify(self, kind: str, max_delay: int = 0) -> None:
        """Forwarded to the core (queued until it exists)."""
        if self.core is not None and hasattr(self.core, "notify"):
            self.core.notify(kind, max_delay)
        else:
            self._pending_notes.append((kind, max_delay))

    def handle_timer(self, now: float) -> list[Event]:
        if self.core is not None:
            return self.core.handle_timer(now)  # type: ignore[no-any-return]
        if self._ended or self._deadline is None or now < self._deadline:
            return []
        return self._abort(now, "Timeout", self._deadline_reason)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.core is not None:
            return self.core.receive(payload_type, payload, now)  # type: ignore[no-any-return]
        if self._ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self._rx += 1
        if payload_type != PayloadType.SAP:
            return self._abort(now, "WrongPayloadType", f"payload type 0x{payload_type:04x} before supportedAppProtocolReq")
        try:
            req = m.decode(payload, "sap")
        except (ExiError, ValueError, KeyError) as exc:
            return self._abort(now, "DecodeError", str(exc))
        events: list[Event] = [MessageReceived(payload_type, req, _element(req))]
        if not isinstance(req, m.SupportedAppProtocolReq):
            return events + self._abort(now, "UnexpectedMessage", f"{_element(req)} is not supportedAppProtocolReq")
        agreement = choose(req.app_protocol, self.offers())
        if agreement is None:
            res = m.SupportedAppProtocolRes(response_code=APC.FAILED_NO_NEGOTIATION)
            events += self._send(res)
            offered = ", ".join(f"{e.protocol_namespace} {e.version_number_major}.{e.version_number_minor}"
                                for e in req.app_protocol)
            events.append(ProtocolError(APC.FAILED_NO_NEGOTIATION.value, f"nothing in common with {offered}"))
            return events + self._end(now, f"{APC.FAILED_NO_NEGOTIATION.value}: no common protocol", ok=False,
                                      close_after=self.timers.close_delay)
        self.agreement = agreement
        events += self._send(m.SupportedAppProtocolRes(response_code=agreement.response_code, schema_id=agreement.schema_id))
        sup = support(agreement.protocol)
        assert sup is not None
        self.core = sup.secc(
            SeccHandover(agreement, self.controller, self.configs.get(agreement.protocol), now, self._clock, self.tls,
                         self.peer_certificate)
        )
        for kind, delay in self._pending_notes:
            self.notify(kind, delay)
        self._pending_notes.clear()
        return events

    def _send(self, res: m.SupportedAppProtocolRes) -> list[Event]:
        self._tx += 1
        return [SendMessage(int(PayloadType.SAP), m.encode(res), res)]


# ---------------------------------------------------------------------------------- EVCC


class EvccNegotiator(_Negotiator):
    """EVCC side: offers ``protocols`` (in that order of preference) and continues with the core
    of the protocol the SECC chose.  ``configs``: per-protocol configuration (``{AppProtocol.ISO20:
    EvccConfig(...)}``); ``timeout_scale`` relaxes the SAP timeout like ``EvccConfig.timeout_scale``."""

    def __init__(
        self,
        controller: Any,
        *,
        protocols: Sequence[AppProtocol] | None = None,
        configs: Mapping[AppProtocol, Any] | None = None,
        clock: Callable[[], float],
        tls: bool = False,
        timers: Timers = TIMERS,
        timeout_scale: float = 1.0,
    ) -> None:
        super().__init__(controller, timers)
        self.protocols = tuple(AppProtocol(p) for p in (protocols or ALL_PROTOCOLS))
        self.configs = dict(configs or {})
        self._clock = clock
        self.tls = tls
        self.timeout_scale = timeout_scale
        self.offered: dict[int, Offer] = {}
        self._started = 0.0
        self._stop_requested: Any = None

    # EVCC-only views the runner reads
    @property
    def paused_session_id(self) -> bytes | None:
        return getattr(self.core, "paused_session_id", None)

    @property
    def loops(self) -> int:
        return int(getattr(self.core, "loops", 0) or 0)

    @property
    def authorized_at(self) -> float | None:
        return getattr(self.core, "authorized_at", None)

    @property
    def contract(self) -> Any:
        return getattr(self.core, "contract", None)

    def request_stop(self, kind: Any = "Terminate") -> None:
        if self.core is not None and hasattr(self.core, "request_stop"):
            self.core.request_stop(kind)
        else:
            self._stop_requested = kind

    def offers(self) -> list[Offer]:
        out: list[Offer] = []
        for proto in self.protocols:
            sup = support(proto)
            if sup is not None:
                out += sup.evcc_offers(self.controller, self.configs.get(proto), self.tls)
        return out

    def start(self, now: float) -> list[Event]:
        self._started = now
        offers = self.offers()
        if not offers:
            wanted = ", ".join(p.value for p in self.protocols)
            return self._abort(now, "NoProtocol", f"the vehicle offers nothing of {wanted} on this connection")
        entries = []
        for i, offer in enumerate(offers, start=1):
            self.offered[i] = offer
            entries.append(m.AppProtocol(protocol_namespace=offer.namespace, version_number_major=offer.major,
                                         version_number_minor=offer.minor, schema_id=i, priority=i))
        req = m.SupportedAppProtocolReq(app_protocol=entries)
        timeout = message_timing(None, "supportedAppProtocolReq").evcc_timeout * self.timeout_scale
        self._deadline = now + timeout
        self._deadline_reason = f"no supportedAppProtocolRes within {timeout:g} s"
        self._tx += 1
        return [SendMessage(int(PayloadType.SAP), m.encode(req), req)]

    def handle_timer(self, now: float) -> list[Event]:
        if self.core is not None:
            return self.core.handle_timer(now)  # type: ignore[no-any-return]
        if self._ended or self._deadline is None or now < self._deadline:
            return []
        return self._abort(now, "Timeout", self._deadline_reason)

    def receive(self, payload_type: int, payload: bytes, now: float) -> list[Event]:
        if self.core is not None:
            return self.core.receive(payload_type, payload, now)  # type: ignore[no-any-return]
        if self._ended:
            return [ProtocolError("AfterEnd", f"frame 0x{payload_type:04x} after the session ended")]
        self._rx += 1
        if payload_type != PayloadType.SAP:
            return self._abort(now, "UnexpectedResponse", f"payload type 0x{payload_type:04x} while waiting for supportedAppProtocolRes")
        try:
            res = m.decode(payload, "sap")
        except (ExiError, ValueError, KeyError) as exc:
            return self._abort(now, "DecodeError", str(exc))
        events: list[Event] = [MessageReceived(payload_type, res, _element(res))]
        if not isinstance(res, m.SupportedAppProtocolRes):
            return events + self._abort(now, "UnexpectedResponse", f"{_element(res)} while waiting for supportedAppProtocolRes")
        if res.response_code is APC.FAILED_NO_NEGOTIATION:
            return events + self._abort(now, APC.FAILED_NO_NEGOTIATION.value, "the SECC serves none of the offered protocols")
        offer = self.offered.get(res.schema_id) if res.schema_id is not None else None
        if offer is None:
            return events + self._abort(now, "UnexpectedResponse", f"SchemaID {res.schema_id} was not offered")
        self.agreement = Agreement(offer, res.schema_id or 0, res.response_code, offer.minor)
        self._deadline = None
        sup = support(offer.protocol)
        assert sup is not None
        self.core, first = sup.evcc(
            EvccHandover(self.agreement, self.controller, self.configs.get(offer.protocol), now, self._started,
                         self._clock, self.tls)
        )
        if self._stop_requested is not None:
            self.request_stop(self._stop_requested)
        return events + first
