"""Which session protocol runs over which transport: plain TCP or TLS of which version.

=========  ==================  ================================================================
protocol   carried over        why
=========  ==================  ================================================================
DIN        TCP only            DIN SPEC 70121 has no TLS ([V2G-DC-618])
-2         TCP, TLS 1.2        ISO 15118-2 specifies TLS 1.2 and its P-256 / ECDSA-SHA256 PKI
                               (DIN/-2 digest §3.11, §3.12); EVerest turns TLS 1.3 off for -2
-20        TCP, TLS 1.3        ISO 15118-20 requires TLS 1.3 (-20 digest §1.3); plain TCP is
                               what both public implementations still allow
=========  ==================  ================================================================

-2 over TLS 1.3 is refused, a choice: -2 (2014) names TLS 1.2 only, its cipher suites
(ECDHE-ECDSA-AES128-SHA256) are TLS 1.2 suites, and a vehicle whose handshake reached TLS 1.3
is a -20 vehicle (the SECC learns the vehicle's TLS version before its SupportedAppProtocolReq).
Josev lets -2 run over TLS 1.3 when its -20 TLS 1.3 is switched on; EVerest does not, and
neither do we.

The TLS handshake ends before SupportedAppProtocolReq, so the negotiation knows the version:
the SECC serves, and the EVCC offers, only what the connection carries
(``iso15118.session.negotiation``); the tester and the capture decoder judge a session by the
same table.  Versions are named as ``ssl.SSLObject.version()`` names them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from iso15118.facts.namespaces import AppProtocol

__all__ = ["TRANSPORTS", "Transport", "carries", "transport_of"]


class Transport(str, enum.Enum):
    """How a V2G session's TCP connection is protected (the value: ``SSLObject.version()``)."""

    TCP = "TCP"
    TLS12 = "TLSv1.2"
    TLS13 = "TLSv1.3"


TRANSPORTS: Mapping[AppProtocol, frozenset[Transport]] = {
    AppProtocol.DIN: frozenset({Transport.TCP}),
    AppProtocol.ISO2: frozenset({Transport.TCP, Transport.TLS12}),
    AppProtocol.ISO20: frozenset({Transport.TCP, Transport.TLS13}),
}
"""The transports each protocol may run over."""


def transport_of(tls_version: str | None) -> Transport | None:
    """``None`` (no TLS) -> TCP; ``"TLSv1.2"`` / ``"TLSv1.3"`` -> that; any other version
    (TLS 1.1 and older, an unknown name) -> None: no protocol runs over it."""
    if tls_version is None:
        return Transport.TCP
    try:
        return Transport(tls_version)
    except ValueError:
        return None


def carries(protocol: AppProtocol, tls: bool, tls_version: str | None = None) -> bool:
    """May ``protocol`` run on this connection?  ``tls``: is it TLS at all; ``tls_version``: the
    negotiated version when known.  TLS of an unknown version (a sans-IO core told only
    ``tls=True``) carries what runs over some TLS version."""
    allowed = TRANSPORTS.get(AppProtocol(protocol), frozenset())
    if not tls:
        return Transport.TCP in allowed
    if tls_version is None:
        return any(t is not Transport.TCP for t in allowed)
    return transport_of(tls_version) in allowed
