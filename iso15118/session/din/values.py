"""DIN value helpers: PhysicalValue <-> Decimal, the DIN EVCCID / EVSEID, status records."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from iso15118.exi.errors import ExiDecodeError
from iso15118.messages import din

__all__ = ["decode_din", "evcc_id_bytes", "evse_id_bytes", "pv", "to_decimal"]

_SHORT = 32767


def pv(value: Decimal | float | int, unit: din.UnitSymbol | None) -> din.PhysicalValue:
    """A DIN PhysicalValue (value: xs:short, Multiplier -3..3): the finest multiplier whose value
    still fits in a short (400 A -> 4000 x 10^-1 A; 150 kW -> 15000 x 10^1 W)."""
    d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    for mult in range(-3, 4):
        scaled = (d.scaleb(-mult)).to_integral_value()
        if abs(scaled) <= _SHORT:
            return din.PhysicalValue(multiplier=mult, unit=unit, value=int(scaled))
    return din.PhysicalValue(multiplier=3, unit=unit, value=_SHORT if d > 0 else -_SHORT)


def to_decimal(value: din.PhysicalValue | None) -> Decimal:
    """The quantity a PhysicalValue carries (0 for None)."""
    if value is None:
        return Decimal(0)
    return Decimal(value.value).scaleb(value.multiplier)


def evcc_id_bytes(evcc_id: str) -> bytes:
    """DIN's EVCCID is hexBinary of at most 8 bytes, in practice the EV's MAC address (digest §3):
    twelve hex digits are taken as that address; any other identifier maps to a stable,
    locally administered 6-byte address derived from it."""
    text = evcc_id.replace(":", "").replace("-", "")
    if len(text) in (12, 16):
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    digest = bytearray(hashlib.sha256(evcc_id.encode()).digest()[:6])
    digest[0] = (digest[0] | 0x02) & 0xFE  # locally administered, unicast
    return bytes(digest)


def evse_id_bytes(evse_id: str) -> bytes:
    """DIN's EVSEID is hexBinary of at most 32 bytes: the EVSE ID's ASCII text (an empty ID is
    the single byte 0x00 EVerest sends)."""
    raw = evse_id.encode("ascii", "replace")[:32]
    return raw or b"\x00"


def decode_din(payload: bytes) -> tuple[din.V2GMessage, int]:
    """A DIN ``V2G_Message`` and the number of zero bytes ignored after its end.

    Real vehicles pad: a Tesla Model 3 sends its ContractAuthenticationReq with one 0x00 byte
    after the end of the EXI document (``fixtures/vehicles/Tesla_Model_3...``), which the codec
    rightly reports; the chargers it met (EVerest) answered it.  A session accepts whole zero
    bytes after the document's end, nothing else (any other byte left over stays an error)."""
    try:
        return din.decode(payload), 0
    except ExiDecodeError as exc:
        end = exc.bit_offset
        if end is None or "left over" not in exc.reason:
            raise
        cut = (end + 7) // 8
        if any(payload[cut:]):
            raise
        return din.decode(payload[:cut]), len(payload) - cut
