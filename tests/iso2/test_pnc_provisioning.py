"""ISO 15118-2 contract provisioning and more PnC refusals, in the sans-IO cores, in memory.

(PnC sessions, the foreign MO root, signature, challenge and receipt refusals: ``test_pnc.py``.)
Our EVCC against our SECC with the -2 lab PKI (P-256): CertificateInstallation for an EV that has
only its OEM provisioning credential and CertificateUpdate, each then PnC to SessionStop, AC and
DC.  Each refusal provoked with a real defect (an expired or revoked contract, a CPS signature by
the wrong key, a CPS chain under an untrusted root, no CPS, an installation request signed by
another key, garbage or P-521 certificates, an eMAID that is not the certificate's) and answered
with its -2 code.  The sessions over real TLS 1.2 sockets and against Josev are in
``test_pnc_live.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.messages import X509IssuerSerial
from iso15118.messages import iso2 as m2
from iso15118.security import pnc2
from iso15118.security.pki import PKI, IssuedCert, PkiProfile, Profile, create_pki, issue_certificate, load_pki, make_crl
from iso15118.session.events import ProtocolError, SendMessage
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig, Iso2SeccSession
from iso15118.session.iso2 import parts as p
from iso15118.session.iso2.lab import credentials_from_pki, secc_pnc2_from_pki
from iso15118.session.iso2.secc import Iso2SeccPnC
from iso15118.session.memory import Transcript, run_pair
from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
from iso15118.session.pnc import ContractCredentials
from iso15118.sim import make_ev, make_evse

from .helpers import errors, received, wall

RC = m2.ResponseCode


@pytest.fixture(scope="module")
def pki2(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return load_pki(create_pki(tmp_path_factory.mktemp("pki2"), profile=PkiProfile.ISO2, password=b"pw").root)


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A second -2 PKI: its MO root is not the one the contract chains to."""
    return load_pki(create_pki(tmp_path_factory.mktemp("pki2b"), profile=PkiProfile.ISO2, password=b"pw").root)


def root(pki: PKI) -> Path:
    return pki.paths.root


def run_pnc(family: Family, pki: PKI, *, tls: bool = True, ev_creds: dict[str, Any] | None = None,
            secc_pnc: Iso2SeccPnC | None = None, evcc: Iso2EvccConfig | None = None,
            ) -> tuple[Transcript, EvccNegotiator, SeccNegotiator]:
    contract, prov = credentials_from_pki(root(pki))
    creds = {"contract": contract} if ev_creds is None else ev_creds
    ev = make_ev("cybertruck-awd", stop_after=3.0, **creds)
    evse = make_evse("dc-bidi" if family is Family.DC else "wall-connector")
    spnc = secc_pnc if secc_pnc is not None else secc_pnc2_from_pki(root(pki))
    e = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), clock=wall, tls=tls,
                       configs={AppProtocol.ISO2: evcc or Iso2EvccConfig(family=family)})
    s = SeccNegotiator(evse, protocols=(AppProtocol.ISO2,), clock=wall, tls=tls,
                       configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=spnc)})
    return run_pair(e, s), e, s


def _sent_bodies(tr: Transcript, side: str) -> list[Any]:
    return [ev.message for ev in tr.of(side, SendMessage) if ev.name.endswith(("Req", "Res"))  # type: ignore[attr-defined]
            and not ev.name.startswith("supported")]  # type: ignore[attr-defined]


def test_pnc_authorization_ongoing_is_polled_unsigned(pki2: PKI) -> None:
    """The backend takes a while: Ongoing after the verified signature; the EV polls with a plain
    AuthorizationReq (as Josev's EV does), which is accepted only after a verified one."""
    contract, _ = credentials_from_pki(root(pki2))
    ev = make_ev("cybertruck-awd", stop_after=2.0, contract=contract)
    e = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), clock=wall, tls=True,
                       configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC)})
    s = SeccNegotiator(make_evse("wall-connector", pnc_authorization_delay=0.5), protocols=(AppProtocol.ISO2,), clock=wall,
                       tls=True, configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(root(pki2)))})
    tr = run_pair(e, s)
    auth = [b for b in _sent_bodies(tr, "evcc") if isinstance(b, m2.AuthorizationReq)]
    assert len(auth) >= 2 and auth[0].gen_challenge is not None and auth[1].gen_challenge is None
    res = [b.evse_processing for b in _sent_bodies(tr, "secc") if isinstance(b, m2.AuthorizationRes)]
    assert res[0] is not m2.EVSEProcessing.FINISHED and res[-1] is m2.EVSEProcessing.FINISHED
    assert tr.ended("secc").ok and s.core.authorization == "PnC"  # type: ignore[union-attr]


@pytest.mark.parametrize("family", [Family.AC, Family.DC])
def test_certificate_installation_then_pnc(family: Family, pki2: PKI) -> None:
    _, prov = credentials_from_pki(root(pki2))
    tr, e, s = run_pnc(family, pki2, ev_creds={"provisioning": prov})
    names = received(tr, "secc")
    assert not errors(tr, "secc") and not errors(tr, "evcc"), (errors(tr, "secc"), errors(tr, "evcc"))
    assert names[4:7] == ["CertificateInstallationReq", "PaymentDetailsReq", "AuthorizationReq"], names
    assert tr.ended("secc").ok and tr.ended("evcc").ok  # type: ignore[union-attr]
    installed = e.core.pnc.contract  # type: ignore[union-attr]
    assert installed is not None and e.core.pnc.installed  # type: ignore[union-attr]
    # a fresh contract (new key, the PKI's eMAID) under the PKI's MO Sub-CA 2, now the EV's
    assert installed.certificate != pki2.cert("contractLeaf") and installed.emaid == pki2.emaid
    assert installed.certificate.issuer == pki2.cert("moSubCA2").subject
    assert e.controller.contract is installed  # type: ignore[attr-defined]
    assert s.core.authorization == "PnC" and s.core.provisioning.installed == 1  # type: ignore[union-attr]


def test_certificate_update_then_pnc(pki2: PKI) -> None:
    contract, prov = credentials_from_pki(root(pki2))
    tr, e, s = run_pnc(Family.DC, pki2, ev_creds={"contract": contract, "provisioning": prov},
                       evcc=Iso2EvccConfig(family=Family.DC, update_contract=True))
    names = received(tr, "secc")
    assert not errors(tr, "secc") and not errors(tr, "evcc"), (errors(tr, "secc"), errors(tr, "evcc"))
    assert names[4:7] == ["CertificateUpdateReq", "PaymentDetailsReq", "AuthorizationReq"], names
    new = e.core.pnc.contract  # type: ignore[union-attr]
    assert e.core.pnc.updated and new.certificate != contract.certificate  # type: ignore[union-attr]
    assert s.core.authorization == "PnC" and tr.ended("evcc").ok  # type: ignore[union-attr]


# --------------------------------------------------------------------------- refusals, end to end


def _secc_code(tr: Transcript) -> str:
    errs = errors(tr, "secc")
    return errs[-1].code if errs else "none"


def _contract_under(pki: PKI, **kw: Any) -> ContractCredentials:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_certificate(cn=pki.emaid, dc="MO", profile=Profile.CONTRACT, key=key,
                             issuer=IssuedCert(pki.cert("moSubCA2"), pki.key("moSubCA2")), **kw)  # type: ignore[arg-type]
    return ContractCredentials((leaf, pki.cert("moSubCA2"), pki.cert("moSubCA1")), key)


def test_expired_contract_is_failed_certificateexpired(pki2: PKI) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    expired = _contract_under(pki2, not_before=past - dt.timedelta(days=30), not_after=past)
    tr, _, _ = run_pnc(Family.DC, pki2, ev_creds={"contract": expired})
    assert _secc_code(tr) == "FAILED_CertificateExpired"


def test_revoked_contract_is_failed_certificaterevoked(pki2: PKI) -> None:
    contract = _contract_under(pki2)
    crl = make_crl(IssuedCert(pki2.cert("moSubCA2"), pki2.key("moSubCA2")), [contract.certificate.serial_number])  # type: ignore[arg-type]
    spnc = dataclasses.replace(secc_pnc2_from_pki(root(pki2)), crls=(crl,))
    tr, _, _ = run_pnc(Family.AC, pki2, ev_creds={"contract": contract}, secc_pnc=spnc)
    assert _secc_code(tr) == "FAILED_CertificateRevoked"
    # the same SECC accepts a contract that is not on the list
    tr, _, _ = run_pnc(Family.AC, pki2, secc_pnc=spnc)
    assert _secc_code(tr) == "none" and tr.ended("secc").ok  # type: ignore[union-attr]


def test_cps_signature_by_the_wrong_key_is_refused_by_the_ev(pki2: PKI) -> None:
    _, prov = credentials_from_pki(root(pki2))
    spnc = dataclasses.replace(secc_pnc2_from_pki(root(pki2)), cps_key=pki2.key("seccLeaf"))  # type: ignore[arg-type]
    tr, e, s = run_pnc(Family.AC, pki2, ev_creds={"provisioning": prov}, secc_pnc=spnc)
    assert errors(tr, "evcc")[0].code == "FAILED_SignatureError", errors(tr, "evcc")
    assert e.core.pnc.contract is None  # type: ignore[union-attr]


def test_cps_chain_under_an_untrusted_root_is_refused_by_the_ev(pki2: PKI, other_pki: PKI) -> None:
    _, prov = credentials_from_pki(root(pki2))
    spnc = dataclasses.replace(secc_pnc2_from_pki(root(pki2)), cps_chain=tuple(other_pki.chain("cpsCertChain")),
                               cps_key=other_pki.key("cpsLeaf"))  # type: ignore[arg-type]
    tr, e, _ = run_pnc(Family.AC, pki2, ev_creds={"provisioning": prov}, secc_pnc=spnc)
    assert errors(tr, "evcc")[0].code == "FAILED_CertChainError", errors(tr, "evcc")


def test_no_certificate_service_is_failed_nocertificateavailable(pki2: PKI) -> None:
    _, prov = credentials_from_pki(root(pki2))
    spnc = dataclasses.replace(secc_pnc2_from_pki(root(pki2)), contracts=None)
    tr, _, _ = run_pnc(Family.AC, pki2, ev_creds={"provisioning": prov}, secc_pnc=spnc)
    assert _secc_code(tr) == "FAILED_NoCertificateAvailable"


# --------------------------------------------------------------------------- refusals, request by request


class Walk:
    """Our SECC core over TLS driven request by request (what a defective EV would send)."""

    def __init__(self, pki: PKI, payment: m2.PaymentOption = m2.PaymentOption.CONTRACT) -> None:
        self.core = Iso2SeccSession(make_evse("wall-connector"), Iso2SeccConfig(pnc=secc_pnc2_from_pki(root(pki))),
                                    now=0.0, clock=wall, tls=True)
        self.contract, self.prov = credentials_from_pki(root(pki))
        self.sid = bytes(1)
        res = self.send(m2.SessionSetupReq(evcc_id=bytes(6)))
        self.sid = self.core.session_id
        assert res.response_code is RC.OK_NEW_SESSION_ESTABLISHED
        self.send(m2.ServiceDiscoveryReq())
        self.send(m2.PaymentServiceSelectionReq(selected_payment_option=payment, selected_service_list=m2.SelectedServiceList(
            selected_service=[m2.SelectedService(service_id=1)])))

    def send(self, body: Any, signature: Any = None) -> Any:
        events = self.core.receive(0x8001, p.encode_message(self.sid, body, signature), 1.0)
        out = [ev for ev in events if isinstance(ev, SendMessage)]
        assert out, events
        self.last_errors = [ev for ev in events if isinstance(ev, ProtocolError)]
        return p.decode_message(out[0].payload).body.body_element

    def details(self) -> bytes:
        res = self.send(m2.PaymentDetailsReq(e_ma_id=self.contract.emaid, contract_signature_cert_chain=_chain(self.contract)))
        assert res.response_code is RC.OK, res
        return bytes(res.gen_challenge)


def _chain(c: ContractCredentials) -> m2.CertificateChain:
    from iso15118.session.iso2.pnc import chain_element

    return chain_element(c.chain)


def test_unsigned_pnc_authorization_is_failed_signatureerror(pki2: PKI) -> None:
    w = Walk(pki2)
    challenge = w.details()
    res = w.send(m2.AuthorizationReq(id="ID1", gen_challenge=challenge))
    assert res.response_code is RC.FAILED_SIGNATURE_ERROR


def test_emaid_not_the_certificates_is_failed_certchainerror(pki2: PKI) -> None:
    w = Walk(pki2)
    res = w.send(m2.PaymentDetailsReq(e_ma_id="DEXYZ000000001", contract_signature_cert_chain=_chain(w.contract)))
    assert res.response_code is RC.FAILED_CERT_CHAIN_ERROR


def test_authorization_before_payment_details_is_failed_sequenceerror(pki2: PKI) -> None:
    w = Walk(pki2)
    req = m2.AuthorizationReq(id="ID1", gen_challenge=bytes(16))
    res = w.send(req, pnc2.sign_elements([req], w.contract.key))  # type: ignore[arg-type]
    assert res.response_code is RC.FAILED_SEQUENCE_ERROR


def test_payment_details_in_an_eim_session_is_failed_sequenceerror(pki2: PKI) -> None:
    w = Walk(pki2, m2.PaymentOption.EXTERNAL_PAYMENT)
    res = w.send(m2.PaymentDetailsReq(e_ma_id=w.contract.emaid, contract_signature_cert_chain=_chain(w.contract)))
    assert res.response_code is RC.FAILED_SEQUENCE_ERROR


def test_installation_req_signed_by_another_key_is_failed_signatureerror(pki2: PKI) -> None:
    from iso15118.session.iso2.pnc import EvccPnCState

    w = Walk(pki2)
    req, _ = EvccPnCState(provisioning=w.prov).installation_req()
    res = w.send(req, pnc2.sign_elements([req], w.contract.key))  # type: ignore[arg-type]
    assert res.response_code is RC.FAILED_SIGNATURE_ERROR


def test_forged_metering_receipt_is_failed_meteringsignaturenotvalid(pki2: PKI) -> None:
    """A whole AC PnC session up to the ReceiptRequired, then a receipt signed by another key."""
    w = Walk(pki2)
    challenge = w.details()
    req = m2.AuthorizationReq(id="ID1", gen_challenge=challenge)
    assert w.send(req, pnc2.sign_elements([req], w.contract.key)).response_code is RC.OK  # type: ignore[arg-type]
    cpd = w.send(m2.ChargeParameterDiscoveryReq(
        requested_energy_transfer_mode=m2.EnergyTransferMode.AC_SINGLE_PHASE_CORE,
        ev_charge_parameter=m2.ACEVChargeParameter(e_amount=p.pv(10000, "Wh"), ev_max_voltage=p.pv(240, "V"),
                                                   ev_max_current=p.pv(48, "A"), ev_min_current=p.pv(6, "A"))))
    tid = cpd.sa_schedules.sa_schedule_tuple[0].sa_schedule_tuple_id
    assert w.send(m2.PowerDeliveryReq(charge_progress=m2.ChargeProgress.START, sa_schedule_tuple_id=tid)).response_code is RC.OK
    status = None
    for _ in range(5):
        status = w.send(m2.ChargingStatusReq())
        if status.receipt_required:
            break
    assert status is not None and status.receipt_required and status.meter_info is not None
    mr = m2.MeteringReceiptReq(session_id=w.sid, sa_schedule_tuple_id=tid, meter_info=status.meter_info, id="ID2")
    res = w.send(mr, pnc2.sign_elements([mr], w.prov.oem_key))  # type: ignore[arg-type]
    assert res.response_code is RC.FAILED_METERING_SIGNATURE_NOT_VALID


def test_emaid_fragment_is_exificients_relaxed_fragment_encoding() -> None:
    """The signed eMAID of CertificateInstallationRes is declared twice in MsgBody (two types): its
    fragment uses EXI's relaxed element fragment grammar.  Expected bytes: EXIficient's, as Josev
    0.31.2 digests them (its ``EXI().to_exi(EMAID(...), ISO_V2_MSG_DEF)``)."""
    from iso15118.security import xmldsig

    for ident, value, exi in (
        ("id4", "UKSWI123456791A", "80ec0202b4b21a40045552d4d5d24c4c8ccd0d4d8dce4c507d3d00"),
        ("ab", "UKSWI123456791A", "80ec020230b140045552d4d5d24c4c8ccd0d4d8dce4c507d3d00"),
        ("id4", "DEPNXC000000001", "80ec0202b4b21a4004511154139610cc0c0c0c0c0c0c0c0c7d3d00"),
    ):
        tree = m2.EMAID(value=value, id=ident).to_tree("eMAID", "urn:iso:15118:2:2013:MsgBody")
        assert xmldsig.fragment_bytes(tree, "iso2").hex() == exi


def test_unreadable_or_foreign_certificates_are_failed_certchainerror(pki2: PKI) -> None:
    """Garbage where a certificate belongs, and a P-521 (-20) contract: typed refusals, no crash."""
    w = Walk(pki2)
    res = w.send(m2.PaymentDetailsReq(e_ma_id=w.contract.emaid,
                                      contract_signature_cert_chain=m2.CertificateChain(certificate=b"\x30\x03junk")))
    assert res.response_code is RC.FAILED_CERT_CHAIN_ERROR and w.core.ended
    w = Walk(pki2)
    key = ec.generate_private_key(ec.SECP521R1())
    leaf = issue_certificate(cn=pki2.emaid, dc="MO", profile=Profile.CONTRACT, key=key,
                             issuer=IssuedCert(pki2.cert("moSubCA2"), pki2.key("moSubCA2")))  # type: ignore[arg-type]
    p521 = ContractCredentials((leaf, pki2.cert("moSubCA2"), pki2.cert("moSubCA1")), key)
    res = w.send(m2.PaymentDetailsReq(e_ma_id=p521.emaid, contract_signature_cert_chain=_chain(p521)))
    assert res.response_code is RC.FAILED_CERT_CHAIN_ERROR and "WRONG_ALGORITHM" in str(w.last_errors)
    w = Walk(pki2)
    req = m2.CertificateInstallationReq(oem_provisioning_cert=b"junk", id="id1", list_of_root_certificate_ids=(
        m2.ListOfRootCertificateIDs(root_certificate_id=[X509IssuerSerial(x509_issuer_name="CN=x", x509_serial_number=1)])))
    res = w.send(req, pnc2.sign_elements([req], w.prov.oem_key))  # type: ignore[arg-type]
    assert res.response_code is RC.FAILED_CERT_CHAIN_ERROR
