"""Which decoded values a one-line timeline entry shows ("key fields")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iso15118.capture.decode import Decoded

__all__ = ["key_fields", "PRIORITY"]

# Leaf element names in display order.  Physical values are already scaled numbers.
PRIORITY: tuple[str, ...] = (
    "ProtocolNamespace",
    "SchemaID",
    "EVSEProcessing",
    "ChargeProgress",
    "ChargingSession",
    "SelectedPaymentOption",
    "RequestedEnergyTransferMode",
    "EVRequestedEnergyTransferType",
    "EnergyTransferType",
    "EnergyTransferMode",
    "SelectedAuthorizationService",
    "ServiceID",
    "EVTargetVoltage",
    "EVTargetCurrent",
    "EVSEPresentVoltage",
    "EVSEPresentCurrent",
    "EVPresentVoltage",
    "EVSETargetActivePower",
    "EVPresentActivePower",
    "EVTargetEnergyRequest",
    "EVRESSSOC",
    "PresentSOC",
    "TargetSOC",
    "EVReady",
    "EVErrorCode",
    "EVSEStatusCode",
    "EVSEIsolationStatus",
    "EVSENotification",
    "MeterReading",
    "EVMaximumChargePower",
    "EVMinimumChargePower",
    "EVMaximumDischargePower",
    "EVMaximumChargeCurrent",
    "EVMaximumVoltage",
    "EVSEMaximumChargePower",
    "EVSEMaximumDischargePower",
    "EVSEMaximumChargeCurrent",
    "EVSEMaximumVoltage",
    "EVMaximumVoltageLimit",
    "EVMaximumCurrentLimit",
    "EVMaximumPowerLimit",
    "EVSEMaximumCurrentLimit",
    "EVSEMaximumVoltageLimit",
    "EVSEMaximumPowerLimit",
    "EVSEMaxCurrent",
    "EAmount",
    "EVMaxCurrent",
    "DepartureTime",
    "ReceiptRequired",
    "SAScheduleTupleID",
    "EVCCID",
    "EVSEID",
    "ServiceCategory",
    "PaymentOption",
)
_RANK = {name: i for i, name in enumerate(PRIORITY)}


def _fmt(v: Any) -> Any:
    t = v.__class__
    if t is str or t is int or t is bool:
        return v
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        if b and all(32 <= c < 127 for c in b) and len(b) > 2:
            return b.decode("ascii")
        return b.hex().upper()
    if isinstance(v, float):
        return round(v, 3) if v != int(v) else int(v)
    return v


def key_fields(d: Decoded, limit: int = 8) -> dict[str, Any]:
    """Up to ``limit`` telling values of a decoded message, by :data:`PRIORITY` (memoised on the
    :class:`Decoded`, which the decode cache shares: treat the result as read-only)."""
    if d.key is not None and limit == 8:
        return d.key
    rank = _RANK
    found: dict[str, list[Any]] = {}
    for name, v in d.leaves.seq:
        if name in rank:
            vals = found.get(name)
            if vals is None:
                found[name] = [v]
            else:
                vals.append(v)
    out: dict[str, Any] = {}
    for leaf in sorted(found, key=_RANK.__getitem__)[:limit]:
        vals = found[leaf]
        out[leaf] = _fmt(vals[0]) if len(vals) == 1 else [_fmt(v) for v in vals]
    if limit == 8:
        d.key = out
    return out
