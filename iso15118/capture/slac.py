"""HomePlug AV / Green PHY management messages (Ethertype 0x88E1), with the SLAC messages of
ISO 15118-3 decoded into their key fields.

Frame layout after the Ethernet header (HomePlug AV 2.0 / Green PHY specification): MMV (1 byte:
0 = HomePlug AV 1.0, 1 = AV 1.1 / Green PHY), MMTYPE (2 bytes, little-endian; the two low bits are
the variant: 0 REQ, 1 CNF, 2 IND, 3 RSP), and for MMV >= 1 a 2-byte fragmentation field (FMI),
then the message body.  Vendor-specific messages (MMTYPE 0xA000-0xBFFF) start with a 3-byte OUI.

SLAC field layouts follow ISO 15118-3 Annex A (as implemented by open-source SLAC stacks);
``RunID`` is 8 bytes, station IDs 17 bytes, the NMK 16 bytes, the NID 7 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from iso15118.capture.packets import format_mac

__all__ = ["MME_BASE_NAMES", "SlacMessage", "parse_homeplug", "direction_hint"]

MME_BASE_NAMES: dict[int, str] = {
    0x0000: "CC_CCO_APPOINT",
    0x6000: "CM_UNASSOCIATED_STA",
    0x6004: "CM_ENCRYPTED_PAYLOAD",
    0x6008: "CM_SET_KEY",
    0x600C: "CM_GET_KEY",
    0x6010: "CM_SC_JOIN",
    0x6014: "CM_CHAN_EST",
    0x6018: "CM_TM_UPDATE",
    0x601C: "CM_AMP_MAP",
    0x6020: "CM_BRG_INFO",
    0x6024: "CM_CONN_NEW",
    0x6028: "CM_CONN_REL",
    0x602C: "CM_CONN_MOD",
    0x6030: "CM_CONN_INFO",
    0x6034: "CM_STA_CAP",
    0x6038: "CM_NW_INFO",
    0x603C: "CM_GET_BEACON",
    0x6040: "CM_HFID",
    0x6044: "CM_MME_ERROR",
    0x6048: "CM_NW_STATS",
    0x604C: "CM_LINK_STATS",
    0x6050: "CM_ROUTE_INFO",
    0x6054: "CM_UNREACHABLE",
    0x6058: "CM_STA_IDENTIFY",
    0x6064: "CM_SLAC_PARAM",
    0x6068: "CM_START_ATTEN_CHAR",
    0x606C: "CM_ATTEN_CHAR",
    0x6070: "CM_PKCS_CERT",
    0x6074: "CM_MNBC_SOUND",
    0x6078: "CM_VALIDATE",
    0x607C: "CM_SLAC_MATCH",
    0x6080: "CM_SLAC_USER_DATA",
    0x6084: "CM_ATTEN_PROFILE",
    # Qualcomm Atheros vendor-specific (OUI 00:B0:52), the modems of most chargers.
    0xA000: "VS_SW_VER",
    0xA004: "VS_WR_MEM",
    0xA008: "VS_RD_MEM",
    0xA00C: "VS_ST_MAC",
    0xA010: "VS_GET_NVM",
    0xA01C: "VS_RS_DEV",
    0xA020: "VS_WR_MOD",
    0xA024: "VS_RD_MOD",
    0xA028: "VS_MOD_NVM",
    0xA02C: "VS_WD_RPT",
    0xA030: "VS_LNK_STATS",
    0xA034: "VS_SNIFFER",
    0xA038: "VS_NW_INFO",
    0xA048: "VS_CP_RPT",
    0xA050: "VS_FR_LBK",
    0xA054: "VS_LBK_STAT",
    0xA058: "VS_SET_KEY",
    0xA05C: "VS_MFG_STRING",
    0xA060: "VS_RD_CBLOCK",
    0xA064: "VS_SET_SDRAM",
    0xA068: "VS_HOST_ACTION",
    0xA070: "VS_OP_ATTRIBUTES",
    0xA074: "VS_ENET_SETTINGS",
    0xA078: "VS_TONE_MAP_CHAR",
    0xA07C: "VS_NW_INFO_STATS",
    0xA080: "VS_SLAVE_MEM",
    0xA084: "VS_FAC_DEFAULTS",
    0xA08C: "VS_MULTICAST_INFO",
    0xA090: "VS_CLASSIFICATION",
    0xA098: "VS_RX_TONE_MAP_CHAR",
    0xA09C: "VS_SET_LED_BEHAVIOR",
    0xA0A0: "VS_WRITE_AND_EXECUTE_APPLET",
    0xA0A4: "VS_MDIO_COMMAND",
    0xA0A8: "VS_SLAVE_REG",
    0xA0AC: "VS_BANDWIDTH_LIMITING",
    0xA0B0: "VS_SNID_OPERATION",
    0xA0B4: "VS_NN_MITIGATE",
    0xA0B8: "VS_MODULE_OPERATION",
    0xA0BC: "VS_DIAG_NETWORK_PROBE",
    0xA0C0: "VS_PL_LINK_STATUS",
    0xA0C4: "VS_GPIO_STATE_CHANGE",
    0xA0C8: "VS_CONN_ADD",
    0xA0CC: "VS_CONN_MOD",
    0xA0D0: "VS_CONN_REL",
    0xA0D4: "VS_CONN_INFO",
    0xA0D8: "VS_MULTIPORT_LNK_STA",
    0xA0E0: "VS_EM_ID_TABLE",
    0xA0E4: "VS_STANDBY",
    0xA0E8: "VS_SLEEPSCHEDULE",
    0xA0EC: "VS_SLEEPSCHEDULE_NOTIFICATION",
    0xA0F0: "VS_MICROCONTROLLER_DIAG",
    0xA0F8: "VS_GET_PROPERTY",
    0xA100: "VS_SET_PROPERTY",
    0xA104: "VS_PHYSWITCH_MDIO",
    0xA10C: "VS_SELFTEST_ONETIME_CONFIG",
    0xA110: "VS_SELFTEST_RESULTS",
    0xA114: "VS_MDU_TRAFFIC_STATS",
    0xA118: "VS_FORWARD_CONFIG",
    0xA200: "VS_HYBRID_INFO",
}

_VARIANTS = ("REQ", "CNF", "IND", "RSP")

# Who sends what in SLAC (ISO 15118-3): "EV" / "EVSE" / None (host <-> local modem).
_SENDER: dict[str, str] = {
    "CM_SLAC_PARAM.REQ": "EV",
    "CM_SLAC_PARAM.CNF": "EVSE",
    "CM_START_ATTEN_CHAR.IND": "EV",
    "CM_MNBC_SOUND.IND": "EV",
    "CM_ATTEN_CHAR.IND": "EVSE",
    "CM_ATTEN_CHAR.RSP": "EV",
    "CM_VALIDATE.REQ": "EV",
    "CM_VALIDATE.CNF": "EVSE",
    "CM_SLAC_MATCH.REQ": "EV",
    "CM_SLAC_MATCH.CNF": "EVSE",
    "CM_AMP_MAP.REQ": "EV",
    "CM_AMP_MAP.CNF": "EVSE",
}


def direction_hint(name: str) -> str | None:
    """``EV`` / ``EVSE`` for the sender of a SLAC message by its type, None for modem traffic."""
    return _SENDER.get(name)


@dataclass(slots=True)
class SlacMessage:
    """One HomePlug AV management message."""

    mmv: int
    mmtype: int
    name: str
    src_mac: bytes
    dst_mac: bytes
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Set when the body is shorter than its layout (fields decoded so far are kept)."""


def _hex(b: bytes) -> str:
    return b.hex().upper()


def _sta_id(b: bytes) -> str:
    """A 17-byte station ID: printable text when it is, else hex."""
    s = b.rstrip(b"\x00")
    if s and all(32 <= c < 127 for c in s):
        return s.decode("ascii")
    return _hex(b)


def _appsec(body: bytes, f: dict[str, Any], at: int = 0) -> int:
    f["APPLICATION_TYPE"] = body[at]
    f["SECURITY_TYPE"] = body[at + 1]
    return at + 2


class _Cut(Exception):
    pass


def _need(body: bytes, n: int) -> None:
    if len(body) < n:
        raise _Cut(f"body of {len(body)} bytes, layout needs {n}")


def _slac_fields(name: str, body: bytes) -> dict[str, Any]:
    f: dict[str, Any] = {}
    try:
        if name == "CM_SLAC_PARAM.REQ":
            _need(body, 10)
            p = _appsec(body, f)
            f["RunID"] = _hex(body[p : p + 8])
            p += 8
            if len(body) >= p + 1 and body[1] == 1:  # secure SLAC: cipher suites follow
                k = body[p]
                f["CipherSuites"] = [struct.unpack_from("<H", body, p + 1 + 2 * i)[0] for i in range(k) if p + 3 + 2 * i <= len(body)]
        elif name == "CM_SLAC_PARAM.CNF":
            _need(body, 25)
            f["M_SOUND_TARGET"] = format_mac(body[0:6])
            f["NUM_SOUNDS"] = body[6]
            f["TIME_OUT"] = body[7]
            f["RESP_TYPE"] = body[8]
            f["FORWARDING_STA"] = format_mac(body[9:15])
            p = _appsec(body, f, 15)
            f["RunID"] = _hex(body[p : p + 8])
        elif name == "CM_START_ATTEN_CHAR.IND":
            _need(body, 19)
            p = _appsec(body, f)
            f["NUM_SOUNDS"] = body[p]
            f["TIME_OUT"] = body[p + 1]
            f["RESP_TYPE"] = body[p + 2]
            f["FORWARDING_STA"] = format_mac(body[p + 3 : p + 9])
            f["RunID"] = _hex(body[p + 9 : p + 17])
        elif name == "CM_MNBC_SOUND.IND":
            _need(body, 36)
            p = _appsec(body, f)
            f["SenderID"] = _sta_id(body[p : p + 17])
            f["CNT"] = body[p + 17]
            f["RunID"] = _hex(body[p + 18 : p + 26])
            if len(body) >= p + 50:
                f["RND"] = _hex(body[p + 34 : p + 50])
        elif name == "CM_ATTEN_CHAR.IND":
            _need(body, 52)
            p = _appsec(body, f)
            f["SOURCE_ADDRESS"] = format_mac(body[p : p + 6])
            f["RunID"] = _hex(body[p + 6 : p + 14])
            f["SOURCE_ID"] = _sta_id(body[p + 14 : p + 31])
            f["RESP_ID"] = _sta_id(body[p + 31 : p + 48])
            f["NUM_SOUNDS"] = body[p + 48]
            groups = body[p + 49]
            f["NumGroups"] = groups
            aag = list(body[p + 50 : p + 50 + groups])
            if aag:
                f["AvgAttenuation_dB"] = round(sum(aag) / len(aag), 2)
            f["AAG"] = aag
        elif name == "CM_ATTEN_CHAR.RSP":
            _need(body, 49)
            p = _appsec(body, f)
            f["SOURCE_ADDRESS"] = format_mac(body[p : p + 6])
            f["RunID"] = _hex(body[p + 6 : p + 14])
            f["SOURCE_ID"] = _sta_id(body[p + 14 : p + 31])
            f["RESP_ID"] = _sta_id(body[p + 31 : p + 48])
            f["Result"] = body[p + 48]
        elif name == "CM_ATTEN_PROFILE.IND":
            _need(body, 8)
            f["PEV_MAC"] = format_mac(body[0:6])
            groups = body[6]
            f["NumGroups"] = groups
            aag = list(body[8 : 8 + groups])
            if aag:
                f["AvgAttenuation_dB"] = round(sum(aag) / len(aag), 2)
        elif name in ("CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF"):
            _need(body, 62)
            p = _appsec(body, f)
            f["MVFLength"] = struct.unpack_from("<H", body, p)[0]
            p += 2
            f["PEV_ID"] = _sta_id(body[p : p + 17])
            f["PEV_MAC"] = format_mac(body[p + 17 : p + 23])
            f["EVSE_ID"] = _sta_id(body[p + 23 : p + 40])
            f["EVSE_MAC"] = format_mac(body[p + 40 : p + 46])
            f["RunID"] = _hex(body[p + 46 : p + 54])
            p += 62
            if name == "CM_SLAC_MATCH.CNF":
                _need(body, p + 24)
                f["NID"] = _hex(body[p : p + 7])
                f["NMK"] = _hex(body[p + 8 : p + 24])
        elif name == "CM_VALIDATE.REQ":
            _need(body, 3)
            f["SignalType"] = body[0]
            f["Timer"] = body[1]
            f["Result"] = body[2]
        elif name == "CM_VALIDATE.CNF":
            _need(body, 3)
            f["SignalType"] = body[0]
            f["ToggleNum"] = body[1]
            f["Result"] = body[2]
        elif name == "CM_SET_KEY.REQ":
            _need(body, 15)
            f["KeyType"] = body[0]
            f["MyNonce"] = _hex(body[1:5])
            f["YourNonce"] = _hex(body[5:9])
            f["PID"] = body[9]
            f["PRN"] = struct.unpack_from("<H", body, 10)[0]
            f["PMN"] = body[12]
            f["CCoCapability"] = body[13]
            if len(body) >= 21:
                f["NID"] = _hex(body[14:21])
            if len(body) >= 22:
                f["NewEKS"] = body[21]
            if len(body) >= 38:
                f["NewKey"] = _hex(body[22:38])
        elif name == "CM_SET_KEY.CNF":
            _need(body, 1)
            f["Result"] = body[0]
            if len(body) >= 14:
                f["MyNonce"] = _hex(body[1:5])
                f["YourNonce"] = _hex(body[5:9])
                f["PID"] = body[9]
                f["PRN"] = struct.unpack_from("<H", body, 10)[0]
                f["PMN"] = body[12]
                f["CCoCapability"] = body[13]
        elif name == "CM_AMP_MAP.REQ":
            _need(body, 2)
            f["AMLEN"] = struct.unpack_from("<H", body, 0)[0]
        elif name == "CM_AMP_MAP.CNF":
            _need(body, 1)
            f["ResType"] = body[0]
    except _Cut as exc:
        f["_error"] = str(exc)
    return f


def parse_homeplug(src_mac: bytes, dst_mac: bytes, payload: bytes) -> SlacMessage:
    """Decode a HomePlug AV management frame (the bytes after the Ethertype)."""
    if len(payload) < 3:
        return SlacMessage(-1, -1, "HomePlug AV (cut)", src_mac, dst_mac, error=f"{len(payload)} bytes, header needs 3")
    mmv = payload[0]
    mmtype = payload[1] | (payload[2] << 8)
    base = mmtype & ~3
    variant = _VARIANTS[mmtype & 3]
    name = f"{MME_BASE_NAMES.get(base, f'MME_0x{base:04X}')}.{variant}"
    body_at = 5 if mmv >= 1 else 3
    fields: dict[str, Any] = {}
    if mmv >= 1 and len(payload) >= 5:
        fmi = payload[3] | (payload[4] << 8)
        if fmi:
            fields["FMI"] = fmi
    body = payload[body_at:]
    if 0xA000 <= base <= 0xBFFF and len(body) >= 3:
        fields["OUI"] = format_mac(body[:3])
        body = body[3:]
    else:
        fields.update(_slac_fields(name, body))
    err = fields.pop("_error", None)
    return SlacMessage(mmv, mmtype, name, src_mac, dst_mac, fields, err)
