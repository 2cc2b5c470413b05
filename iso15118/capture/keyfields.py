"""Which decoded values a one-line timeline entry shows ("key fields")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iso15118.capture.physical import scaled
from iso15118.exi.tree import Element

if TYPE_CHECKING:
    from iso15118.capture.decode import Decoded

__all__ = ["key_fields", "key_leaves", "PRIORITY"]

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


def key_leaves(el: Element, found: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    """The values of the leaves below ``el`` named in :data:`PRIORITY` (leaf name -> values in
    document order): the leaves of :func:`~iso15118.capture.decode.flatten`, physical values
    scaled, found by one walk of the tree without building the flattened paths."""
    if found is None:
        found = {}
    rank = _RANK
    for c in el.children:
        if not isinstance(c, Element):
            continue
        kids = c.children
        if kids:
            sv = scaled(c)
            if sv is None:
                key_leaves(c, found)
                continue
            v: Any = sv[0]
        else:
            v = c.value
        name = c.name
        if name in rank:
            vals = found.get(name)
            if vals is None:
                found[name] = [v]
            else:
                vals.append(v)
    return found


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
    found = key_leaves(d.message) if d.message is not None else {}
    out: dict[str, Any] = {}
    for leaf in sorted(found, key=_RANK.__getitem__)[:limit]:
        vals = found[leaf]
        out[leaf] = _fmt(vals[0]) if len(vals) == 1 else [_fmt(v) for v in vals]
    if limit == 8:
        d.key = out
    return out
