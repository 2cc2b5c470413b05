"""The lab PKI generator: files, extensions, lifetimes, keys, CLI."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iso15118.security.pki import CHAINS, PKI, SPECS, Algorithm, Profile, create_pki, load_pki

ROOT = Path(__file__).resolve().parents[2]


def ext(cert: x509.Certificate, cls: type):  # noqa: ANN201
    return cert.extensions.get_extension_for_class(cls)


def test_all_files_written(pki: PKI) -> None:
    p = pki.paths
    for spec in SPECS:
        assert p.cert(spec.name).is_file() and p.der(spec.name).is_file() and p.key(spec.name).is_file()
        der = p.der(spec.name).read_bytes()
        assert x509.load_der_x509_certificate(der) == pki.cert(spec.name)
        assert len(der) <= 1600, "certificateType is DER <= 1600 bytes"
        assert (p.password_file(spec.name) is not None) == spec.encrypt_key
    for stem, members in CHAINS.items():
        chain = x509.load_pem_x509_certificates(p.chain(stem).read_bytes())
        assert chain == [pki.cert(n) for n in members]
    assert x509.load_pem_x509_certificates(p.chain("cpoCertChain").read_bytes())[0] == pki.cert("seccLeaf")


def test_key_algorithms(pki: PKI) -> None:
    for name, cert in pki.certs.items():
        key = cert.public_key()
        if pki.algorithm is Algorithm.SECP521R1:
            assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp521r1", name
            assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512, name
        else:
            assert isinstance(key, ed448.Ed448PublicKey), name
            assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ED448, name


def test_ca_extensions(pki: PKI) -> None:
    for spec in SPECS:
        cert = pki.cert(spec.name)
        bc = ext(cert, x509.BasicConstraints)
        ku = ext(cert, x509.KeyUsage)
        assert bc.critical and ku.critical
        assert bc.value.ca == spec.profile.is_ca
        assert bc.value.path_length == {Profile.SUB_CA1: 1, Profile.SUB_CA2: 0}.get(spec.profile)
        if spec.profile.is_ca:
            assert ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
        else:
            assert ku.value.digital_signature and not ku.value.key_cert_sign
        ski = ext(cert, x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
        if spec.issuer:
            aki = ext(cert, x509.AuthorityKeyIdentifier).value
            assert aki.key_identifier == ext(pki.cert(spec.issuer), x509.SubjectKeyIdentifier).value.digest
            assert cert.issuer == pki.cert(spec.issuer).subject
            cert.verify_directly_issued_by(pki.cert(spec.issuer))
        else:
            assert cert.issuer == cert.subject


def test_leaf_profiles(pki: PKI) -> None:
    edwards = pki.algorithm is Algorithm.ED448
    secc = pki.cert("seccLeaf")
    assert secc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DE*PNX*E12345*1"
    assert secc.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)[0].value == "CPO"
    with pytest.raises(x509.ExtensionNotFound):
        ext(secc, x509.SubjectAlternativeName)
    assert list(ext(secc, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ext(secc, x509.KeyUsage).value.key_agreement is (not edwards)
    for name in ("vehicleLeaf", "oemLeaf"):
        assert list(ext(pki.cert(name), x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    contract = ext(pki.cert("contractLeaf"), x509.KeyUsage).value
    assert contract.digital_signature and contract.content_commitment
    assert contract.key_encipherment is (not edwards) and contract.key_agreement is (not edwards)
    assert pki.emaid == "DEPNXC123456789"
    # The vehicle chain hangs below the V2G root (decision on DISAGREE item §1.3).
    assert pki.cert("vehicleSubCA1").issuer == pki.cert("v2gRootCA").subject


def test_lifetimes(pki_p521: PKI) -> None:
    def days(name: str) -> float:
        c = pki_p521.cert(name)
        return (c.not_valid_after_utc - c.not_valid_before_utc) / dt.timedelta(days=1)

    assert days("v2gRootCA") == 3650
    assert days("cpoSubCA1") == 1460
    assert days("cpoSubCA2") == 365
    assert days("seccLeaf") == 60
    assert days("contractLeaf") == 730
    assert days("cpsLeaf") == 90
    now = dt.datetime.now(dt.UTC)
    for cert in pki_p521.certs.values():
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc


def test_leaf_never_outlives_issuer(tmp_path: Path) -> None:
    p = load_pki(create_pki(tmp_path, "ed448", validity_days={"seccLeaf": 5000, "cpoSubCA2": 10}).root)
    assert p.cert("seccLeaf").not_valid_after_utc == p.cert("cpoSubCA2").not_valid_after_utc
    with pytest.raises(ValueError, match="unknown"):
        create_pki(tmp_path / "x", "ed448", validity_days={"nope": 1})


def test_private_keys(pki: PKI) -> None:
    p = pki.paths
    for spec in SPECS:
        path = p.key(spec.name)
        data = path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        if spec.encrypt_key:
            assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            with pytest.raises(TypeError):
                serialization.load_pem_private_key(data, password=None)
            key = serialization.load_pem_private_key(data, password=p.password(spec.name))
        else:
            assert data.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
            key = serialization.load_pem_private_key(data, password=None)
        assert key.public_key() == pki.cert(spec.name).public_key()


def test_fixed_password(tmp_path: Path) -> None:
    p = create_pki(tmp_path, "secp521r1", password=b"12345")
    assert p.password("seccLeaf") == b"12345"
    assert load_pki(tmp_path).key("oemLeaf") is not None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_openssl_verifies_chains(pki: PKI) -> None:
    p = pki.paths
    roots = {"cpoCertChain": "v2gRootCA", "cpsCertChain": "v2gRootCA", "vehicleCertChain": "v2gRootCA",
             "oemCertChain": "oemRootCA", "moCertChain": "moRootCA"}
    for stem, root in roots.items():
        leaf, *rest = CHAINS[stem]
        cmd = ["openssl", "verify", "-x509_strict", "-CAfile", str(p.cert(root))]
        for r in rest:
            cmd += ["-untrusted", str(p.cert(r))]
        out = subprocess.run(cmd + [str(p.cert(leaf))], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stdout + out.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iso15118", "pki", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_cli_create_both(tmp_path: Path) -> None:
    """The real entry point, in a subprocess: ``python -m iso15118 pki create DIR``."""
    out = _cli("create", str(tmp_path / "lab"), "--algorithm", "both", "--validity-days", "20", "--validity-days", "seccLeaf=7")
    assert out.returncode == 0, out.stderr
    assert "PRIVATE KEY" not in out.stdout + out.stderr
    for alg in ("secp521r1", "ed448"):
        p = load_pki(tmp_path / "lab" / alg)
        assert p.algorithm.value == alg
        c = p.cert("seccLeaf")
        assert (c.not_valid_after_utc - c.not_valid_before_utc).days == 7
        c = p.cert("contractLeaf")
        assert (c.not_valid_after_utc - c.not_valid_before_utc).days == 20
        for pw in p.paths.keys_dir.glob("*Password.txt"):
            assert pw.read_text().strip() not in out.stdout


def test_cli_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same dispatcher, in-process (one interpreter start is enough for the slow imports)."""
    from iso15118.cli import main

    assert main(["pki", "create", str(tmp_path / "one")]) == 0
    assert load_pki(tmp_path / "one").algorithm is Algorithm.SECP521R1
    again = main(["pki", "create", str(tmp_path / "one")])
    assert again == 1 and "--force" in capsys.readouterr().err
    assert main(["pki", "create", str(tmp_path / "one"), "--force", "--algorithm", "ed448"]) == 0
    assert load_pki(tmp_path / "one").algorithm is Algorithm.ED448
    capsys.readouterr()
    assert main(["pki", "show", str(tmp_path / "one")]) == 0
    assert "contractLeaf" in capsys.readouterr().out
    assert main(["pki", "create", str(tmp_path / "two"), "--validity-days", "nope=3"]) == 2
    assert "unknown certificate" in capsys.readouterr().err
    assert main(["pki", "create", str(tmp_path / "two"), "--validity-days=-1"]) == 2
    assert not (tmp_path / "two" / "pki.json").exists()
    pw = tmp_path / "pw.txt"
    pw.write_text("s3cret-pass\n")
    assert main(["pki", "create", str(tmp_path / "three"), "--password-file", str(pw), "--emaid", "DE-ABC-C12345678-X"]) == 0
    out = capsys.readouterr()
    assert "s3cret-pass" not in out.out + out.err
    p = load_pki(tmp_path / "three")
    assert p.paths.password("seccLeaf") == b"s3cret-pass" and p.emaid == "DE-ABC-C12345678-X"
    assert main(["pki", "show", str(tmp_path / "missing")]) == 1
