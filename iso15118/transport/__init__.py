"""Transport layer: V2GTP framing (``v2gtp``), SECC Discovery Protocol (``sdp``, ``sdp_asyncio``)
and asyncio TCP connections carrying V2GTP frames (``tcp``).  No session logic, no TLS policy
(TLS contexts come from ``iso15118.security``)."""
