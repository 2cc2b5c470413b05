"""Simulators chosen by name: EVSE profiles for the SECC and EV profiles for the EVCC.

    >>> from iso15118.sim import make_evse, make_ev
    >>> charger = make_evse("wall-connector")
    >>> truck = make_ev("cybertruck-awd", soc=60)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iso15118.sim.ev import SimEV, make_ev
    from iso15118.sim.evse import SimEVSE, make_evse

EVSE_PROFILES = ("wall-connector", "dc-bidi", "v2v")
EV_PROFILES = ("cybertruck-awd", "cybertruck-rwd")

__all__ = ["EVSE_PROFILES", "EV_PROFILES", "SimEV", "SimEVSE", "make_ev", "make_evse"]


def __getattr__(name: str) -> Any:
    """The simulators are imported when first named (they load the whole session stack): the
    ``iso15118`` command imports :mod:`iso15118.sim.cli`, and with it this package, for every
    sub-command."""
    if name in ("SimEV", "make_ev"):
        from iso15118.sim import ev

        return getattr(ev, name)
    if name in ("SimEVSE", "make_evse"):
        from iso15118.sim import evse

        return getattr(evse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
