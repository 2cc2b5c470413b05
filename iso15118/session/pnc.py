"""Plug & Charge glue between the session cores and :mod:`iso15118.security.pnc`.

The security package has pure functions on :class:`iso15118.exi.tree.Element` trees; the
cores work with typed messages.  Typed messages convert losslessly (``to_tree()`` /
``iso15118.messages.from_tree``: the EXI bytes are identical), so the cores convert at the
edge and never re-implement a signature or a chain check.

What each side holds:

* EV: :class:`ContractCredentials` (contract chain + private key, used for the PnC
  AuthorizationReq and SignedMeteringData) and/or :class:`ProvisioningCredentials` (OEM
  provisioning chain + key and the roots the EV trusts, for CertificateInstallation).  A
  simulator or a product exposes them as the controller attributes ``contract`` and
  ``provisioning``; :meth:`contract_installed` is called after a successful installation.
* SECC: :class:`SeccPnC` (MO roots for the contract chain, OEM roots for the provisioning
  chain, optional :class:`LabCertificateProvider` standing in for the CPS/backend).

Private keys live in fields with ``repr=False``; nothing here logs key material.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from iso15118 import messages as m
from iso15118.exi.tree import Element
from iso15118.security import pnc as sec
from iso15118.security.pki import PKI, Profile, issue_certificate, load_pki
from iso15118.security.validation import emaid_from_certificate

log = logging.getLogger(__name__)

PrivateKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey

__all__ = [
    "CertificateProvider",
    "ContractCredentials",
    "LabCertificateProvider",
    "ProvisioningCredentials",
    "SeccPnC",
    "contract_from_pki",
    "meter_info_mapping",
    "provisioning_from_pki",
    "secc_pnc_from_pki",
    "to_tree",
    "typed",
]


@dataclass(frozen=True)
class ContractCredentials:
    """An installed contract: chain leaf first (leaf + 1-3 Sub-CAs, root excluded) and its key."""

    chain: tuple[x509.Certificate, ...] = field(repr=False)
    key: PrivateKey = field(repr=False)

    @property
    def emaid(self) -> str:
        return emaid_from_certificate(self.chain[0])

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def __repr__(self) -> str:
        subject = self.chain[0].subject.rfc4514_string() if self.chain else "?"
        return f"ContractCredentials(contract={subject!r})"


@dataclass(frozen=True)
class ProvisioningCredentials:
    """What an EV without a contract needs for CertificateInstallation.

    ``v2g_roots`` verify the CPS chain of the response; ``mo_roots`` (optional: an EV often
    has none) verify the delivered contract chain; ``root_certificates`` go into
    ListOfRootCertificateIDs (default: the V2G and MO roots)."""

    oem_chain: tuple[x509.Certificate, ...] = field(repr=False)
    oem_key: PrivateKey = field(repr=False)
    v2g_roots: tuple[x509.Certificate, ...] = field(repr=False)
    mo_roots: tuple[x509.Certificate, ...] | None = field(default=None, repr=False)
    root_certificates: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    maximum_contract_certificate_chains: int = 1

    def root_ids(self) -> list[x509.Certificate]:
        roots = list(self.root_certificates) or [*self.v2g_roots, *(self.mo_roots or ())]
        return roots[:20]

    def __repr__(self) -> str:
        return f"ProvisioningCredentials(oem={self.oem_chain[0].subject.rfc4514_string()!r})"


class CertificateProvider(Protocol):
    """The CPS behind the SECC (in a product: the backend, e.g. OCPP 2.x Get15118EVCertificate)."""

    def certificate_installation_res(
        self, now: float, session_id: bytes, check: sec.InstallationReqCheck, request: Element, time_stamp: int
    ) -> Element | None:
        """The CertificateInstallationRes tree for an accepted request, or None (no contract
        available for this EV: the SECC answers WARNING_NoCertificateAvailable)."""


@dataclass
class LabCertificateProvider:
    """A CPS made of the lab PKI: issues a fresh contract certificate (new key, eMAID of the
    PKI) from the MO Sub-CA 2, encrypts its key for the EV's OEM provisioning certificate and
    signs SignedInstallationData with the CPS leaf.  ``fresh=False`` delivers the PKI's own
    ``contractLeaf`` instead."""

    pki: PKI = field(repr=False)
    fresh: bool = True
    contract_days: int = 730
    installed: int = 0

    def certificate_installation_res(
        self, now: float, session_id: bytes, check: sec.InstallationReqCheck, request: Element, time_stamp: int
    ) -> Element | None:
        assert check.oem_certificate is not None
        pki = self.pki
        key: Any
        if self.fresh:
            key = pki.algorithm.generate_key()
            leaf = issue_certificate(
                cn=pki.emaid,
                dc="MO",
                profile=Profile.CONTRACT,
                key=key,
                issuer=pki.issued("moSubCA2"),
                days=self.contract_days,
            )
            chain = [leaf, *pki.intermediates("moCertChain")]
        else:
            key, chain = pki.key("contractLeaf"), pki.chain("moCertChain")
        self.installed += 1
        return sec.build_certificate_installation_res(
            session_id=session_id,
            oem_certificate=check.oem_certificate,
            contract_chain=chain,
            contract_key=key,  # type: ignore[arg-type]
            cps_chain=pki.chain("cpsCertChain"),
            cps_key=pki.key("cpsLeaf"),  # type: ignore[arg-type]
            time_stamp=time_stamp,
        )


@dataclass
class SeccPnC:
    """SECC side of Plug & Charge.

    ``mo_roots``: trusted MO roots for the contract chain (None: leave the chain to the
    backend, only the signature is checked here).  ``oem_roots``: trusted OEM roots for
    CertificateInstallationReq (None: left to the CPS).  ``provider``: the CPS; with one the
    SECC offers CertificateInstallationService.  ``metering_confirmation_after_loops``: ask
    the EV once for a signed meter reading (EVSENotification=MeteringConfirmation) after this
    many charge loops of a PnC session."""

    mo_roots: Sequence[x509.Certificate] | None = field(default=None, repr=False)
    oem_roots: Sequence[x509.Certificate] | None = field(default=None, repr=False)
    provider: CertificateProvider | None = None
    supported_providers: tuple[str, ...] = ()
    crls: Sequence[x509.CertificateRevocationList] = field(default=(), repr=False)
    """CRLs checked for the contract chain (a listed certificate: WARNING_CertificateRevoked)."""
    ocsp_responses: Sequence[Any] = field(default=(), repr=False)
    """OCSP responses (``cryptography.x509.ocsp.OCSPResponse``) checked for the contract chain."""
    expires_soon: dt.timedelta = dt.timedelta(days=14)
    metering_confirmation_after_loops: int | None = None


# --------------------------------------------------------------------------- conversions


def to_tree(msg: Any) -> Element:
    """A typed message as the Element tree the security functions take."""
    return msg.to_tree()  # type: ignore[no-any-return]


def typed(tree: Element) -> Any:
    """An Element tree built by :mod:`iso15118.security.pnc` as a typed message."""
    return m.from_tree(tree)


def meter_info_mapping(info: m.MeterInfo) -> dict[str, Any]:
    """A typed MeterInfo as the field mapping ``security.pnc`` signs and compares."""
    return {
        "MeterID": info.meter_id,
        "ChargedEnergyReadingWh": info.charged_energy_reading_wh,
        "BPT_DischargedEnergyReadingWh": info.bpt_discharged_energy_reading_wh,
        "CapacitiveEnergyReadingVARh": info.capacitive_energy_reading_varh,
        "BPT_InductiveEnergyReadingVARh": info.bpt_inductive_energy_reading_varh,
        "MeterSignature": info.meter_signature,
        "MeterStatus": info.meter_status,
        "MeterTimestamp": info.meter_timestamp,
    }


# --------------------------------------------------------------------------- lab PKI loaders


def _pki(pki: PKI | str | Path) -> PKI:
    return pki if isinstance(pki, PKI) else load_pki(pki)


def contract_from_pki(pki: PKI | str | Path) -> ContractCredentials:
    """The lab PKI's contract (``contractLeaf`` + MO Sub-CAs) as EV credentials."""
    p = _pki(pki)
    return ContractCredentials(tuple(p.chain("moCertChain")), p.key("contractLeaf"))  # type: ignore[arg-type]


def provisioning_from_pki(pki: PKI | str | Path, *, with_mo_roots: bool = True) -> ProvisioningCredentials:
    """The lab PKI's OEM provisioning certificate and roots as EV credentials."""
    p = _pki(pki)
    return ProvisioningCredentials(
        oem_chain=tuple(p.chain("oemCertChain")),
        oem_key=p.key("oemLeaf"),  # type: ignore[arg-type]
        v2g_roots=(p.cert("v2gRootCA"),),
        mo_roots=(p.cert("moRootCA"),) if with_mo_roots else None,
    )


def secc_pnc_from_pki(pki: PKI | str | Path, *, certificate_installation: bool = True, **kwargs: Any) -> SeccPnC:
    """SECC PnC settings from the lab PKI: its MO and OEM roots and (optionally) its CPS."""
    p = _pki(pki)
    return SeccPnC(
        mo_roots=[p.cert("moRootCA")],
        oem_roots=[p.cert("oemRootCA")],
        provider=LabCertificateProvider(p) if certificate_installation else None,
        **kwargs,
    )
