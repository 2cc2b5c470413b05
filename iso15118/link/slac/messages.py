"""SLAC frames (ISO 15118-3 Annex A, HomePlug Green PHY MMEs): build and parse.

Built and parsed with scapy's ``homeplugav`` / ``homepluggp`` layers (``HomePlugAV`` with
``version=1``: MMV 1 and the two fragmentation bytes).  scapy has no CM_VALIDATE and no
CM_AMP_MAP: they are small ``Packet`` classes here, bound to their MMTYPEs.  Frames are
zero-padded to 60 bytes (scapy does not; veth does not either); trailing bytes are accepted
on input (BYD and XPENG send 14 extra bytes).

:func:`parse` is bounded (frames longer than an Ethernet frame are refused) and raises
:class:`SlacDecodeError` for anything that is not a well-formed HomePlug MME.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from scapy.contrib.homeplugav import HomePlugAV
from scapy.contrib.homepluggp import (
    CM_ATTEN_CHAR_IND,
    CM_ATTEN_CHAR_RSP,
    CM_ATTENUATION_CHARACTERISTICS_MME,
    CM_MNBC_SOUND_IND,
    CM_SET_KEY_CNF,
    CM_SET_KEY_REQ,
    CM_SLAC_MATCH_CNF,
    CM_SLAC_MATCH_REQ,
    CM_SLAC_PARM_CNF,
    CM_SLAC_PARM_REQ,
    CM_START_ATTEN_CHAR_IND,
    HPGP_GROUP,
    SLAC_varfield,
    SLAC_varfield_cnf,
)
from scapy.fields import ByteField, FieldLenField, StrLenField
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw, bind_layers

from iso15118.link.timers import C_EV_MATCH_MNBC, ETHERTYPE_HOMEPLUG, MME_MIN_FRAME, NUM_GROUPS

__all__ = [
    "BROADCAST",
    "MODEM_MAC",
    "MMType",
    "SlacDecodeError",
    "SlacFrame",
    "atten_char_ind",
    "atten_char_rsp",
    "atten_profile_ind",
    "mac_bytes",
    "mac_str",
    "match_cnf",
    "match_req",
    "mnbc_sound",
    "new_nmk",
    "nid_from_nmk",
    "parm_cnf",
    "parm_req",
    "parse",
    "set_key_cnf",
    "set_key_req",
    "start_atten_char",
    "validate_cnf",
    "validate_req",
]

BROADCAST = "ff:ff:ff:ff:ff:ff"
MODEM_MAC = "00:b0:52:00:00:01"
"""Where a host sends messages for its own (Qualcomm) modem, e.g. CM_SET_KEY.REQ."""
MAX_FRAME = 1518


class MMType(IntEnum):
    CM_SET_KEY_REQ = 0x6008
    CM_SET_KEY_CNF = 0x6009
    CM_AMP_MAP_REQ = 0x601C
    CM_AMP_MAP_CNF = 0x601D
    CM_SLAC_PARM_REQ = 0x6064
    CM_SLAC_PARM_CNF = 0x6065
    CM_START_ATTEN_CHAR_IND = 0x606A
    CM_ATTEN_CHAR_IND = 0x606E
    CM_ATTEN_CHAR_RSP = 0x606F
    CM_MNBC_SOUND_IND = 0x6076
    CM_VALIDATE_REQ = 0x6078
    CM_VALIDATE_CNF = 0x6079
    CM_SLAC_MATCH_REQ = 0x607C
    CM_SLAC_MATCH_CNF = 0x607D
    CM_ATTEN_PROFILE_IND = 0x6086


class ValidateResult(IntEnum):
    NOT_READY = 0
    READY = 1
    SUCCESS = 2
    FAILURE = 3
    NOT_REQUIRED = 4


class CM_VALIDATE(Packet):  # noqa: N801 - the message's name
    """CM_VALIDATE.REQ / .CNF: SignalType, Timer (REQ) or ToggleNum (CNF), Result."""

    name = "CM_VALIDATE"
    fields_desc = [ByteField("SignalType", 0), ByteField("TimerOrToggles", 0), ByteField("Result", 1)]


class CM_AMP_MAP_REQ(Packet):  # noqa: N801
    name = "CM_AMP_MAP_REQ"
    fields_desc = [
        FieldLenField("AMLEN", None, length_of="AMDATA", fmt="<H", adjust=lambda pkt, x: x * 2),
        StrLenField("AMDATA", b"", length_from=lambda pkt: (pkt.AMLEN + 1) // 2),
    ]


class CM_AMP_MAP_CNF(Packet):  # noqa: N801
    name = "CM_AMP_MAP_CNF"
    fields_desc = [ByteField("Result", 0)]


bind_layers(HomePlugAV, CM_VALIDATE, HPtype=MMType.CM_VALIDATE_REQ)
bind_layers(HomePlugAV, CM_VALIDATE, HPtype=MMType.CM_VALIDATE_CNF)
bind_layers(HomePlugAV, CM_AMP_MAP_REQ, HPtype=MMType.CM_AMP_MAP_REQ)
bind_layers(HomePlugAV, CM_AMP_MAP_CNF, HPtype=MMType.CM_AMP_MAP_CNF)

_BODY: dict[int, type[Packet]] = {
    MMType.CM_SET_KEY_REQ: CM_SET_KEY_REQ,
    MMType.CM_SET_KEY_CNF: CM_SET_KEY_CNF,
    MMType.CM_SLAC_PARM_REQ: CM_SLAC_PARM_REQ,
    MMType.CM_SLAC_PARM_CNF: CM_SLAC_PARM_CNF,
    MMType.CM_START_ATTEN_CHAR_IND: CM_START_ATTEN_CHAR_IND,
    MMType.CM_ATTEN_CHAR_IND: CM_ATTEN_CHAR_IND,
    MMType.CM_ATTEN_CHAR_RSP: CM_ATTEN_CHAR_RSP,
    MMType.CM_MNBC_SOUND_IND: CM_MNBC_SOUND_IND,
    MMType.CM_VALIDATE_REQ: CM_VALIDATE,
    MMType.CM_VALIDATE_CNF: CM_VALIDATE,
    MMType.CM_SLAC_MATCH_REQ: CM_SLAC_MATCH_REQ,
    MMType.CM_SLAC_MATCH_CNF: CM_SLAC_MATCH_CNF,
    MMType.CM_ATTEN_PROFILE_IND: CM_ATTENUATION_CHARACTERISTICS_MME,
    MMType.CM_AMP_MAP_REQ: CM_AMP_MAP_REQ,
    MMType.CM_AMP_MAP_CNF: CM_AMP_MAP_CNF,
}
_MIN_BODY = {
    MMType.CM_SET_KEY_REQ: 38, MMType.CM_SET_KEY_CNF: 14, MMType.CM_SLAC_PARM_REQ: 10,
    MMType.CM_SLAC_PARM_CNF: 25, MMType.CM_START_ATTEN_CHAR_IND: 19, MMType.CM_ATTEN_CHAR_IND: 52,
    MMType.CM_ATTEN_CHAR_RSP: 51, MMType.CM_MNBC_SOUND_IND: 52, MMType.CM_VALIDATE_REQ: 3,
    MMType.CM_VALIDATE_CNF: 3, MMType.CM_SLAC_MATCH_REQ: 66, MMType.CM_SLAC_MATCH_CNF: 90,
    MMType.CM_ATTEN_PROFILE_IND: 8, MMType.CM_AMP_MAP_REQ: 2, MMType.CM_AMP_MAP_CNF: 1,
}


class SlacDecodeError(ValueError):
    """Not a well-formed HomePlug MME of a type this module knows."""


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass(frozen=True)
class SlacFrame:
    """A parsed MME: Ethernet addresses (``aa:bb:..`` lower case), MMTYPE, the scapy body."""

    dst: str
    src: str
    mmtype: MMType
    body: Any
    raw: bytes

    def get(self, name: str) -> Any:
        return getattr(self.body, name)

    @property
    def run_id(self) -> bytes:
        if self.mmtype in (MMType.CM_SLAC_MATCH_REQ, MMType.CM_SLAC_MATCH_CNF):
            return bytes(self.body.VariableField.RunID)
        return bytes(self.body.RunID)

    def aag(self) -> list[int]:
        """CM_ATTEN_CHAR.IND / CM_ATTEN_PROFILE.IND: the per-group attenuations (dB)."""
        return [int(g.group) for g in self.body.Groups]


def parse(frame: bytes) -> SlacFrame:
    """Decode one Ethernet frame carrying a HomePlug MME (bounded; typed errors)."""
    if len(frame) < 19 or len(frame) > MAX_FRAME:
        raise SlacDecodeError(f"frame of {len(frame)} bytes is not an MME")
    if int.from_bytes(frame[12:14], "big") != ETHERTYPE_HOMEPLUG:
        raise SlacDecodeError("not Ethertype 0x88E1")
    if frame[14] != 1:
        raise SlacDecodeError(f"MMV {frame[14]} (SLAC uses MMV 1)")
    mmtype = int.from_bytes(frame[15:17], "little")
    if mmtype not in _BODY:
        raise SlacDecodeError(f"MMTYPE 0x{mmtype:04X} is not a SLAC message")
    mt = MMType(mmtype)
    body_bytes = frame[19:]
    if len(body_bytes) < _MIN_BODY[mt]:
        raise SlacDecodeError(f"{mt.name}: body of {len(body_bytes)} bytes, needs {_MIN_BODY[mt]}")
    try:
        body = _BODY[mt](body_bytes)
    except Exception as exc:  # scapy raises assorted errors on bad input
        raise SlacDecodeError(f"{mt.name}: {exc}") from exc
    if mt in (MMType.CM_ATTEN_CHAR_IND, MMType.CM_ATTEN_PROFILE_IND):
        n = int(body.NumberOfGroups)
        if len(body.Groups) != n:
            raise SlacDecodeError(f"{mt.name}: NumGroups {n} but {len(body.Groups)} groups present")
    return SlacFrame(mac_str(frame[0:6]), mac_str(frame[6:12]), mt, body, bytes(frame))


def _frame(dst: str, src: str, mmtype: MMType, body: Packet) -> bytes:
    raw = bytes(Ether(dst=dst, src=src, type=ETHERTYPE_HOMEPLUG) / HomePlugAV(version=1, HPtype=int(mmtype)) / body)
    return raw + bytes(max(0, MME_MIN_FRAME - len(raw)))


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """The 7-byte NID of an NMK: SHA-256 five times; bytes 0-5, then byte 6's high nibble
    shifted down with the security level in bits 4-5 (reproduces all captured NIDs)."""
    d = nmk
    for _ in range(5):
        d = hashlib.sha256(d).digest()
    return d[:6] + bytes([(d[6] >> 4) | ((security_level & 0x3) << 4)])


def new_nmk() -> bytes:
    return os.urandom(16)


def set_key_req(src: str, nmk: bytes, nid: bytes, *, my_nonce: int = 0xAAAAAAAA, dst: str = MODEM_MAC) -> bytes:
    body = CM_SET_KEY_REQ(KeyType=1, MyNonce=my_nonce, YourNonce=0, PID=4, ProtoRunNumber=0, ProtoMessNumber=0,
                          CCoCapability=0, NetworkID=nid, NewEncKeySelect=1, NewKey=nmk)
    return _frame(dst, src, MMType.CM_SET_KEY_REQ, body)


def set_key_cnf(src: str, dst: str, *, result: int = 1, your_nonce: int = 0) -> bytes:
    body = CM_SET_KEY_CNF(Result=result, MyNonce=0, YourNonce=your_nonce, PID=4, ProtoRunNumber=0,
                          ProtoMessNumber=0xFF, CCoCapability=0)
    return _frame(dst, src, MMType.CM_SET_KEY_CNF, body)


def parm_req(src: str, run_id: bytes) -> bytes:
    return _frame(BROADCAST, src, MMType.CM_SLAC_PARM_REQ, CM_SLAC_PARM_REQ(ApplicationType=0, SecurityType=0, RunID=run_id))


def parm_cnf(src: str, ev_mac: str, run_id: bytes, *, num_sounds: int = C_EV_MATCH_MNBC, time_out: int = 6) -> bytes:
    body = CM_SLAC_PARM_CNF(MSoundTargetMAC=BROADCAST, NumberMSounds=num_sounds, TimeOut=time_out, ResponseType=1,
                            ForwardingSTA=ev_mac, ApplicationType=0, SecurityType=0, RunID=run_id)
    return _frame(ev_mac, src, MMType.CM_SLAC_PARM_CNF, body)


def start_atten_char(src: str, run_id: bytes, *, num_sounds: int = C_EV_MATCH_MNBC, time_out: int = 6) -> bytes:
    body = CM_START_ATTEN_CHAR_IND(ApplicationType=0, SecurityType=0, NumberOfSounds=num_sounds, TimeOut=time_out,
                                   ResponseType=1, ForwardingSTA=src, RunID=run_id)
    return _frame(BROADCAST, src, MMType.CM_START_ATTEN_CHAR_IND, body)


def mnbc_sound(src: str, run_id: bytes, countdown: int, rnd: bytes | None = None) -> bytes:
    body = CM_MNBC_SOUND_IND(ApplicationType=0, SecurityType=0, SenderID=bytes(17), Countdown=countdown, RunID=run_id,
                             RSVD=bytes(8), RandomValue=rnd if rnd is not None else os.urandom(16))
    return _frame(BROADCAST, src, MMType.CM_MNBC_SOUND_IND, body)


def atten_profile_ind(modem: str, pev_mac: str, aag: list[int], *, dst: str = BROADCAST) -> bytes:
    body = CM_ATTENUATION_CHARACTERISTICS_MME(EVMACAddress=pev_mac, NumberOfGroups=len(aag), NumberOfCarrierPerGroupe=0,
                                              Groups=[HPGP_GROUP(group=max(0, min(255, a))) for a in aag])
    return _frame(dst, modem, MMType.CM_ATTEN_PROFILE_IND, body)


def atten_char_ind(src: str, ev_mac: str, run_id: bytes, num_sounds: int, aag: list[int]) -> bytes:
    body = CM_ATTEN_CHAR_IND(ApplicationType=0, SecurityType=0, SourceAdress=ev_mac, RunID=run_id, SourceID=bytes(17),
                             ResponseID=bytes(17), NumberOfSounds=num_sounds, NumberOfGroups=len(aag),
                             Groups=[HPGP_GROUP(group=max(0, min(255, a))) for a in aag])
    return _frame(ev_mac, src, MMType.CM_ATTEN_CHAR_IND, body)


def atten_char_rsp(src: str, evse_mac: str, run_id: bytes, *, result: int = 0) -> bytes:
    body = CM_ATTEN_CHAR_RSP(ApplicationType=0, SecurityType=0, SourceAdress=src, RunID=run_id, SourceID=bytes(17),
                             ResponseID=bytes(17), Result=result)
    return _frame(evse_mac, src, MMType.CM_ATTEN_CHAR_RSP, body)


def match_req(src: str, evse_mac: str, run_id: bytes) -> bytes:
    var = SLAC_varfield(EVID=bytes(17), EVMAC=src, EVSEID=bytes(17), EVSEMAC=evse_mac, RunID=run_id, RSVD=bytes(8))
    return _frame(evse_mac, src, MMType.CM_SLAC_MATCH_REQ, CM_SLAC_MATCH_REQ(ApplicationType=0, SecurityType=0,
                                                                           VariableField=var))


def match_cnf(src: str, ev_mac: str, run_id: bytes, nid: bytes, nmk: bytes) -> bytes:
    var = SLAC_varfield_cnf(EVID=bytes(17), EVMAC=ev_mac, EVSEID=bytes(17), EVSEMAC=src, RunID=run_id, RSVD=bytes(8),
                            NetworkID=nid, Reserved=0, NMK=nmk)
    return _frame(ev_mac, src, MMType.CM_SLAC_MATCH_CNF, CM_SLAC_MATCH_CNF(ApplicationType=0, SecurityType=0,
                                                                         VariableField=var))


def validate_req(src: str, evse_mac: str, *, timer: int = 0, result: int = ValidateResult.READY) -> bytes:
    return _frame(evse_mac, src, MMType.CM_VALIDATE_REQ, CM_VALIDATE(SignalType=0, TimerOrToggles=timer, Result=result))


def amp_map_req(src: str, dst: str, amdata: bytes) -> bytes:
    return _frame(dst, src, MMType.CM_AMP_MAP_REQ, CM_AMP_MAP_REQ(AMDATA=amdata))


def amp_map_cnf(src: str, dst: str, *, result: int = 0) -> bytes:
    return _frame(dst, src, MMType.CM_AMP_MAP_CNF, CM_AMP_MAP_CNF(Result=result))


def validate_cnf(src: str, ev_mac: str, *, toggles: int = 0, result: int = ValidateResult.NOT_REQUIRED) -> bytes:
    return _frame(ev_mac, src, MMType.CM_VALIDATE_CNF, CM_VALIDATE(SignalType=0, TimerOrToggles=toggles, Result=result))


def padding_of(frame: SlacFrame) -> bytes:
    """Bytes after the message body (padding or a vendor's extra bytes)."""
    layer = frame.body.getlayer(Raw)
    return bytes(layer.load) if layer is not None else b""


__all__ += [
    "amp_map_cnf", "amp_map_req", "CM_AMP_MAP_CNF", "CM_AMP_MAP_REQ", "CM_VALIDATE", "MAX_FRAME", "NUM_GROUPS",
    "ValidateResult", "padding_of",
]
