"""Test/lab PKI generator for ISO 15118-20 (digest §8.2), built with ``cryptography``.

One call, :func:`create_pki`, writes a complete hierarchy for one key algorithm
(secp521r1 with ECDSA-SHA-512, or Ed448) into a directory laid out like the
Josev test PKI (``certs/``, ``private_keys/``), so tools that know that layout
find the same file names:

=================  ===================  ==========================================  ========
name               issuer               profile                                     lifetime
=================  ===================  ==========================================  ========
v2gRootCA          self                 CA, keyCertSign+cRLSign                     10 y
cpoSubCA1          v2gRootCA            CA pathLen 1                                4 y
cpoSubCA2          cpoSubCA1            CA pathLen 0                                1 y
seccLeaf           cpoSubCA2            TLS server (CN = SECC ID, DC=CPO)           60 d
cpsSubCA1/2        v2gRootCA / SubCA1   CA pathLen 1 / 0                            4 y / 2 y
cpsLeaf            cpsSubCA2            signs SignedInstallationData (DC=CPS)       90 d
vehicleSubCA1/2    v2gRootCA / SubCA1   CA pathLen 1 / 0                            4 y / 4 y
vehicleLeaf        vehicleSubCA2        TLS 1.3 client (CN = VIN-like, DC=OEM)      4 y
oemRootCA          self                 CA                                          10 y
oemSubCA1/2        oemRootCA / SubCA1   CA pathLen 1 / 0                            4 y
oemLeaf            oemSubCA2            OEM provisioning certificate (DC=OEM)       4 y
moRootCA           self                 CA                                          10 y
moSubCA1/2         moRootCA / SubCA1    CA pathLen 1 / 0                            4 y
contractLeaf       moSubCA2             contract certificate (CN = eMAID, DC=MO)    2 y
=================  ===================  ==========================================  ========

Lifetimes are those of the digest / Josev ``create_certs.sh``; a leaf never
outlives its issuer (its notAfter is clamped).

Decisions (digest items marked DISAGREE / UNVERIFIED):

* **TLS client certificate (DISAGREE, §1.3 / §9 row 3).**  Both are generated:
  the -20 *vehicle certificate* chain under the V2G root (libiso15118,
  ADVANTICS, ecog issue #446 — our -20 default) and the OEM provisioning
  chain (which Josev's ``tls13`` mode wants as TLS client certificate, and which
  -20 uses to sign CertificateInstallationReq).  Both leafs carry
  extendedKeyUsage ``clientAuth`` so either can be presented in TLS.
* **Algorithms (UNVERIFIED).** secp521r1 + ECDSA-SHA-512, or Ed448 (see
  :mod:`iso15118.security.algorithms`).
* **keyUsage.**  The digest's profiles (keyAgreement on TLS leafs,
  keyEncipherment+keyAgreement on the contract leaf) are used for ECDSA keys.
  RFC 8410 forbids keyAgreement/keyEncipherment for Ed448 keys, so Ed448 leafs
  carry only digitalSignature (+ nonRepudiation for the contract leaf).
* **extendedKeyUsage** is not in the public test profiles; we add
  ``serverAuth`` to the SECC leaf and ``clientAuth`` to the vehicle and OEM
  provisioning leafs (OpenSSL checks it during TLS when present), none elsewhere.
* **SECC leaf naming.** CN = SECC ID (EVSEID format), DC=CPO (the -20 "CSO"
  is the same role, the test PKIs keep ``CPO``).  No subjectAltName: the EVCC
  does not check the host name and no SNI is sent (digest §1.3 "hostname not
  checked", "ALPN / SNI: none").
* **Private keys** are PKCS#8 PEM.  Leaf keys (the ones a station/EV holds) are
  encrypted (PBES2/AES-256) with a password written next to them as
  ``<name>Password.txt``, like Josev; CA keys are written unencrypted: this is
  a lab PKI.
* **DER.**  -20 messages carry DER certificates (certificateType, ≤1600 bytes),
  so every certificate is also written as ``.der``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .algorithms import Algorithm, signing_hash_for

__all__ = [
    "Algorithm",
    "Profile",
    "PkiProfile",
    "NOT_IN_ISO2",
    "CertSpec",
    "SPECS",
    "CHAINS",
    "PkiPaths",
    "PKI",
    "IssuedCert",
    "create_pki",
    "create_pkis",
    "load_pki",
    "issue_certificate",
    "make_crl",
    "make_ocsp_response",
    "DEFAULT_EMAID",
    "DEFAULT_SECC_ID",
    "DEFAULT_VIN",
]

DEFAULT_EMAID = "DEPNXC123456789"
DEFAULT_SECC_ID = "DE*PNX*E12345*1"
DEFAULT_VIN = "WMIV1234567890ABCDEX"
ORGANIZATION = "iso15118 lab PKI"
COUNTRY = "DE"
MANIFEST = "pki.json"

#: Backdating of notBefore so that freshly generated certificates are valid on
#: peers whose clocks lag a little.
CLOCK_SKEW = dt.timedelta(minutes=5)


class Profile(str, enum.Enum):
    """Certificate profile: which extensions a certificate gets."""

    ROOT = "root"
    SUB_CA1 = "subca1"
    SUB_CA2 = "subca2"
    SECC = "secc"
    VEHICLE = "vehicle"
    OEM_PROVISIONING = "oem_provisioning"
    CONTRACT = "contract"
    CPS = "cps"

    @property
    def is_ca(self) -> bool:
        return self in (Profile.ROOT, Profile.SUB_CA1, Profile.SUB_CA2)

    @property
    def path_length(self) -> int | None:
        return {Profile.SUB_CA1: 1, Profile.SUB_CA2: 0}.get(self)


#: Certificates a -2 PKI does not have: -2 knows no vehicle certificate (the EVCC is not
#: authenticated in TLS; it signs with its OEM provisioning or contract key).
NOT_IN_ISO2: frozenset[str] = frozenset({"vehicleSubCA1", "vehicleSubCA2", "vehicleLeaf"})


class PkiProfile(str, enum.Enum):
    """Which standard's hierarchy :func:`create_pki` writes."""

    ISO20 = "iso20"
    """-20: secp521r1 (ECDSA-SHA-512) or Ed448, with the vehicle certificate chain."""
    ISO2 = "iso2"
    """-2: secp256r1 with ECDSA-SHA-256 for every certificate, no vehicle chain."""


@dataclass(frozen=True)
class CertSpec:
    """One certificate of the generated hierarchy."""

    name: str
    profile: Profile
    issuer: str | None  # None = self-signed root
    cn: str
    dc: str
    days: int
    encrypt_key: bool = False


def _specs(secc_id: str, emaid: str, vin: str) -> tuple[CertSpec, ...]:
    P = Profile
    return (
        CertSpec("v2gRootCA", P.ROOT, None, "V2GRootCA", "V2G", 3650),
        CertSpec("cpoSubCA1", P.SUB_CA1, "v2gRootCA", "CPOSubCA1", "V2G", 1460),
        CertSpec("cpoSubCA2", P.SUB_CA2, "cpoSubCA1", "CPOSubCA2", "V2G", 365),
        CertSpec("seccLeaf", P.SECC, "cpoSubCA2", secc_id, "CPO", 60, encrypt_key=True),
        CertSpec("cpsSubCA1", P.SUB_CA1, "v2gRootCA", "CPSSubCA1", "V2G", 1460),
        CertSpec("cpsSubCA2", P.SUB_CA2, "cpsSubCA1", "CPSSubCA2", "V2G", 730),
        CertSpec("cpsLeaf", P.CPS, "cpsSubCA2", "CPSLeaf", "CPS", 90, encrypt_key=True),
        CertSpec("vehicleSubCA1", P.SUB_CA1, "v2gRootCA", "VehicleSubCA1", "OEM", 1460),
        CertSpec("vehicleSubCA2", P.SUB_CA2, "vehicleSubCA1", "VehicleSubCA2", "OEM", 1460),
        CertSpec("vehicleLeaf", P.VEHICLE, "vehicleSubCA2", vin, "OEM", 1460, encrypt_key=True),
        CertSpec("oemRootCA", P.ROOT, None, "OEMRootCA", "OEM", 3650),
        CertSpec("oemSubCA1", P.SUB_CA1, "oemRootCA", "OEMSubCA1", "OEM", 1460),
        CertSpec("oemSubCA2", P.SUB_CA2, "oemSubCA1", "OEMSubCA2", "OEM", 1460),
        CertSpec("oemLeaf", P.OEM_PROVISIONING, "oemSubCA2", "OEMProvCert", "OEM", 1460, encrypt_key=True),
        CertSpec("moRootCA", P.ROOT, None, "MORootCA", "MO", 3650),
        CertSpec("moSubCA1", P.SUB_CA1, "moRootCA", "MOSubCA1", "MO", 1460),
        CertSpec("moSubCA2", P.SUB_CA2, "moSubCA1", "MOSubCA2", "MO", 1460),
        CertSpec("contractLeaf", P.CONTRACT, "moSubCA2", emaid, "MO", 730, encrypt_key=True),
    )


SPECS: tuple[CertSpec, ...] = _specs(DEFAULT_SECC_ID, DEFAULT_EMAID, DEFAULT_VIN)
"""The hierarchy with default names (the order is issuance order)."""

#: Chain files: file stem -> certificate names, leaf first (roots excluded).
CHAINS: Mapping[str, tuple[str, ...]] = {
    "cpoCertChain": ("seccLeaf", "cpoSubCA2", "cpoSubCA1"),
    "cpsCertChain": ("cpsLeaf", "cpsSubCA2", "cpsSubCA1"),
    "vehicleCertChain": ("vehicleLeaf", "vehicleSubCA2", "vehicleSubCA1"),
    "oemCertChain": ("oemLeaf", "oemSubCA2", "oemSubCA1"),
    "moCertChain": ("contractLeaf", "moSubCA2", "moSubCA1"),
}

ROOTS: tuple[str, ...] = ("v2gRootCA", "oemRootCA", "moRootCA")


# --------------------------------------------------------------------------- issuing


@dataclass(frozen=True)
class IssuedCert:
    """A certificate together with its private key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


def _name(cn: str, dc: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc),
        ]
    )


def _key_usage(profile: Profile, edwards: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    if profile.is_ca:
        flags.update(key_cert_sign=True, crl_sign=True)
    elif profile in (Profile.SECC, Profile.VEHICLE, Profile.OEM_PROVISIONING):
        flags.update(digital_signature=True, key_agreement=not edwards)
    elif profile is Profile.CONTRACT:
        flags.update(
            digital_signature=True,
            content_commitment=True,
            key_encipherment=not edwards,
            key_agreement=not edwards,
        )
    else:  # CPS
        flags.update(digital_signature=True)
    return x509.KeyUsage(**flags)


_EKU: Mapping[Profile, tuple[x509.ObjectIdentifier, ...]] = {
    Profile.SECC: (ExtendedKeyUsageOID.SERVER_AUTH,),
    Profile.VEHICLE: (ExtendedKeyUsageOID.CLIENT_AUTH,),
    Profile.OEM_PROVISIONING: (ExtendedKeyUsageOID.CLIENT_AUTH,),
}


def issue_certificate(
    *,
    cn: str,
    dc: str,
    profile: Profile,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: IssuedCert | None = None,
    days: int = 365,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    path_length: int | None | EllipsisType = ...,
    key_usage: x509.KeyUsage | None = None,
    extended_key_usage: Iterable[x509.ObjectIdentifier] | None | EllipsisType = ...,
    ca: bool | None = None,
    clamp_to_issuer: bool = True,
) -> x509.Certificate:
    """Issue one certificate (self-signed when ``issuer`` is None).

    The keyword overrides (``path_length``, ``key_usage``, ``extended_key_usage``,
    ``ca``, explicit validity) exist so that tests can build deliberately broken
    certificates with the same code that builds correct ones.
    """
    now = dt.datetime.now(dt.UTC)
    start = not_before if not_before is not None else now - CLOCK_SKEW
    end = not_after if not_after is not None else start + dt.timedelta(days=days)
    if issuer is not None and clamp_to_issuer and not_after is None:
        end = min(end, issuer.cert.not_valid_after_utc)
    subject = _name(cn, dc)
    edwards = isinstance(key, ed448.Ed448PrivateKey)
    is_ca = profile.is_ca if ca is None else ca
    plen = profile.path_length if isinstance(path_length, EllipsisType) else path_length
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=plen if is_ca else None), critical=True)
        .add_extension(key_usage or _key_usage(profile, edwards), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    ekus = _EKU.get(profile) if isinstance(extended_key_usage, EllipsisType) else extended_key_usage
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    signer = issuer.key if issuer else key
    return builder.sign(signer, signing_hash_for(signer))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class PkiPaths:
    """Where :func:`create_pki` put everything (all paths absolute)."""

    root: Path
    algorithm: Algorithm
    names: tuple[str, ...]
    encrypted: tuple[str, ...]
    profile: PkiProfile = PkiProfile.ISO20

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def keys_dir(self) -> Path:
        return self.root / "private_keys"

    def cert(self, name: str) -> Path:
        """PEM certificate, e.g. ``cert("seccLeaf")`` -> ``certs/seccLeafCert.pem``."""
        self._check(name)
        return self.certs_dir / f"{name}Cert.pem"

    def der(self, name: str) -> Path:
        self._check(name)
        return self.certs_dir / f"{name}Cert.der"

    def key(self, name: str) -> Path:
        """PKCS#8 PEM private key (encrypted for leafs)."""
        self._check(name)
        return self.keys_dir / f"{name}.key"

    def password_file(self, name: str) -> Path | None:
        """Password file of an encrypted key (None when the key is not encrypted)."""
        self._check(name)
        return self.keys_dir / f"{name}Password.txt" if name in self.encrypted else None

    def password(self, name: str) -> bytes | None:
        pf = self.password_file(name)
        return pf.read_bytes().strip() if pf else None

    def chain(self, stem: str) -> Path:
        """Chain file (leaf first, root excluded), e.g. ``chain("cpoCertChain")``."""
        if stem not in CHAINS:
            raise KeyError(f"unknown chain {stem!r}; known: {', '.join(CHAINS)}")
        return self.certs_dir / f"{stem}.pem"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def _check(self, name: str) -> None:
        if name not in self.names:
            raise KeyError(f"unknown certificate {name!r}; known: {', '.join(self.names)}")


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_pki(
    directory: str | os.PathLike[str],
    algorithm: Algorithm | str = Algorithm.SECP521R1,
    *,
    profile: PkiProfile | str = PkiProfile.ISO20,
    validity_days: Mapping[str, int] | None = None,
    password: bytes | None = None,
    secc_id: str = DEFAULT_SECC_ID,
    emaid: str = DEFAULT_EMAID,
    vin: str = DEFAULT_VIN,
) -> PkiPaths:
    """Generate the complete hierarchy for one algorithm into ``directory``.

    ``validity_days`` overrides lifetimes per certificate name (e.g.
    ``{"seccLeaf": 30}``); ``password`` is used for every encrypted leaf key
    (default: a fresh random password per key, written to ``*Password.txt``).
    Returns the :class:`PkiPaths`; never logs key material.
    """
    prof = PkiProfile(profile)
    alg = Algorithm.SECP256R1 if prof is PkiProfile.ISO2 else Algorithm(algorithm)
    root = Path(directory).resolve()
    (root / "certs").mkdir(parents=True, exist_ok=True)
    (root / "private_keys").mkdir(parents=True, exist_ok=True)
    overrides = dict(validity_days or {})
    specs = _specs(secc_id, emaid, vin)
    if prof is PkiProfile.ISO2:
        specs = tuple(sp for sp in specs if sp.name not in NOT_IN_ISO2)
    unknown = set(overrides) - {s.name for s in specs}
    if unknown:
        raise ValueError(f"validity override for unknown certificate(s): {', '.join(sorted(unknown))}")
    paths = PkiPaths(
        root=root,
        algorithm=alg,
        names=tuple(s.name for s in specs),
        encrypted=tuple(s.name for s in specs if s.encrypt_key),
        profile=prof,
    )
    issued: dict[str, IssuedCert] = {}
    for spec in specs:
        key = alg.generate_key()
        cert = issue_certificate(
            cn=spec.cn,
            dc=spec.dc,
            profile=spec.profile,
            key=key,
            issuer=issued[spec.issuer] if spec.issuer else None,
            days=overrides.get(spec.name, spec.days),
        )
        issued[spec.name] = IssuedCert(cert, key)
        paths.cert(spec.name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.der(spec.name).write_bytes(cert.public_bytes(serialization.Encoding.DER))
        if spec.encrypt_key:
            pw = password or secrets.token_urlsafe(18).encode()
            enc: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(pw)
            _write_private(root / "private_keys" / f"{spec.name}Password.txt", pw + b"\n")
        else:
            enc = serialization.NoEncryption()
        _write_private(
            paths.key(spec.name),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc),
        )
    chains = {k: v for k, v in CHAINS.items() if all(n in issued for n in v)}
    for stem, members in chains.items():
        paths.chain(stem).write_bytes(
            b"".join(issued[n].cert.public_bytes(serialization.Encoding.PEM) for n in members)
        )
    manifest = {
        "algorithm": alg.value,
        "profile": prof.value,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "certificates": {
            s.name: {
                "issuer": s.issuer,
                "profile": s.profile.value,
                "subject": issued[s.name].cert.subject.rfc4514_string(),
                "not_after": issued[s.name].cert.not_valid_after_utc.isoformat(),
                "encrypted_key": s.encrypt_key,
            }
            for s in specs
        },
        "chains": {k: list(v) for k, v in chains.items()},
    }
    paths.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    return paths


def create_pkis(
    directory: str | os.PathLike[str],
    algorithms: Iterable[Algorithm | str] = (Algorithm.SECP521R1, Algorithm.ED448),
    **kwargs: object,
) -> dict[Algorithm, PkiPaths]:
    """One PKI per algorithm, each in ``directory/<algorithm>``."""
    out: dict[Algorithm, PkiPaths] = {}
    for a in algorithms:
        alg = Algorithm(a)
        out[alg] = create_pki(Path(directory) / alg.value, alg, **kwargs)  # type: ignore[arg-type]
    return out


@dataclass
class PKI:
    """A loaded PKI: certificates parsed, private keys decrypted on first use."""

    paths: PkiPaths
    certs: dict[str, x509.Certificate]
    _keys: dict[str, PrivateKeyTypes] = field(default_factory=dict, repr=False)

    @property
    def algorithm(self) -> Algorithm:
        return self.paths.algorithm

    def cert(self, name: str) -> x509.Certificate:
        return self.certs[name]

    def key(self, name: str) -> PrivateKeyTypes:
        if name not in self._keys:
            self._keys[name] = serialization.load_pem_private_key(
                self.paths.key(name).read_bytes(), password=self.paths.password(name)
            )
        return self._keys[name]

    def issued(self, name: str) -> IssuedCert:
        """Certificate + key, e.g. to issue further (test) certificates from a CA."""
        return IssuedCert(self.cert(name), self.key(name))  # type: ignore[arg-type]

    def chain(self, stem: str) -> list[x509.Certificate]:
        """Leaf first, root excluded."""
        return [self.certs[n] for n in CHAINS[stem]]

    def intermediates(self, stem: str) -> list[x509.Certificate]:
        return self.chain(stem)[1:]

    @property
    def emaid(self) -> str:
        return self.certs["contractLeaf"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value  # type: ignore[return-value]


def load_pki(directory: str | os.PathLike[str]) -> PKI:
    """Load a PKI written by :func:`create_pki` (reads its ``pki.json`` manifest)."""
    root = Path(directory).resolve()
    manifest = json.loads((root / MANIFEST).read_text())
    entries: dict[str, dict[str, object]] = manifest["certificates"]
    paths = PkiPaths(
        root=root,
        algorithm=Algorithm(manifest["algorithm"]),
        names=tuple(entries),
        encrypted=tuple(n for n, e in entries.items() if e.get("encrypted_key")),
        profile=PkiProfile(manifest.get("profile", PkiProfile.ISO20.value)),
    )
    certs = {n: x509.load_pem_x509_certificate(paths.cert(n).read_bytes()) for n in entries}
    return PKI(paths=paths, certs=certs)


# --------------------------------------------------------------------------- revocation


def make_crl(
    issuer: IssuedCert,
    revoked_serials: Iterable[int],
    *,
    last_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer`` listing ``revoked_serials``."""
    now = last_update or dt.datetime.now(dt.UTC) - CLOCK_SKEW
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(next_update or now + dt.timedelta(days=7))
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(issuer.key, signing_hash_for(issuer.key))  # type: ignore[arg-type]


def make_ocsp_response(
    cert: x509.Certificate,
    issuer: IssuedCert,
    status: ocsp.OCSPCertStatus,
    *,
    responder: IssuedCert | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> ocsp.OCSPResponse:
    """A successful OCSP response about ``cert`` (signed by the issuer or a delegated responder)."""
    now = this_update or dt.datetime.now(dt.UTC) - CLOCK_SKEW
    signer = responder or issuer
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA256(),
        cert_status=status,
        this_update=now,
        next_update=next_update or now + dt.timedelta(days=1),
        revocation_time=now if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if responder is not None:
        builder = builder.certificates([responder.cert])
    return builder.sign(signer.key, signing_hash_for(signer.key))  # type: ignore[arg-type]


def replace_validity(spec: CertSpec, days: int) -> CertSpec:
    """A copy of ``spec`` with another lifetime."""
    return dataclasses.replace(spec, days=days)
