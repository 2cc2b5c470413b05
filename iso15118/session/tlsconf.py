"""TLS contexts for sessions from a lab PKI directory (``iso15118.security.pki`` layout).

-20 profile: TLS 1.3 only, mutual authentication; the SECC presents ``cpoCertChain`` and
verifies the EV's ``vehicleCertChain`` against the V2G root (libiso15118's choice on
DISAGREE #3, which the public -20 material sides with); the EV verifies the SECC against the
V2G root.  ``josev=True`` builds the compatibility contexts for Josev's P-256 test PKI
(OEM provisioning chain as client certificate, verified against the OEM root).

A -2 lab PKI (``iso15118 pki create --profile iso2``; its manifest says ``"profile": "iso2"``)
gives the ISO 15118-2 contexts instead: TLS 1.2 only, ECDHE-ECDSA-AES128-SHA256 on P-256, the
SECC presents ``cpoCertChain`` and the EV, which presents no certificate, verifies it against the
V2G root (:data:`iso15118.security.tls.ISO2`).
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

from iso15118.security.tls import ISO2, ISO20, JOSEV_COMPAT, client_context, server_context


def _password(pki: Path, name: str) -> Path | None:
    p = pki / "private_keys" / f"{name}Password.txt"
    return p if p.exists() else None


def is_iso2_pki(pki: str | Path) -> bool:
    """True for a lab PKI made with ``--profile iso2`` (read from its ``pki.json``)."""
    try:
        return bool(json.loads((Path(pki) / "pki.json").read_text()).get("profile") == "iso2")
    except (OSError, ValueError):
        return False


def secc_context(pki: str | Path, *, josev: bool = False, keylog: str | None = None, **kw: Any) -> ssl.SSLContext:
    d = Path(pki)
    certs = d / "certs"
    if not josev and is_iso2_pki(d):
        return server_context(
            certs / "cpoCertChain.pem", d / "private_keys" / "seccLeaf.key", _password(d, "seccLeaf"),
            profile=ISO2, keylog_file=keylog, **kw,
        )
    anchor = certs / ("oemRootCACert.pem" if josev else "v2gRootCACert.pem")
    return server_context(
        certs / "cpoCertChain.pem",
        d / "private_keys" / "seccLeaf.key",
        _password(d, "seccLeaf"),
        trust_anchors=[anchor],
        profile=JOSEV_COMPAT if josev else ISO20,
        keylog_file=keylog,
        **kw,
    )


def evcc_context(pki: str | Path, *, josev: bool = False, keylog: str | None = None, **kw: Any) -> ssl.SSLContext:
    d = Path(pki)
    certs = d / "certs"
    if not josev and is_iso2_pki(d):
        return client_context([certs / "v2gRootCACert.pem"], profile=ISO2, keylog_file=keylog, **kw)
    if josev:
        chain, key, pw = certs / "oemCertChain.pem", d / "private_keys" / "oemLeaf.key", _password(d, "oemLeaf")
    else:
        chain, key, pw = certs / "vehicleCertChain.pem", d / "private_keys" / "vehicleLeaf.key", _password(d, "vehicleLeaf")
    return client_context(
        [certs / "v2gRootCACert.pem"],
        chain,
        key,
        pw,
        profile=JOSEV_COMPAT if josev else ISO20,
        keylog_file=keylog,
        **kw,
    )


__all__ = ["evcc_context", "is_iso2_pki", "secc_context"]
