"""Case modules; importing this package registers every case in the catalogue.

The catalogue (``conformance.catalogue``) only declares: cases import it to register, and
selection lives here, above both, so the registration has one direction and no circle.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from conformance.cases import (  # noqa: F401  (each module registers its cases)
    auth_services,
    charge_loop,
    dc_physical,
    dc_power_stop,
    evcc_cases,
    evcc_more,
    evcc_tls,
    iso2_security,
    legacy_evcc,
    legacy_secc,
    link_pilot_slac,
    sap_session,
    transport_tls_timing,
    wall_connector,
)
from conformance.catalogue import REGISTRY, TestCase


def load() -> dict[str, TestCase]:
    """Every registered case, by ID (the case modules above are imported with this package)."""
    return REGISTRY


def select(ids: Iterable[str] = (), tags: Iterable[str] = (), role: str | None = None) -> list[TestCase]:
    """Cases whose ID matches any of the globs ``ids`` and that carry all ``tags``."""
    id_globs = list(ids)
    tag_set = {t.lower() for t in tags}
    out = []
    for c in REGISTRY.values():
        if id_globs and not any(fnmatch.fnmatchcase(c.id, g) for g in id_globs):
            continue
        if tag_set and not tag_set <= set(c.tags):
            continue
        if role and c.role != role.upper():
            continue
        out.append(c)
    return sorted(out, key=lambda c: c.id)


__all__ = ["load", "select"]
