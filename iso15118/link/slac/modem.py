"""A simulated HomePlug Green PHY modem for links without a PLC chip (sans-IO).

It sits between its host's SLAC application and the line (a veth pair in the tests):

* CM_SET_KEY.REQ addressed to the modem (00:B0:52:00:00:01, its own MAC or broadcast): it
  keeps NMK / NID and answers CM_SET_KEY.CNF to the host (Result configurable: 0x01 like QCA
  firmware by default, 0x00 as HPGP says); nothing goes on the line.
* Every other frame passes unchanged in both directions.
* A CM_MNBC_SOUND.IND arriving from the line is passed to the host followed by a
  CM_ATTEN_PROFILE.IND (source = the modem, PEV MAC = the sound's source, 58 groups) with the
  link's attenuation model: ``base_db`` per group, rising by ``slope_db`` towards the high
  groups, plus a deterministic ripple (real profiles span 8-74 dB).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from iso15118.link.slac import messages as msg
from iso15118.link.slac.messages import MMType, SlacDecodeError
from iso15118.link.timers import NUM_GROUPS

__all__ = ["SimModem"]


@dataclass
class SimModem:
    host_mac: str
    modem_mac: str = ""
    base_db: float = 20.0
    slope_db: float = 8.0
    ripple_db: float = 2.0
    set_key_result: int = 1
    seed: int = 15118
    nmk: bytes | None = None
    nid: bytes | None = None
    profiles: int = 0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.host_mac = self.host_mac.lower()
        if not self.modem_mac:
            b = bytearray(msg.mac_bytes(self.host_mac))
            b[0] = (b[0] | 0x02) & 0xFE
            b[5] ^= 0x5A
            self.modem_mac = msg.mac_str(bytes(b))
        self._rng = random.Random(self.seed)

    def aag(self) -> list[int]:
        return [
            max(1, min(255, round(self.base_db + self.slope_db * g / (NUM_GROUPS - 1) + self._rng.uniform(-1, 1) * self.ripple_db)))
            for g in range(NUM_GROUPS)
        ]

    def from_host(self, frame: bytes) -> tuple[list[bytes], list[bytes]]:
        """A frame the host sends: (frames for the line, frames back to the host)."""
        dst = msg.mac_str(frame[0:6]) if len(frame) >= 6 else ""
        if dst in (msg.MODEM_MAC, self.modem_mac, msg.BROADCAST) and len(frame) >= 17 and frame[12:14] == b"\x88\xe1":
            try:
                f = msg.parse(frame)
            except SlacDecodeError:
                f = None
            if f is not None and f.mmtype is MMType.CM_SET_KEY_REQ:
                self.nmk, self.nid = bytes(f.get("NewKey")), bytes(f.get("NetworkID"))
                self.log.append(f"key set: NID {self.nid.hex()}")
                cnf = msg.set_key_cnf(self.modem_mac, f.src, result=self.set_key_result, your_nonce=int(f.get("MyNonce")))
                return [], [cnf]
        return [frame], []

    def from_line(self, frame: bytes) -> list[bytes]:
        """A frame from the line: what the host receives."""
        out = [frame]
        if len(frame) >= 17 and frame[12:14] == b"\x88\xe1" and int.from_bytes(frame[15:17], "little") == MMType.CM_MNBC_SOUND_IND:
            pev = msg.mac_str(frame[6:12])
            self.profiles += 1
            out.append(msg.atten_profile_ind(self.modem_mac, pev, self.aag()))
        return out
