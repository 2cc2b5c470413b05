"""-2 Plug & Charge from a P-256 lab PKI (``iso15118 pki create --profile iso2``, or Josev's: the
same file names, key passwords in ``*Password.txt``): the EV's credentials and the SECC's settings
(MO root, CPS chain and key, a contract source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from iso15118.security.pki import IssuedCert, Profile, issue_certificate
from iso15118.security.validation import emaid_from_certificate
from iso15118.session.iso2.secc import Iso2SeccPnC
from iso15118.session.pnc import ContractCredentials, ProvisioningCredentials

__all__ = ["credentials_from_pki", "secc_pnc2_from_pki"]


def _cert(pki: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((pki / "certs" / f"{name}Cert.pem").read_bytes())


def _key(pki: Path, name: str) -> ec.EllipticCurvePrivateKey:
    data = (pki / "private_keys" / f"{name}.key").read_bytes()
    pw_file = pki / "private_keys" / f"{name}Password.txt"
    pw = pw_file.read_bytes().strip() if pw_file.exists() else None
    key = serialization.load_pem_private_key(data, pw)
    assert isinstance(key, ec.EllipticCurvePrivateKey), name
    return key


def credentials_from_pki(pki: str | Path) -> tuple[ContractCredentials, ProvisioningCredentials]:
    """The EV's -2 contract and provisioning credentials of a P-256 lab PKI (``pki create
    --profile iso2``, or Josev's: same file names, key passwords in ``*Password.txt``)."""
    d = Path(pki)
    contract = ContractCredentials((_cert(d, "contractLeaf"), _cert(d, "moSubCA2"), _cert(d, "moSubCA1")),
                                   _key(d, "contractLeaf"))
    prov = ProvisioningCredentials(
        oem_chain=(_cert(d, "oemLeaf"), _cert(d, "oemSubCA2"), _cert(d, "oemSubCA1")), oem_key=_key(d, "oemLeaf"),
        v2g_roots=(_cert(d, "v2gRootCA"),), mo_roots=(_cert(d, "moRootCA"),))
    return contract, prov


def secc_pnc2_from_pki(pki: str | Path, *, fresh: bool = True, **kw: Any) -> Iso2SeccPnC:
    """SECC -2 PnC from a P-256 lab PKI: its MO root, its CPS chain as the certificate
    provisioning service; ``fresh``: each installation issues a new contract certificate (new
    key, the PKI's eMAID) from MO Sub-CA 2 when its key is readable, else the PKI's contract."""
    d = Path(pki)
    contract_chain = [_cert(d, "contractLeaf"), _cert(d, "moSubCA2"), _cert(d, "moSubCA1")]
    contract_key = _key(d, "contractLeaf")
    issuer: Any = None
    if fresh:
        try:
            issuer = IssuedCert(_cert(d, "moSubCA2"), _key(d, "moSubCA2"))
        except (TypeError, ValueError, OSError):
            issuer = None

    def contracts(recipient: x509.Certificate) -> tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey]:
        if issuer is None:
            return contract_chain, contract_key
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = issue_certificate(cn=emaid_from_certificate(contract_chain[0]), dc="MO", profile=Profile.CONTRACT,
                                 key=key, issuer=issuer, days=730)
        return [leaf, *contract_chain[1:]], key

    return Iso2SeccPnC(mo_roots=(_cert(d, "moRootCA"),), cps_chain=(_cert(d, "cpsLeaf"), _cert(d, "cpsSubCA2"),
                                                                    _cert(d, "cpsSubCA1")),
                       cps_key=_key(d, "cpsLeaf"), contracts=contracts, **kw)
