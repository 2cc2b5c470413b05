"""Simulators chosen by name: EVSE profiles for the SECC and EV profiles for the EVCC.

    >>> from iso15118.sim import make_evse, make_ev
    >>> charger = make_evse("wall-connector")
    >>> truck = make_ev("cybertruck-awd", soc=60)
"""

from __future__ import annotations

from iso15118.sim.ev import SimEV, make_ev
from iso15118.sim.evse import SimEVSE, make_evse

EVSE_PROFILES = ("wall-connector", "dc-bidi", "v2v")
EV_PROFILES = ("cybertruck-awd", "cybertruck-rwd")

__all__ = ["EVSE_PROFILES", "EV_PROFILES", "SimEV", "SimEVSE", "make_ev", "make_evse"]
