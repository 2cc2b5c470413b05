"""Strict by default: the -20 groups (x448, secp521r1) and suites only, TLS 1.3 only; the wider
Josev profile (P-256 PKI, TLS 1.2) only behind ``--josev-pki``, which the log names.
Real SECC / EVCC processes and raw OpenSSL clients over loopback."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from iso15118.security import _openssl
from iso15118.security import tls as T
from iso15118.security.pki import create_pki

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]


def _start(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], int]:
    with log.open("w") as err:
        p = subprocess.Popen([*CMD, "secc", "--profile", "wall-connector", "--port", "0", *args],
                             stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO)
    assert p.stdout is not None
    ready = p.stdout.readline()
    assert ready.startswith("READY tls"), ready + log.read_text()
    return p, int(ready.rsplit(":", 1)[1])


def _raw_client(port: int, *, groups: tuple[str, ...] | None = None, suites: tuple[str, ...] | None = None) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if groups:
        _openssl.set_groups(ctx, groups)
    if suites:
        _openssl.set_tls13_ciphersuites(ctx, suites)
    with socket.create_connection(("::1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                s.settimeout(3)
                s.recv(1)
                return "open"
        except ssl.SSLError as exc:
            return str(exc.reason)
        except TimeoutError:
            return "open"


@pytest.mark.skipif(not _openssl.available(), reason="needs the OpenSSL knobs to restrict a test client")
def test_strict_default_and_named_compatibility(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    p20 = tmp_path / "pki20"
    create_pki(p20, "secp521r1")
    p256 = tmp_path / "pki256"
    create_pki(p256, "secp256r1")  # the same layout as Josev's P-256 test PKI
    strict, port = _start(["--pki", str(p20)], env, tmp_path / "strict.log")
    compat, cport = _start(["--pki", str(p256), "--josev-pki"], env, tmp_path / "compat.log")
    try:
        # groups / suites outside -20 are refused in the handshake
        assert _raw_client(port, groups=("x25519", "secp256r1", "secp384r1")) == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        assert _raw_client(port, suites=("TLS_AES_128_GCM_SHA256",)) == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        # our EVCC: TLS 1.3, a -20 suite and group, reported by the handshake observer
        r = subprocess.run([*CMD, "evcc", "--port", str(port), "--pki", str(p20), "--loops", "1", "--service", "AC_BPT"],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        assert r.returncode == 0 and "tls=TLSv1.3" in r.stdout, r.stdout + r.stderr
        assert "compatibility" not in r.stderr and "compatibility" not in (tmp_path / "strict.log").read_text()
        # the P-256 (Josev-style) EVCC is refused by the strict SECC ...
        r = subprocess.run([*CMD, "evcc", "--port", str(port), "--pki", str(p256), "--josev-pki", "--loops", "1",
                            "--service", "AC_BPT"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        assert r.returncode == 1 and r.stdout.startswith("FAIL"), r.stdout + r.stderr
        assert "TLS compatibility profile josev-compat" in r.stderr, r.stderr
        # ... and served by the SECC started with --josev-pki, whose log names the profile
        r = subprocess.run([*CMD, "evcc", "--port", str(cport), "--pki", str(p256), "--josev-pki", "--loops", "1",
                            "--service", "AC_BPT"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        assert r.returncode == 0 and r.stdout.startswith("PASS"), r.stdout + r.stderr
        clog = (tmp_path / "compat.log").read_text()
        assert "TLS profile: josev-compat" in clog and "TLS compatibility profile josev-compat" in clog, clog
    finally:
        for p in (strict, compat):
            p.kill()
            p.wait(10)


def test_context_profiles_and_groups() -> None:
    assert T.ISO20.groups == ("x448", "secp521r1")
    assert T.ISO20.minimum_version == T.ISO20.maximum_version == ssl.TLSVersion.TLSv1_3
    assert T.ISO20.tls13_ciphersuites == ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
