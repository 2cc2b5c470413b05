"""TLS decryption of a captured connection with an SSLKEYLOGFILE (NSS key log format).

Supported (facts from RFC 8446, RFC 5246, RFC 5288, RFC 7905, RFC 7366 and the NSS key log
format description):

* TLS 1.3: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256,
  TLS_AES_128_CCM_SHA256, TLS_AES_128_CCM_8_SHA256.  Keys come from the
  ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` (optional: without them the encrypted handshake is
  reported as not decryptable, application data still decrypts) and
  ``CLIENT_/SERVER_TRAFFIC_SECRET_0`` lines: ``key = HKDF-Expand-Label(secret, "key", "", n)``,
  ``iv = HKDF-Expand-Label(secret, "iv", "", 12)``, per-record nonce = iv XOR sequence number,
  AAD = the 5-byte record header, inner content type = last non-zero byte of the plaintext.
  KeyUpdate is followed (``"traffic upd"``).
* TLS 1.2: ``CLIENT_RANDOM`` master secret; key block from the TLS 1.2 PRF ("key expansion",
  server_random + client_random); AES-CBC + HMAC suites (e.g. ECDHE-ECDSA-AES128-SHA256, the
  ISO 15118-2 suite), with or without encrypt-then-MAC, AES-GCM and ChaCha20-Poly1305 suites.

:class:`TlsDecryptor` takes the two reassembled byte streams of one connection and returns
decrypted application data plus events (hellos, alerts, failures).  It never raises on bad
input; damage ends decryption of that direction with an event saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

__all__ = ["Keylog", "TlsDecryptor", "TlsOutput", "hkdf_expand_label", "tls12_prf", "CIPHER_SUITES"]

MAX_RECORD = (1 << 14) + 2048
_HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


@dataclass(frozen=True)
class Suite:
    name: str
    tls13: bool
    cipher: str  # gcm | chacha | cbc | ccm | ccm8
    key_len: int
    hash_name: str  # PRF / HKDF hash
    mac_name: str | None = None  # TLS 1.2 CBC MAC hash


CIPHER_SUITES: dict[int, Suite] = {
    0x1301: Suite("TLS_AES_128_GCM_SHA256", True, "gcm", 16, "sha256"),
    0x1302: Suite("TLS_AES_256_GCM_SHA384", True, "gcm", 32, "sha384"),
    0x1303: Suite("TLS_CHACHA20_POLY1305_SHA256", True, "chacha", 32, "sha256"),
    0x1304: Suite("TLS_AES_128_CCM_SHA256", True, "ccm", 16, "sha256"),
    0x1305: Suite("TLS_AES_128_CCM_8_SHA256", True, "ccm8", 16, "sha256"),
    0xC023: Suite("ECDHE-ECDSA-AES128-SHA256", False, "cbc", 16, "sha256", "sha256"),
    0xC024: Suite("ECDHE-ECDSA-AES256-SHA384", False, "cbc", 32, "sha384", "sha384"),
    0xC025: Suite("ECDH-ECDSA-AES128-SHA256", False, "cbc", 16, "sha256", "sha256"),
    0xC026: Suite("ECDH-ECDSA-AES256-SHA384", False, "cbc", 32, "sha384", "sha384"),
    0xC027: Suite("ECDHE-RSA-AES128-SHA256", False, "cbc", 16, "sha256", "sha256"),
    0xC028: Suite("ECDHE-RSA-AES256-SHA384", False, "cbc", 32, "sha384", "sha384"),
    0x003C: Suite("AES128-SHA256", False, "cbc", 16, "sha256", "sha256"),
    0x003D: Suite("AES256-SHA256", False, "cbc", 32, "sha256", "sha256"),
    0x0067: Suite("DHE-RSA-AES128-SHA256", False, "cbc", 16, "sha256", "sha256"),
    0x006B: Suite("DHE-RSA-AES256-SHA256", False, "cbc", 32, "sha256", "sha256"),
    0xC009: Suite("ECDHE-ECDSA-AES128-SHA", False, "cbc", 16, "sha256", "sha1"),
    0xC00A: Suite("ECDHE-ECDSA-AES256-SHA", False, "cbc", 32, "sha256", "sha1"),
    0xC013: Suite("ECDHE-RSA-AES128-SHA", False, "cbc", 16, "sha256", "sha1"),
    0xC014: Suite("ECDHE-RSA-AES256-SHA", False, "cbc", 32, "sha256", "sha1"),
    0x002F: Suite("AES128-SHA", False, "cbc", 16, "sha256", "sha1"),
    0x0035: Suite("AES256-SHA", False, "cbc", 32, "sha256", "sha1"),
    0xC02B: Suite("ECDHE-ECDSA-AES128-GCM-SHA256", False, "gcm", 16, "sha256"),
    0xC02C: Suite("ECDHE-ECDSA-AES256-GCM-SHA384", False, "gcm", 32, "sha384"),
    0xC02D: Suite("ECDH-ECDSA-AES128-GCM-SHA256", False, "gcm", 16, "sha256"),
    0xC02E: Suite("ECDH-ECDSA-AES256-GCM-SHA384", False, "gcm", 32, "sha384"),
    0xC02F: Suite("ECDHE-RSA-AES128-GCM-SHA256", False, "gcm", 16, "sha256"),
    0xC030: Suite("ECDHE-RSA-AES256-GCM-SHA384", False, "gcm", 32, "sha384"),
    0x009C: Suite("AES128-GCM-SHA256", False, "gcm", 16, "sha256"),
    0x009D: Suite("AES256-GCM-SHA384", False, "gcm", 32, "sha384"),
    0x009E: Suite("DHE-RSA-AES128-GCM-SHA256", False, "gcm", 16, "sha256"),
    0x009F: Suite("DHE-RSA-AES256-GCM-SHA384", False, "gcm", 32, "sha384"),
    0xCCA8: Suite("ECDHE-RSA-CHACHA20-POLY1305", False, "chacha", 32, "sha256"),
    0xCCA9: Suite("ECDHE-ECDSA-CHACHA20-POLY1305", False, "chacha", 32, "sha256"),
    0xCCAA: Suite("DHE-RSA-CHACHA20-POLY1305", False, "chacha", 32, "sha256"),
}

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha1": hashes.SHA1,
}
_MAC_LEN = {"sha256": 32, "sha384": 48, "sha1": 20}
_ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 113: "bad_certificate_status_response",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
}


# --------------------------------------------------------------------------------------------
# Key log


class Keylog:
    """Secrets of an NSS key log file: ``label -> client_random -> secret``."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[bytes, bytes]] = {}
        self.errors: list[str] = []

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keylog:
        with open(path, encoding="ascii", errors="replace") as f:
            return cls.parse(f.read())

    @classmethod
    def parse(cls, text: str) -> Keylog:
        k = cls()
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3:
                k.errors.append(f"line {n}: expected 'LABEL client_random secret'")
                continue
            try:
                cr, secret = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            except ValueError:
                k.errors.append(f"line {n}: not hex")
                continue
            k.secrets.setdefault(parts[0], {})[cr] = secret
        return k

    def merge(self, other: Keylog) -> None:
        """Add another log's secrets (e.g. one embedded in a pcapng file)."""
        for label, d in other.secrets.items():
            self.secrets.setdefault(label, {}).update(d)
        self.errors.extend(other.errors)

    def get(self, label: str, client_random: bytes) -> bytes | None:
        return self.secrets.get(label, {}).get(client_random)

    def knows(self, client_random: bytes) -> bool:
        """True when any secret of this session (client random) is in the log."""
        return any(client_random in v for v in self.secrets.values())

    def __len__(self) -> int:
        return sum(len(v) for v in self.secrets.values())


# --------------------------------------------------------------------------------------------
# Key derivation


def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1)."""
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(_HASHES[hash_name](), length, info).derive(secret)


def tls12_prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 PRF: P_hash(secret, label + seed) (RFC 5246 §5)."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


def _aead(suite: Suite, key: bytes) -> Any:
    if suite.cipher == "gcm":
        return AESGCM(key)
    if suite.cipher == "chacha":
        return ChaCha20Poly1305(key)
    if suite.cipher == "ccm":
        return AESCCM(key, tag_length=16)
    if suite.cipher == "ccm8":
        return AESCCM(key, tag_length=8)
    raise ValueError(suite.cipher)


class _Key13:
    """One TLS 1.3 traffic key with its record sequence number."""

    __slots__ = ("secret", "aead", "iv", "seq", "label")

    def __init__(self, suite: Suite, secret: bytes, label: str) -> None:
        self.secret = secret
        self.label = label
        key = hkdf_expand_label(suite.hash_name, secret, b"key", b"", suite.key_len)
        self.iv = hkdf_expand_label(suite.hash_name, secret, b"iv", b"", 12)
        self.aead = _aead(suite, key)
        self.seq = 0

    def open(self, header: bytes, ct: bytes) -> bytes | None:
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))
        try:
            pt = self.aead.decrypt(nonce, ct, header)
        except (InvalidTag, ValueError):
            return None
        self.seq += 1
        return bytes(pt)


class _Dir12:
    """TLS 1.2 state of one direction after ChangeCipherSpec."""

    __slots__ = ("suite", "key", "mac_key", "iv", "seq", "etm", "aead")

    def __init__(self, suite: Suite, key: bytes, mac_key: bytes, iv: bytes, etm: bool) -> None:
        self.suite = suite
        self.key = key
        self.mac_key = mac_key
        self.iv = iv
        self.seq = 0
        self.etm = etm
        self.aead = None if suite.cipher == "cbc" else _aead(suite, key)

    def open(self, ctype: int, version: bytes, frag: bytes) -> tuple[bytes | None, str]:
        seq = self.seq.to_bytes(8, "big")
        s = self.suite
        if s.cipher == "cbc":
            mac_name = s.mac_name or "sha256"
            mlen = _MAC_LEN[mac_name]
            if self.etm:
                if len(frag) < 32 + mlen:
                    return None, "record too short"
                body, tag = frag[:-mlen], frag[-mlen:]
                want = hmac.new(self.mac_key, seq + bytes([ctype]) + version + len(body).to_bytes(2, "big") + body,
                                mac_name).digest()
                if not hmac.compare_digest(want, tag):
                    return None, "MAC check failed"
                pt = _cbc_decrypt(self.key, body)
                if pt is None:
                    return None, "bad padding"
                self.seq += 1
                return pt, ""
            if len(frag) < 32 or len(frag) % 16:
                return None, "record length not a multiple of the block size"
            pt = _cbc_decrypt(self.key, frag)
            if pt is None or len(pt) < mlen:
                return None, "bad padding"
            content, tag = pt[:-mlen], pt[-mlen:]
            want = hmac.new(self.mac_key, seq + bytes([ctype]) + version + len(content).to_bytes(2, "big") + content,
                            mac_name).digest()
            if not hmac.compare_digest(want, tag):
                return None, "MAC check failed"
            self.seq += 1
            return content, ""
        if s.cipher == "gcm":
            if len(frag) < 24:
                return None, "record too short"
            nonce = self.iv[:4] + frag[:8]
            ct = frag[8:]
        else:  # chacha: RFC 7905 nonce = iv XOR padded sequence number
            if len(frag) < 16:
                return None, "record too short"
            nonce = bytes(a ^ b for a, b in zip(self.iv, seq.rjust(12, b"\0")))
            ct = frag
        aad = seq + bytes([ctype]) + version + (len(ct) - 16).to_bytes(2, "big")
        try:
            pt = self.aead.decrypt(nonce, ct, aad)  # type: ignore[union-attr]
        except (InvalidTag, ValueError):
            return None, "authentication tag mismatch"
        self.seq += 1
        return pt, ""


def _cbc_decrypt(key: bytes, body: bytes) -> bytes | None:
    """AES-CBC with an explicit IV block first; strips and checks TLS padding."""
    if len(body) < 32 or len(body) % 16:
        return None
    d = Cipher(algorithms.AES(key), modes.CBC(body[:16])).decryptor()
    pt = d.update(body[16:]) + d.finalize()
    pad = pt[-1]
    if pad + 1 > len(pt) or pt[-pad - 1 :] != bytes([pad]) * (pad + 1):
        return None
    return pt[: -pad - 1]


# --------------------------------------------------------------------------------------------
# Decryptor


@dataclass(slots=True)
class TlsOutput:
    """Decrypted application data (``kind == "app"``) or an event (``kind == "event"``)."""

    kind: str
    data: bytes = b""
    name: str = ""
    level: str = "info"
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def _event(name: str, level: str = "info", detail: str = "", **fields: Any) -> TlsOutput:
    return TlsOutput("event", b"", name, level, detail, fields)


class TlsDecryptor:
    """Decrypts both directions of one TLS connection (0 = client to server)."""

    def __init__(self, keylog: Keylog) -> None:
        self.keylog = keylog
        self._buf = [bytearray(), bytearray()]
        self._hs_buf = [bytearray(), bytearray()]  # plaintext handshake bytes (split messages)
        self._broken = [False, False]
        self.client_random: bytes | None = None
        self.server_random: bytes | None = None
        self.suite: Suite | None = None
        self.suite_id: int | None = None
        self.version: str | None = None
        self.etm = False
        self._keys13: list[list[_Key13]] = [[], []]
        self._cur13 = [0, 0]
        self._pending_update = [False, False]
        self._dir12: list[_Dir12 | None] = [None, None]
        self._ccs = [False, False]
        self._ccs_any = [False, False]
        self._blind_reported = False
        self._missing_reported = False
        self.app_bytes = [0, 0]
        self.records = [0, 0]

    # -- input ------------------------------------------------------------------------------

    def gap(self, direction: int, missing: int) -> list[TlsOutput]:
        if self._broken[direction]:
            return []
        self._broken[direction] = True
        return [_event("TLS stream broken", "error",
                       f"{missing} bytes missing: record boundaries and sequence numbers are lost; "
                       "the rest of this direction cannot be decrypted")]

    def feed(self, direction: int, data: bytes) -> list[TlsOutput]:
        out: list[TlsOutput] = []
        if self._broken[direction]:
            return out
        buf = self._buf[direction]
        buf += data
        pos = 0
        while len(buf) - pos >= 5:
            ctype = buf[pos]
            version = bytes(buf[pos + 1 : pos + 3])
            length = (buf[pos + 3] << 8) | buf[pos + 4]
            if ctype not in (20, 21, 22, 23, 24) or buf[pos + 1] != 3 or length > MAX_RECORD:
                self._broken[direction] = True
                out.append(_event("TLS framing error", "error",
                                  f"not a TLS record header: {bytes(buf[pos:pos + 5]).hex()}; decryption of this "
                                  "direction stops"))
                del buf[:]
                return out
            if len(buf) - pos < 5 + length:
                break
            header = bytes(buf[pos : pos + 5])
            frag = bytes(buf[pos + 5 : pos + 5 + length])
            pos += 5 + length
            self.records[direction] += 1
            try:
                self._record(direction, ctype, version, header, frag, out)
            except Exception as exc:  # defensive: never let odd input crash the decoder
                out.append(_event("TLS error", "error", f"{type(exc).__name__}: {exc}"))
        del buf[:pos]
        return out

    # -- records ----------------------------------------------------------------------------

    def _record(self, d: int, ctype: int, version: bytes, header: bytes, frag: bytes, out: list[TlsOutput]) -> None:
        if ctype == 20:  # ChangeCipherSpec
            self._ccs_any[d] = True
            if self.version == "TLS 1.2":
                self._ccs[d] = True
                if self._dir12[d] is None:
                    self._setup12(out)
            return
        tls13 = self.version == "TLS 1.3"
        if self.version is None and (self._ccs_any[d] or (self.client_random is not None and ctype == 23)):
            # Records after a ChangeCipherSpec, or application data, with no ServerHello seen:
            # encrypted with keys we cannot know (version, suite and server random are missing).
            if not self._blind_reported:
                self._blind_reported = True
                out.append(_event("TLS not decryptable", "error",
                                  "the ServerHello was not captured: protocol version, cipher suite and server "
                                  "random are unknown, so no record can be decrypted"))
            return
        encrypted = (tls13 and ctype == 23) or (not tls13 and self._ccs[d])
        if not encrypted:
            if ctype == 22:
                self._handshake(d, frag, out)
            elif ctype == 21 and len(frag) >= 2:
                out.append(self._alert(frag))
            elif ctype == 23:
                out.append(_event("TLS application data before keys", "warning",
                                  f"{len(frag)} bytes of application data before the handshake was seen"))
            return
        if tls13:
            pt = self._open13(d, header, frag, out)
            if pt is None:
                return
            inner = pt.rstrip(b"\0")
            if not inner:
                out.append(_event("TLS decrypt error", "error", "inner plaintext has no content type"))
                return
            ctype, content = inner[-1], inner[:-1]
        else:
            st = self._dir12[d]
            if st is None:
                if not self._missing_reported:
                    self._missing_reported = True
                    out.append(self._no_keys())
                return
            plain, why = st.open(ctype, version, frag)
            if plain is None:
                out.append(_event("TLS decrypt error", "error", f"record {st.seq} of direction {d}: {why}"))
                return
            content = plain
        if ctype == 23:
            self.app_bytes[d] += len(content)
            out.append(TlsOutput("app", content))
        elif ctype == 21 and len(content) >= 2:
            out.append(self._alert(content))
        elif ctype == 22 and tls13:
            self._post_handshake13(d, content, out)

    def _alert(self, b: bytes) -> TlsOutput:
        level = {1: "warning", 2: "fatal"}.get(b[0], str(b[0]))
        desc = _ALERTS.get(b[1], str(b[1]))
        return _event(f"TLS alert {desc}", "info" if b[1] == 0 else "error", f"{level} alert", alert_level=level, description=desc)

    def _no_keys(self) -> TlsOutput:
        cr = self.client_random.hex() if self.client_random else "?"
        return _event("TLS keys missing", "error",
                      f"the key log has no secrets for client random {cr[:16]}...: records stay encrypted")

    # -- handshake --------------------------------------------------------------------------

    def _handshake(self, d: int, frag: bytes, out: list[TlsOutput]) -> None:
        hb = self._hs_buf[d]
        hb += frag
        while len(hb) >= 4:
            mtype = hb[0]
            mlen = int.from_bytes(hb[1:4], "big")
            if len(hb) < 4 + mlen:
                break
            body = bytes(hb[4 : 4 + mlen])
            del hb[: 4 + mlen]
            if mtype == 1 and d == 0:
                self._client_hello(body, out)
            elif mtype == 2 and d == 1:
                self._server_hello(body, out)

    def _client_hello(self, body: bytes, out: list[TlsOutput]) -> None:
        if len(body) < 35:
            out.append(_event("TLS ClientHello", "warning", "too short"))
            return
        self.client_random = body[2:34]
        p = 34
        p += 1 + body[p]
        n = int.from_bytes(body[p : p + 2], "big")
        suites = [int.from_bytes(body[p + 2 + i : p + 4 + i], "big") for i in range(0, n, 2)]
        known = [CIPHER_SUITES[s].name for s in suites if s in CIPHER_SUITES]
        out.append(_event("TLS ClientHello", "info", f"{len(suites)} cipher suites offered",
                          client_random=self.client_random.hex().upper(), suites=known))

    def _server_hello(self, body: bytes, out: list[TlsOutput]) -> None:
        if len(body) < 38:
            out.append(_event("TLS ServerHello", "warning", "too short"))
            return
        random = body[2:34]
        if random == _HRR_RANDOM:
            out.append(_event("TLS HelloRetryRequest", "info", "server asks for another key share"))
            return
        self.server_random = random
        p = 34
        p += 1 + body[p]
        suite_id = int.from_bytes(body[p : p + 2], "big")
        p += 3
        version = "TLS 1.2"
        etm = False
        if p + 2 <= len(body):
            end = p + 2 + int.from_bytes(body[p : p + 2], "big")
            p += 2
            while p + 4 <= min(end, len(body)):
                etype = int.from_bytes(body[p : p + 2], "big")
                elen = int.from_bytes(body[p + 2 : p + 4], "big")
                ext = body[p + 4 : p + 4 + elen]
                if etype == 43 and ext == b"\x03\x04":
                    version = "TLS 1.3"
                elif etype == 22:
                    etm = True
                p += 4 + elen
        self.version = version
        self.etm = etm
        self.suite_id = suite_id
        self.suite = CIPHER_SUITES.get(suite_id)
        name = self.suite.name if self.suite else f"0x{suite_id:04X}"
        fields: dict[str, Any] = {"version": version, "suite": name}
        if etm and version == "TLS 1.2":
            fields["encrypt_then_mac"] = True
        out.append(_event("TLS ServerHello", "info", f"{version}, {name}", **fields))
        if self.suite is None:
            out.append(_event("TLS suite unsupported", "error", f"cipher suite {name} cannot be decrypted"))
            return
        if version == "TLS 1.3":
            self._setup13(out)

    # -- TLS 1.3 ----------------------------------------------------------------------------

    def _setup13(self, out: list[TlsOutput]) -> None:
        assert self.suite is not None and self.client_random is not None
        kl = self.keylog
        cr = self.client_random
        for d, (hs_label, app_label) in enumerate(
            (("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"),
             ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"))
        ):
            keys: list[_Key13] = []
            hs = kl.get(hs_label, cr)
            if hs is not None:
                keys.append(_Key13(self.suite, hs, "handshake"))
            app = kl.get(app_label, cr)
            if app is not None:
                keys.append(_Key13(self.suite, app, "application"))
            self._keys13[d] = keys
        if not self._keys13[0] and not self._keys13[1]:
            self._missing_reported = True
            out.append(self._no_keys())

    def _open13(self, d: int, header: bytes, frag: bytes, out: list[TlsOutput]) -> bytes | None:
        keys = self._keys13[d]
        cur = self._cur13[d]
        for i in range(cur, len(keys)):
            pt = keys[i].open(header, frag)
            if pt is not None:
                if i != cur:
                    self._cur13[d] = i
                return pt
        if keys:
            stage = keys[cur].label if cur < len(keys) else "?"
            out.append(_event("TLS decrypt error", "warning" if stage == "application" and cur == 0 and len(keys) == 1 else "error",
                              f"record of {len(frag)} bytes does not decrypt with the {stage} key"
                              + (" (no handshake secret in the key log: encrypted handshake skipped)"
                                 if len(keys) == 1 and stage == "application" else "")))
        elif not self._missing_reported:
            self._missing_reported = True
            out.append(self._no_keys())
        return None

    def _post_handshake13(self, d: int, content: bytes, out: list[TlsOutput]) -> None:
        p = 0
        while p + 4 <= len(content):
            mtype = content[p]
            mlen = int.from_bytes(content[p + 1 : p + 4], "big")
            if mtype == 24:  # KeyUpdate: the sender's next records use the next secret
                keys = self._keys13[d]
                cur = self._cur13[d]
                if keys and self.suite is not None:
                    nxt = hkdf_expand_label(self.suite.hash_name, keys[cur].secret, b"traffic upd", b"",
                                            hashlib.new(self.suite.hash_name).digest_size)
                    keys.insert(cur + 1, _Key13(self.suite, nxt, "application"))
                    del keys[cur + 2 :]
                    self._cur13[d] = cur + 1
                    out.append(_event("TLS KeyUpdate", "info", "traffic keys updated"))
            p += 4 + mlen

    # -- TLS 1.2 ----------------------------------------------------------------------------

    def _setup12(self, out: list[TlsOutput]) -> None:
        s = self.suite
        if s is None or self.client_random is None or self.server_random is None:
            return
        master = self.keylog.get("CLIENT_RANDOM", self.client_random)
        if master is None:
            if not self._missing_reported:
                self._missing_reported = True
                out.append(self._no_keys())
            return
        mac_len = _MAC_LEN[s.mac_name] if s.cipher == "cbc" and s.mac_name else 0
        iv_len = {"gcm": 4, "chacha": 12}.get(s.cipher, 0)
        n = 2 * (mac_len + s.key_len + iv_len)
        kb = tls12_prf(s.hash_name, master, b"key expansion", self.server_random + self.client_random, n)
        p = 0
        cmac, smac = kb[p : p + mac_len], kb[p + mac_len : p + 2 * mac_len]
        p += 2 * mac_len
        ckey, skey = kb[p : p + s.key_len], kb[p + s.key_len : p + 2 * s.key_len]
        p += 2 * s.key_len
        civ, siv = kb[p : p + iv_len], kb[p + iv_len : p + 2 * iv_len]
        self._dir12 = [_Dir12(s, ckey, cmac, civ, self.etm), _Dir12(s, skey, smac, siv, self.etm)]
