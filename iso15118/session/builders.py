"""Per-family message parts, driven by tables: which class carries the energy-transfer
parameters and the charge-loop control mode for each family (AC / DC), BPT or not and control
mode (scheduled / dynamic), and how the limit fields of those classes fill from the
controllers' :class:`~iso15118.session.controller.EVLimits` / ``EVSELimits``.

Both cores build these parts here, so a fifth combination (or a new limit) is one table row,
not a new branch in each core.  A limit field is written when the class has it (its generated
``FIELDS``), so the tables never name a field a class lacks.
"""

from __future__ import annotations

from typing import Any

from iso15118 import messages as m
from iso15118.facts.namespaces import Family
from iso15118.session.services import rn

__all__ = [
    "CL_REQ_MODE",
    "CL_RES_MODE",
    "CPD_REQ_MODE",
    "CPD_RES_MODE",
    "LIMIT_FIELDS",
    "cl_mode",
    "cpd_mode",
    "limit_fields",
]

CPD_REQ_MODE: dict[tuple[Family, bool], type[m.MessageBase]] = {
    (Family.AC, False): m.ACCPDReqEnergyTransferMode,
    (Family.AC, True): m.BPTACCPDReqEnergyTransferMode,
    (Family.DC, False): m.DCCPDReqEnergyTransferMode,
    (Family.DC, True): m.BPTDCCPDReqEnergyTransferMode,
}
"""(family, BPT) -> the EV's energy-transfer parameters in ChargeParameterDiscoveryReq."""

CPD_RES_MODE: dict[tuple[Family, bool], type[m.MessageBase]] = {
    (Family.AC, False): m.ACCPDResEnergyTransferMode,
    (Family.AC, True): m.BPTACCPDResEnergyTransferMode,
    (Family.DC, False): m.DCCPDResEnergyTransferMode,
    (Family.DC, True): m.BPTDCCPDResEnergyTransferMode,
}
"""(family, BPT) -> the charger's energy-transfer parameters in ChargeParameterDiscoveryRes."""

CL_REQ_MODE: dict[tuple[Family, bool, bool], type[m.MessageBase]] = {
    (Family.AC, False, False): m.ScheduledACCLReqControlMode,
    (Family.AC, False, True): m.DynamicACCLReqControlMode,
    (Family.AC, True, False): m.BPTScheduledACCLReqControlMode,
    (Family.AC, True, True): m.BPTDynamicACCLReqControlMode,
    (Family.DC, False, False): m.ScheduledDCCLReqControlMode,
    (Family.DC, False, True): m.DynamicDCCLReqControlMode,
    (Family.DC, True, False): m.BPTScheduledDCCLReqControlMode,
    (Family.DC, True, True): m.BPTDynamicDCCLReqControlMode,
}
"""(family, BPT, dynamic) -> the control mode of a ChargeLoopReq."""

CL_RES_MODE: dict[tuple[Family, bool, bool], type[m.MessageBase]] = {
    (Family.AC, False, False): m.ScheduledACCLResControlMode,
    (Family.AC, False, True): m.DynamicACCLResControlMode,
    (Family.AC, True, False): m.BPTScheduledACCLResControlMode,
    (Family.AC, True, True): m.BPTDynamicACCLResControlMode,
    (Family.DC, False, False): m.ScheduledDCCLResControlMode,
    (Family.DC, False, True): m.DynamicDCCLResControlMode,
    (Family.DC, True, False): m.BPTScheduledDCCLResControlMode,
    (Family.DC, True, True): m.BPTDynamicDCCLResControlMode,
}
"""(family, BPT, dynamic) -> the control mode of a ChargeLoopRes."""

LIMIT_FIELDS: tuple[tuple[str, str], ...] = (
    ("maximum_charge_power", "max_charge_power"),
    ("minimum_charge_power", "min_charge_power"),
    ("maximum_charge_current", "max_charge_current"),
    ("minimum_charge_current", "min_charge_current"),
    ("maximum_voltage", "max_voltage"),
    ("minimum_voltage", "min_voltage"),
    ("maximum_discharge_power", "max_discharge_power"),
    ("minimum_discharge_power", "min_discharge_power"),
    ("maximum_discharge_current", "max_discharge_current"),
    ("minimum_discharge_current", "min_discharge_current"),
    ("nominal_frequency", "nominal_frequency"),
)
"""Message field (after the ``ev_`` / ``evse_`` prefix) -> attribute of EVLimits / EVSELimits."""

_FIELDS: dict[type[m.MessageBase], frozenset[str]] = {}


def _fields(cls: type[m.MessageBase]) -> frozenset[str]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.attr for f in cls.FIELDS)
    return names


def limit_fields(cls: type[m.MessageBase], prefix: str, limits: Any, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The limit fields of ``cls`` (``prefix`` ``"ev_"`` or ``"evse_"``) filled from ``limits``;
    ``only`` restricts them to these suffixes (a control mode that carries fewer limits)."""
    names = _fields(cls)
    return {
        prefix + field: rn(getattr(limits, attr))
        for field, attr in LIMIT_FIELDS
        if prefix + field in names and (only is None or field in only)
    }


def cpd_mode(side: str, family: Family, bpt: bool, limits: Any, **extra: Any) -> Any:
    """The EnergyTransferMode of a ChargeParameterDiscoveryReq (``side="ev"``) or Res (``"evse"``)."""
    cls = (CPD_REQ_MODE if side == "ev" else CPD_RES_MODE)[(family, bpt)]
    return cls(**limit_fields(cls, side + "_", limits), **extra)


def cl_mode(side: str, family: Family, bpt: bool, dynamic: bool, limits: Any | None, only: tuple[str, ...] | None, **values: Any) -> Any:
    """The control mode of a ChargeLoopReq (``side="ev"``) or Res (``"evse"``): the limit fields
    (``only`` those suffixes when given; none without ``limits``) and ``values``."""
    cls = (CL_REQ_MODE if side == "ev" else CL_RES_MODE)[(family, bpt, dynamic)]
    lim = limit_fields(cls, side + "_", limits, only) if limits is not None else {}
    return cls(**lim, **values)
