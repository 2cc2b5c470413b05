"""Every -20 chain rule on the live TLS path, both roles, with the real processes.

* SECC role: a real ``iso15118 secc`` process judges vehicle chains.  Broken chains are
  presented by a plain Python TLS 1.3 client (the alert it receives is read from its own
  ``ssl`` error) and, for one case and the valid chain, by a real ``iso15118 evcc`` process.
* EVCC role: a real ``iso15118 evcc`` process judges charger chains presented by a plain
  Python TLS 1.3 server, which records the alert it receives and whether any application
  data arrived.

Every chain is issued with the lab PKI's own CA keys, each breaking exactly one rule.  The
closing numbers (chains refused / tried per role) are printed by the summary tests.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from iso15118.security.pki import (
    PKI,
    Algorithm,
    IssuedCert,
    Profile,
    create_pki,
    issue_certificate,
    load_pki,
    make_crl,
    make_ocsp_response,
)

from .tls_harness import write_identity

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]
NOW = dt.datetime.now(dt.UTC)
VIN = "WMIV1234567890ABCDEX"
SECC_ID = "DE*PNX*E12345*1"


# --------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Broken:
    """A chain breaking one rule: the certificates sent (leaf first), the leaf key, the reason
    we expect in the log, and the alert (OpenSSL reason text the peer's ``ssl`` reports)."""

    name: str
    certs: list[x509.Certificate]
    key: object
    reason: str | None  # None: valid
    alert: str | None


def _ku(**flags: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _chains(p: PKI, role: str) -> list[Broken]:
    """``role="vehicle"`` (judged by the SECC) or ``"charger"`` (judged by the EVCC)."""
    if role == "vehicle":
        sub1, sub2, cn, dc, wrong_dc, prof, eku, wrong_eku = (
            "vehicleSubCA1", "vehicleSubCA2", VIN, "OEM", "CPO", Profile.VEHICLE,
            ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH)
    else:
        sub1, sub2, cn, dc, wrong_dc, prof, eku, wrong_eku = (
            "cpoSubCA1", "cpoSubCA2", SECC_ID, "CPO", "MO", Profile.SECC,
            ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    alg = p.algorithm
    i1, i2 = p.issued(sub1), p.issued(sub2)
    mids = [i2.cert, i1.cert]

    def leaf(issuer: IssuedCert = i2, **kw: object) -> tuple[x509.Certificate, object]:
        key = alg.generate_key()
        opts: dict[str, object] = {"cn": cn, "dc": dc, "profile": prof}
        opts.update(kw)
        return issue_certificate(key=key, issuer=issuer, **opts), key  # type: ignore[arg-type]

    out: list[Broken] = []
    c, k = leaf()
    out.append(Broken("valid", [c, *mids], k, None, None))
    # a P-256 Sub-CA 2 under the real Sub-CA 1, secp521r1 leaf below it
    p256 = Algorithm.SECP256R1.generate_key()
    weak = IssuedCert(issue_certificate(cn="SubCA2-P256", dc="V2G", profile=Profile.SUB_CA2, key=p256, issuer=i1), p256)
    c, k = leaf(weak)
    out.append(Broken("p256-sub-ca", [c, weak.cert, i1.cert], k, "WRONG_ALGORITHM", "BAD_CERTIFICATE"))
    c, k = leaf(dc=wrong_dc)
    out.append(Broken(f"dc-{wrong_dc}", [c, *mids], k, "WRONG_DOMAIN", "BAD_CERTIFICATE"))
    c, k = leaf(key_usage=_ku(key_agreement=True))
    out.append(Broken("ku-keyagreement-only", [c, *mids], k, "WRONG_KEY_USAGE", "UNSUPPORTED_CERTIFICATE"))
    c, k = leaf(extended_key_usage=[wrong_eku])
    out.append(Broken("eku-other-role", [c, *mids], k, "WRONG_KEY_USAGE", "UNSUPPORTED_CERTIFICATE"))
    c, k = leaf(not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1))
    out.append(Broken("expired", [c, *mids], k, "EXPIRED", "CERTIFICATE_EXPIRED"))
    # four Sub-CAs without pathLen below the root: OpenSSL alone accepts this 6-certificate chain
    chain_cas: list[IssuedCert] = [p.issued("v2gRootCA")]
    for n in range(4):
        ck = alg.generate_key()
        ca = issue_certificate(cn=f"LongSubCA{n}", dc="V2G", profile=Profile.SUB_CA1, key=ck, issuer=chain_cas[-1],
                               path_length=None)
        chain_cas.append(IssuedCert(ca, ck))
    c, k = leaf(chain_cas[-1])
    out.append(Broken("four-sub-cas", [c, *[x.cert for x in reversed(chain_cas[1:])]], k, "PATH_LENGTH", "UNKNOWN_CA"))
    other = load_pki(create_pki(p.paths.root.parent / f"other-{role}", "secp521r1").root)
    oc, ok_ = _other_leaf(other, sub2, cn, dc, prof)
    out.append(Broken("unknown-ca", [oc, other.cert(sub2), other.cert(sub1)], ok_, "UNKNOWN_ISSUER", "UNKNOWN_CA"))
    c, k = leaf()
    out.append(Broken("revoked", [c, *mids], k, "REVOKED", "CERTIFICATE_REVOKED"))
    c, k = leaf()
    out.append(Broken("ocsp-revoked", [c, *mids], k, "REVOKED", "CERTIFICATE_REVOKED"))
    assert eku is not None
    return out


def _other_leaf(other: PKI, sub2: str, cn: str, dc: str, prof: Profile) -> tuple[x509.Certificate, object]:
    key = other.algorithm.generate_key()
    return issue_certificate(cn=cn, dc=dc, profile=prof, key=key, issuer=other.issued(sub2)), key  # type: ignore[arg-type]


def _crl(p: PKI, issuer: str, revoked: Broken, directory: Path) -> Path:
    crl = make_crl(p.issued(issuer), [revoked.certs[0].serial_number])
    path = directory / f"{issuer}.crl.pem"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


# --------------------------------------------------------------------------- processes


@dataclass
class Secc:
    proc: subprocess.Popen[str]
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text()

    def new_lines(self, before: str, needle: str, want: int = 1) -> list[str]:
        """Lines with ``needle`` logged since ``before`` (waits up to 10 s for ``want`` of them:
        the alert can reach the client before the SECC has written its log line)."""
        for _ in range(200):
            lines = [ln for ln in self.log_text()[len(before):].splitlines() if needle in ln]
            if len(lines) >= want:
                return lines
            time.sleep(0.05)
        return lines


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PKI, dict[str, list[Broken]]]]:
    root = tmp_path_factory.mktemp("live-chains")
    p = load_pki(create_pki(root / "pki", "secp521r1").root)
    yield root, p, {"vehicle": _chains(p, "vehicle"), "charger": _chains(p, "charger")}


def _env(root: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(root / "cache"), PYTHONUNBUFFERED="1")


@pytest.fixture(scope="module")
def secc(lab: tuple[Path, PKI, dict[str, list[Broken]]]) -> Iterator[Secc]:
    root, p, chains = lab
    revoked = next(b for b in chains["vehicle"] if b.name == "revoked")
    crl = _crl(p, "vehicleSubCA2", revoked, root)
    ocsp_revoked = next(b for b in chains["vehicle"] if b.name == "ocsp-revoked")
    ocsp_file = root / "vehicle-ocsp.der"
    ocsp_file.write_bytes(make_ocsp_response(ocsp_revoked.certs[0], p.issued("vehicleSubCA2"),
                                             ocsp.OCSPCertStatus.REVOKED).public_bytes(serialization.Encoding.DER))
    log = root / "secc.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CMD, "secc", "--profile", "wall-connector", "--port", "0", "--pki", str(p.paths.root), "--crl", str(crl),
             "--ocsp", str(ocsp_file)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=_env(root), cwd=REPO,
        )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY tls"), ready + log.read_text()
        yield Secc(proc, int(ready.rsplit(":", 1)[1]), log)
    finally:
        proc.kill()
        proc.wait(10)


def _pki_copy(root: Path, p: PKI, name: str, chain_stem: str, leaf: str, b: Broken) -> Path:
    """A copy of the lab PKI whose ``chain_stem`` identity is the chain ``b``."""
    d = root / f"pki-{name}"
    if not d.exists():
        shutil.copytree(p.paths.root, d)
    chain, key = write_identity(d / "tmp", leaf, b.certs, b.key)  # type: ignore[arg-type]
    shutil.copy(chain, d / "certs" / f"{chain_stem}.pem")
    shutil.copy(key, d / "private_keys" / f"{leaf}.key")
    (d / "private_keys" / f"{leaf}Password.txt").unlink(missing_ok=True)
    return d


def _evcc(root: Path, pki: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CMD, "evcc", "--host", "::1", "--port", str(port), "--pki", str(pki), "--loops", "1", "--service", "AC_BPT",
         *extra],
        capture_output=True, text=True, env=_env(root), cwd=REPO, timeout=90,
    )


# --------------------------------------------------------------------------- raw TLS peers


def _raw_client_ctx(chain: Path | None, key: Path | None, *, tls12: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if chain is not None and key is not None:
        ctx.load_cert_chain(chain, key)
    return ctx


def _client_alert(port: int, ctx: ssl.SSLContext) -> str:
    """Connect, finish our side of the handshake, read: the OpenSSL reason of the alert we get
    ("" if the SECC accepted us and kept the connection open waiting for V2GTP)."""
    with socket.create_connection(("::1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                s.settimeout(3)
                data = s.recv(10)
                return f"DATA {data!r}"
        except ssl.SSLError as exc:
            return str(exc.reason)
        except TimeoutError:
            return ""


def _alert_name(text: str) -> str:
    """OpenSSL reason -> alert part: SSLV3_ALERT_BAD_CERTIFICATE -> BAD_CERTIFICATE."""
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if prefix in text:
            return text.split(prefix, 1)[1].split()[0].strip("]:")
    return text


class RawServer:
    """A plain TLS 1.3 charger presenting ``chain``: records how the handshake ended and
    whether application data arrived."""

    def __init__(self, chain: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(chain, key)
        self.sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
        self.sock.settimeout(60)
        self.port = self.sock.getsockname()[1]
        self.error: str | None = None
        self.data = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            raw, _ = self.sock.accept()
        except OSError as exc:
            self.error = f"accept: {exc}"
            return
        with raw:
            raw.settimeout(30)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as s:
                    self.data = s.recv(8)
            except (ssl.SSLError, OSError) as exc:
                self.error = str(getattr(exc, "reason", None) or exc)

    def close(self) -> None:
        self.thread.join(60)
        self.sock.close()


# --------------------------------------------------------------------------- SECC judges the vehicle

VEHICLE_CASES = ["valid", "p256-sub-ca", "dc-CPO", "ku-keyagreement-only", "eku-other-role", "expired", "four-sub-cas",
                 "unknown-ca", "revoked", "ocsp-revoked"]
_RESULTS: dict[str, dict[str, bool]] = {"secc": {}, "evcc": {}}


@pytest.mark.parametrize("case", VEHICLE_CASES)
def test_secc_judges_vehicle_chain(case: str, lab: tuple[Path, PKI, dict[str, list[Broken]]], secc: Secc,
                                   tmp_path: Path) -> None:
    root, p, chains = lab
    b = next(x for x in chains["vehicle"] if x.name == case)
    chain, key = write_identity(tmp_path, "vehicle", b.certs, b.key)  # type: ignore[arg-type]
    before = secc.log_text()
    got = _client_alert(secc.port, _raw_client_ctx(chain, key))
    if b.reason is None:
        assert got == "", f"a valid vehicle chain was refused: {got}"
        _RESULTS["secc"][case] = False
        return
    assert _alert_name(got) == b.alert, f"{case}: client got {got!r}\n{secc.log_text()[len(before):]}"
    lines = secc.new_lines(before, "TLS handshake from")
    assert len(lines) == 1 and b.reason in lines[0], secc.log_text()[len(before):]
    _RESULTS["secc"][case] = True


def test_secc_refuses_missing_certificate_and_tls12(secc: Secc) -> None:
    before = secc.log_text()
    assert _alert_name(_client_alert(secc.port, _raw_client_ctx(None, None))) == "CERTIFICATE_REQUIRED"
    assert _alert_name(_client_alert(secc.port, _raw_client_ctx(None, None, tls12=True))) == "PROTOCOL_VERSION"
    secc.new_lines(before, "TLS handshake from", 2)
    new = secc.log_text()[len(before):]
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE -> alert certificate_required" in new, new
    assert "-> alert protocol_version" in new, new
    _RESULTS["secc"]["no-certificate"] = True
    _RESULTS["secc"]["tls12"] = True


def test_real_evcc_valid_and_broken_vehicle(lab: tuple[Path, PKI, dict[str, list[Broken]]], secc: Secc) -> None:
    """The real EVCC process: a freshly issued vehicle chain charges; a DC=CPO one gets the
    SECC's bad_certificate alert, and the EVCC's result line says so."""
    root, p, chains = lab
    good = _pki_copy(root, p, "fresh-vehicle", "vehicleCertChain", "vehicleLeaf", chains["vehicle"][0])
    r = _evcc(root, good, secc.port)
    assert r.returncode == 0 and r.stdout.startswith("PASS") and "tls=TLSv1.3" in r.stdout, r.stdout + r.stderr
    bad = next(x for x in chains["vehicle"] if x.name == "dc-CPO")
    d = _pki_copy(root, p, "dc-cpo-vehicle", "vehicleCertChain", "vehicleLeaf", bad)
    r = _evcc(root, d, secc.port)
    assert r.returncode == 1 and r.stdout.startswith("FAIL"), r.stdout + r.stderr
    assert "SSLV3_ALERT_BAD_CERTIFICATE" in r.stdout, r.stdout + r.stderr


# --------------------------------------------------------------------------- EVCC judges the charger

CHARGER_CASES = ["valid", "p256-sub-ca", "dc-MO", "ku-keyagreement-only", "eku-other-role", "expired", "four-sub-cas",
                 "unknown-ca", "revoked", "ocsp-revoked"]


@pytest.mark.parametrize("case", CHARGER_CASES)
def test_evcc_judges_charger_chain(case: str, lab: tuple[Path, PKI, dict[str, list[Broken]]], tmp_path: Path) -> None:
    root, p, chains = lab
    b = next(x for x in chains["charger"] if x.name == case)
    revoked = next(x for x in chains["charger"] if x.name == "revoked")
    crl = _crl(p, "cpoSubCA2", revoked, tmp_path)
    ocsp_revoked = next(x for x in chains["charger"] if x.name == "ocsp-revoked")
    ocsp_file = tmp_path / "ocsp.der"
    ocsp_file.write_bytes(make_ocsp_response(ocsp_revoked.certs[0], p.issued("cpoSubCA2"), ocsp.OCSPCertStatus.REVOKED)
                          .public_bytes(serialization.Encoding.DER))
    chain, key = write_identity(tmp_path, "charger", b.certs, b.key)  # type: ignore[arg-type]
    server = RawServer(chain, key)
    try:
        r = _evcc(root, p.paths.root, server.port, "--crl", str(crl), "--ocsp", str(ocsp_file))
    finally:
        server.close()
    if b.reason is None:
        assert server.error is None and server.data[:2] == b"\x01\xfe", (server.error, server.data, r.stdout, r.stderr)
        _RESULTS["evcc"][case] = False
        return
    assert server.data == b"", f"{case}: the EVCC sent application data to a refused charger"
    assert r.returncode == 1 and "tls=handshake-failed" in r.stdout, r.stdout + r.stderr
    assert b.reason in r.stdout, r.stdout
    assert server.error is not None and _alert_name(server.error) == b.alert, (server.error, r.stdout)
    lines = [ln for ln in r.stderr.splitlines() if "TLS handshake with" in ln]
    assert len(lines) == 1 and b.reason in lines[0], r.stderr
    _RESULTS["evcc"][case] = True


def test_zz_closing_numbers() -> None:
    """Chains refused / tried per role (printed for the closing note)."""
    for role, res in _RESULTS.items():
        tried = len(res)
        refused = sum(res.values())
        print(f"{role}: {refused} broken chains refused with their alert / {tried} tried "
              f"(valid accepted: {[k for k, v in res.items() if not v]})")
    if len(_RESULTS["secc"]) < len(VEHICLE_CASES) or len(_RESULTS["evcc"]) < len(CHARGER_CASES):
        pytest.skip("run with the whole module for the closing numbers")
    assert sum(_RESULTS["secc"].values()) == len(VEHICLE_CASES) - 1 + 2
    assert sum(_RESULTS["evcc"].values()) == len(CHARGER_CASES) - 1


_ = Callable


def test_openssl_s_client_sees_the_alert(lab: tuple[Path, PKI, dict[str, list[Broken]]], secc: Secc,
                                         tmp_path: Path) -> None:
    """An independent client, ``openssl s_client``, presenting the DC=CPO vehicle chain: it reports
    the SECC's bad_certificate alert (alert number 42)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl binary not installed (tools/_env.sh installs it)")
    root, p, chains = lab
    b = next(x for x in chains["vehicle"] if x.name == "dc-CPO")
    chain, key = write_identity(tmp_path, "vehicle", b.certs, b.key)  # type: ignore[arg-type]
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(b.certs[0].public_bytes(serialization.Encoding.PEM))
    r = subprocess.run(
        [openssl, "s_client", "-connect", f"[::1]:{secc.port}", "-tls1_3", "-groups", "x448:secp521r1",
         "-cert", str(leaf), "-cert_chain", str(chain), "-key", str(key), "-ign_eof"],
        input="", capture_output=True, text=True, timeout=30,
    )
    text = r.stdout + r.stderr
    assert "alert bad certificate" in text and "alert number 42" in text, text[-1500:]
