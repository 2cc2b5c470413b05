"""Every protocol the SupportedAppProtocol negotiation can hand a connection to.

Importing this module registers them (``iso15118.session.registry``); the negotiation imports it.
-20 registers in the registry itself; each other protocol's package registers itself when
imported (it imports ``registry``, never ``negotiation``: that would be an import circle).
"""

from __future__ import annotations

from iso15118.session import din as _din  # noqa: F401  (DIN SPEC 70121)

try:  # ISO 15118-2 (its package lands with the -2 sessions)
    import iso15118.session.iso2  # type: ignore[import-not-found]  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - only before the -2 package exists
    if exc.name != "iso15118.session.iso2":
        raise
