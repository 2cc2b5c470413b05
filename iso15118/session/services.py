"""Energy services, parameter sets and number helpers (digest §2, §4).

Decisions on DISAGREE items:

* AC ``Connector``: we send only 1 (single phase; a 240 V split-phase wall connector is a
  single-phase supply in -20 terms), which both Josev and libiso15118 agree on, and accept 2
  *or* 3 as three-phase when parsing (Josev 2, libiso 3; Table 205 not available).
* AC_BPT islanding parameter: we send Josev's name ``GridCodeIslandingDetectionMethod``
  and accept libiso's ``DetectionMethodGridCodeIslanding`` too.
* Parameter-set IDs start at 1 (Josev); any unsignedShort is accepted from a peer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from iso15118 import messages as m

# the SAP namespaces of the energy families live in iso15118.facts (re-exported here)
from iso15118.facts.namespaces import FAMILY_OF_NAMESPACE as FAMILY_OF_NAMESPACE
from iso15118.facts.namespaces import NAMESPACE as NAMESPACE
from iso15118.facts.namespaces import NS_AC as NS_AC
from iso15118.facts.namespaces import NS_DC as NS_DC
from iso15118.facts.namespaces import Family


class EnergyService(enum.IntEnum):
    """ServiceIDs of energy transfer services (digest §4.1)."""

    AC = 1
    DC = 2
    WPT = 3
    DC_ACDP = 4
    AC_BPT = 5
    DC_BPT = 6
    DC_ACDP_BPT = 7

    @property
    def family(self) -> Family | None:
        return SERVICE_FAMILY.get(self)

    @property
    def ac_dc(self) -> Family:
        """The family of an AC or DC service (``ValueError`` for WPT / ACDP, which this stack does not serve)."""
        fam = SERVICE_FAMILY.get(self)
        if fam is None:
            raise ValueError(f"{self.name} is neither an AC nor a DC energy service")
        return fam

    @property
    def bpt(self) -> bool:
        return self in (EnergyService.AC_BPT, EnergyService.DC_BPT)


SERVICE_FAMILY = {
    EnergyService.AC: Family.AC,
    EnergyService.AC_BPT: Family.AC,
    EnergyService.DC: Family.DC,
    EnergyService.DC_BPT: Family.DC,
}


class ControlMode(enum.IntEnum):
    SCHEDULED = 1
    DYNAMIC = 2


class MobilityNeedsMode(enum.IntEnum):
    PROVIDED_BY_EVCC = 1
    PROVIDED_BY_EVCC_AND_SECC = 2


ISLANDING_NAMES = ("GridCodeIslandingDetectionMethod", "DetectionMethodGridCodeIslanding")


def int_parameter(name: str, value: int) -> m.Parameter:
    """A ``Parameter`` carrying ``intValue`` (both public implementations use intValue)."""
    return m.Parameter(name=name, int_value=value)


@dataclass(frozen=True)
class ParameterSetOffer:
    """One ParameterSet of a ServiceDetailRes, as plain values."""

    set_id: int
    control_mode: ControlMode
    mobility_needs_mode: MobilityNeedsMode = MobilityNeedsMode.PROVIDED_BY_EVCC
    connector: int = 1
    pricing: int = 0
    nominal_voltage: int | None = None
    bpt_channel: int | None = None
    generator_mode: int | None = None
    islanding_detection: int | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def to_message(self) -> m.ParameterSet:
        p: list[m.Parameter] = [
            int_parameter("Connector", self.connector),
            int_parameter("ControlMode", int(self.control_mode)),
        ]
        if self.nominal_voltage is not None:
            p.append(int_parameter("EVSENominalVoltage", self.nominal_voltage))
        p.append(int_parameter("MobilityNeedsMode", int(self.mobility_needs_mode)))
        p.append(int_parameter("Pricing", self.pricing))
        if self.bpt_channel is not None:
            p.append(int_parameter("BPTChannel", self.bpt_channel))
        if self.generator_mode is not None:
            p.append(int_parameter("GeneratorMode", self.generator_mode))
        if self.islanding_detection is not None:
            p.append(int_parameter(ISLANDING_NAMES[0], self.islanding_detection))
        for name, value in self.extra.items():
            p.append(int_parameter(name, value))
        return m.ParameterSet(parameter_set_id=self.set_id, parameter=p)

    @classmethod
    def from_message(cls, ps: m.ParameterSet) -> ParameterSetOffer:
        values: dict[str, int] = {}
        for par in ps.parameter:
            for attr in ("int_value", "short_value", "byte_value"):
                v = getattr(par, attr)
                if v is not None:
                    values[par.name] = int(v)
            if par.rational_number is not None:
                values[par.name] = int(to_decimal(par.rational_number))
            if par.bool_value is not None:
                values[par.name] = int(par.bool_value)
        island = next((values[n] for n in ISLANDING_NAMES if n in values), None)
        try:
            mode = ControlMode(values.get("ControlMode", 1))
        except ValueError:
            mode = ControlMode.SCHEDULED
        try:
            mnm = MobilityNeedsMode(values.get("MobilityNeedsMode", 1))
        except ValueError:
            mnm = MobilityNeedsMode.PROVIDED_BY_EVCC
        return cls(
            set_id=ps.parameter_set_id,
            control_mode=mode,
            mobility_needs_mode=mnm,
            connector=values.get("Connector", 1),
            pricing=values.get("Pricing", 0),
            nominal_voltage=values.get("EVSENominalVoltage"),
            bpt_channel=values.get("BPTChannel"),
            generator_mode=values.get("GeneratorMode"),
            islanding_detection=island,
        )


@dataclass(frozen=True)
class ServiceOffer:
    """An energy service the SECC offers, with its parameter sets."""

    service: EnergyService
    parameter_sets: tuple[ParameterSetOffer, ...]
    free: bool = True

    def parameter_set(self, set_id: int) -> ParameterSetOffer | None:
        return next((p for p in self.parameter_sets if p.set_id == set_id), None)


def default_parameter_sets(
    service: EnergyService,
    *,
    nominal_voltage: int | None = None,
    modes: Iterable[ControlMode] = (ControlMode.SCHEDULED, ControlMode.DYNAMIC),
) -> tuple[ParameterSetOffer, ...]:
    """Set 1 Scheduled, set 2 Dynamic (MobilityNeedsMode 2), set 3 Dynamic (MobilityNeedsMode 1),
    like Josev; BPT services add BPTChannel=Unified, GeneratorMode=GridFollowing and (AC) the
    islanding method Passive."""
    ac = service in (EnergyService.AC, EnergyService.AC_BPT)
    bpt = service.bpt
    common = dict(
        connector=1 if ac else 2,
        nominal_voltage=nominal_voltage if ac else None,
        bpt_channel=1 if bpt else None,
        generator_mode=1 if bpt else None,
        islanding_detection=2 if bpt and ac else None,
    )
    modes = tuple(modes)
    sets: list[ParameterSetOffer] = []
    if ControlMode.SCHEDULED in modes:
        sets.append(ParameterSetOffer(1, ControlMode.SCHEDULED, MobilityNeedsMode.PROVIDED_BY_EVCC, **common))  # type: ignore[arg-type]
    if ControlMode.DYNAMIC in modes:
        sets.append(ParameterSetOffer(2, ControlMode.DYNAMIC, MobilityNeedsMode.PROVIDED_BY_EVCC_AND_SECC, **common))  # type: ignore[arg-type]
        sets.append(ParameterSetOffer(3, ControlMode.DYNAMIC, MobilityNeedsMode.PROVIDED_BY_EVCC, **common))  # type: ignore[arg-type]
    return tuple(sets)


# --------------------------------------------------------------------------- numbers

_RN_CACHE: dict[Decimal, m.RationalNumber] = {}


def rn(value: Decimal | int | float) -> m.RationalNumber:
    """A RationalNumber for ``value`` (exact when possible, else rounded to 5 digits)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    cached = _RN_CACHE.get(d)
    if cached is not None:
        return cached
    r: m.RationalNumber
    try:
        r = m.RationalNumber.from_decimal(d)
    except ValueError:
        r = m.RationalNumber.from_float(float(d))
    if len(_RN_CACHE) < 4096:
        _RN_CACHE[d] = r
    return r


def to_decimal(r: m.RationalNumber | None, default: Decimal | None = None) -> Decimal:
    """The value of a RationalNumber (``default`` or 0 when absent)."""
    if r is None:
        return default if default is not None else Decimal(0)
    return Decimal(r.value).scaleb(r.exponent)


def q(value: Decimal | float, places: int = 1) -> Decimal:
    """Round to ``places`` decimals (keeps RationalNumbers within five digits)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(Decimal(1).scaleb(-places))

