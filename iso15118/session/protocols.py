"""Every protocol the SupportedAppProtocol negotiation can hand a connection to.

Importing this module registers them (``iso15118.session.registry``); the negotiation imports it.
-20 registers in the registry itself; each other protocol's package registers itself when
imported (it imports ``registry``, never ``negotiation``: that would be an import circle).
"""

from __future__ import annotations

from iso15118.session import din as _din  # noqa: F401  (DIN SPEC 70121)
from iso15118.session import iso2 as _iso2  # noqa: F401  (ISO 15118-2)
