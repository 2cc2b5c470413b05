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

``iso15118.session.registry`` holds what each protocol plugs in (:class:`ProtocolSupport`, keyed
by :class:`~iso15118.facts.namespaces.AppProtocol`; -20 registers there), and
``iso15118.session.protocols`` imports the packages that register the others (DIN, -2).

SECC rule (DIN/-2 digest §1.3, the Josev / RISE-V2G reading): the EV's entries sorted by Priority
(stable: on a tie the first listed wins), the first whose namespace *and* major version the
charger serves wins; ``OK_SuccessfulNegotiation`` when the minor version equals ours, else
``OK_SuccessfulNegotiationWithMinorDeviation``; nothing in common -> ``Failed_NoNegotiation``
without SchemaID and the session ends.

Both sides serve / offer only what the connection carries (``iso15118.facts.transport``): the
TLS handshake is over before SupportedAppProtocolReq, and the driver hands its negotiated
version in (``tls_version``): DIN never over TLS ([V2G-DC-618]), -2 over TCP or TLS 1.2, -20
over TCP or TLS 1.3.  Over TLS 1.2 an SECC does not serve -20 and an EVCC does not offer it, so
a library caller's TLS 1.2 context alone makes the session -2.
An undecodable request, or anything but supportedAppProtocolReq first, ends the session without
an answer (what Josev and EVerest do).

EVCC rule: one entry per protocol in the configured order (SchemaID and Priority both counting
from 1, as Josev); the answer is acted on by its SchemaID (an SECC may ignore priorities), an
unknown SchemaID or ``Failed_NoNegotiation`` ends the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from iso15118 import messages as m
from iso15118.exi.errors import ExiError
from iso15118.facts.namespaces import AppProtocol
from iso15118.facts.payload import PayloadType
from iso15118.facts.timing import TIMERS, Timers, message_timing
from iso15118.facts.transport import carries
from iso15118.session.events import (
    Event,
    LocalFault,
    MessageReceived,
    ProtocolError,
    SendMessage,
    SessionEnded,
)
from iso15118.session.registry import (
    ALL_PROTOCOLS,
    Agreement,
    EvccCore,
    EvccHandover,
    Offer,
    ProtocolSupport,
    SeccCore,
    SeccHandover,
    parse_protocols,
    register,
    registered,
    support,
)

log = logging.getLogger(__name__)

__all__ = [
    "ALL_PROTOCOLS",
    "Agreement",
    "EvccCore",
    "EvccHandover",
    "EvccNegotiator",
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


# ---------------------------------------------------------------------------------- shared plumbing


def _element(msg: Any) -> str:
    el = getattr(msg, "ELEMENT", None)
    return str(el[1]) if el else type(msg).__name__


class _Negotiator:
    """What both wrappers share: counters, the hand-over to ``core`` and delegation to it."""

    core: Any

    def __init__(self, controller: Any, timers: Timers,
                 overrides: Mapping[AppProtocol, ProtocolSupport] | None = None) -> None:
        self.controller = controller
        self.overrides = dict(overrides or {})
        """Per-connection replacements of registered supports (the tester's defective cores)."""
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

    tls = False
    tls_version: str | None = None

    def _support(self, protocol: AppProtocol) -> ProtocolSupport | None:
        return self.overrides.get(protocol) or support(protocol)

    def _carried(self, protocol: AppProtocol) -> bool:
        """Does this connection carry ``protocol`` (``facts.transport``: TCP / TLS version)?"""
        return carries(protocol, self.tls, self.tls_version)

    def _transport(self) -> str:
        return self.tls_version or ("TLS" if self.tls else "TCP")

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
        tls_version: str | None = None,
        peer_certificate: str | None = None,
        timers: Timers = TIMERS,
        overrides: Mapping[AppProtocol, ProtocolSupport] | None = None,
    ) -> None:
        super().__init__(controller, timers, overrides)
        self.protocols = tuple(AppProtocol(p) for p in (protocols or ALL_PROTOCOLS))
        self.configs = dict(configs or {})
        self._clock = clock
        self.tls = tls or tls_version is not None
        self.tls_version = tls_version
        """The connection's negotiated TLS version (``SSLObject.version()``), None on TCP or when
        the driver does not say; it decides which protocols are served (``facts.transport``)."""
        self.peer_certificate = peer_certificate
        self._deadline = now + timers.secc_first_message
        self._deadline_reason = "no supportedAppProtocolReq"
        self._pending_notes: list[tuple[str, int]] = []

    def offers(self) -> list[Offer]:
        """The entries this charger serves on this connection (what it carries, ``facts.transport``)."""
        out: list[Offer] = []
        for proto in self.protocols:
            sup = self._support(proto)
            if sup is not None and self._carried(proto):
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
            events.append(ProtocolError(APC.FAILED_NO_NEGOTIATION.value,
                                        f"nothing in common with {offered} over {self._transport()}"))
            return events + self._end(now, f"{APC.FAILED_NO_NEGOTIATION.value}: no common protocol", ok=False,
                                      close_after=self.timers.close_delay)
        self.agreement = agreement
        events += self._send(m.SupportedAppProtocolRes(response_code=agreement.response_code, schema_id=agreement.schema_id))
        sup = self._support(agreement.protocol)
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
        tls_version: str | None = None,
        timers: Timers = TIMERS,
        timeout_scale: float = 1.0,
        overrides: Mapping[AppProtocol, ProtocolSupport] | None = None,
    ) -> None:
        super().__init__(controller, timers, overrides)
        self.protocols = tuple(AppProtocol(p) for p in (protocols or ALL_PROTOCOLS))
        self.configs = dict(configs or {})
        self._clock = clock
        self.tls = tls or tls_version is not None
        self.tls_version = tls_version
        """The connection's negotiated TLS version; only what it carries is offered (``facts.transport``)."""
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
        """What the vehicle offers.  A service asked for in the -20 configuration
        (``EvccConfig.service``) is the user's choice for the whole session: a BPT service
        (V2H / V2G) exists only in -20, so nothing else is offered with it; another protocol's
        entry of the other energy family (DIN is DC) is left out."""
        wanted = getattr(self.configs.get(AppProtocol.ISO20), "service", None)
        out: list[Offer] = []
        for proto in self.protocols:
            sup = self._support(proto)
            if sup is None or not self._carried(proto):
                continue
            if proto is not AppProtocol.ISO20 and wanted is not None and wanted.bpt:
                continue
            for offer in sup.evcc_offers(self.controller, self.configs.get(proto), self.tls):
                if proto is AppProtocol.ISO20 or wanted is None or offer.family in (None, wanted.family):
                    out.append(offer)
        return out

    def start(self, now: float) -> list[Event]:
        self._started = now
        wanted = getattr(self.configs.get(AppProtocol.ISO20), "service", None)
        if wanted is not None and wanted not in self.controller.preferred_services():
            # e.g. AC_BPT on a vehicle without bidirectional power transfer: nothing is sent
            names = ", ".join(s.name for s in self.controller.preferred_services())
            detail = f"the vehicle does not offer {wanted.name} (it offers {names})"
            return [LocalFault(detail), *self._end(now, f"EVCC fault: {detail}", ok=False)]
        offers = self.offers()
        if not offers:
            wanted = ", ".join(p.value for p in self.protocols)
            return self._abort(now, "NoProtocol", f"the vehicle offers nothing of {wanted} over {self._transport()}")
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
        sup = self._support(offer.protocol)
        assert sup is not None
        self.core, first = sup.evcc(
            EvccHandover(self.agreement, self.controller, self.configs.get(offer.protocol), now, self._started,
                         self._clock, self.tls)
        )
        if self._stop_requested is not None:
            self.request_stop(self._stop_requested)
        return events + first


# Last: the protocol packages register themselves on import (DIN, -2).  A package that still
# imports this module instead of ``registry`` finds every name above already defined.
from iso15118.session import protocols as _protocols  # noqa: E402, F401
