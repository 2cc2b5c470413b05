"""-2 Plug & Charge in the sessions: PaymentServiceSelection(Contract) -> PaymentDetails (contract chain
to the MO root, a fresh 16-byte GenChallenge) -> AuthorizationReq signed with the contract key
(``iso15118.security.pnc2``), our EVCC against our SECC in memory; the SECC's refusals with their -2
codes.  Contract is offered only over TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.messages import iso2 as m2
from iso15118.security.pki import PkiProfile, create_pki, load_pki
from iso15118.security.pnc2 import sign_elements
from iso15118.session.events import SendMessage
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig, Iso2SeccSession
from iso15118.session.iso2.parts import decode_message, encode_message
from iso15118.session.iso2.secc import Iso2SeccPnC
from iso15118.session.memory import run_pair
from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
from iso15118.session.pnc import ContractCredentials, contract_from_pki
from iso15118.sim import make_ev, make_evse
from tests.iso2.helpers import wall

RC = m2.ResponseCode


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("pki2")
    a, b = base / "a", base / "b"
    create_pki(a, "secp256r1", profile=PkiProfile.ISO2)
    create_pki(b, "secp256r1", profile=PkiProfile.ISO2)  # another MO: its contracts are not ours
    return a, b


def _pair(pki: Path, contract: ContractCredentials | None, tls: bool = True,
          family: Family = Family.AC) -> tuple[EvccNegotiator, SeccNegotiator]:
    p = load_pki(pki)
    pnc = Iso2SeccPnC(mo_roots=(p.cert("moRootCA"),))
    ev = make_ev("cybertruck-awd", stop_after=1.0)
    e = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), tls=tls, clock=wall,
                       configs={AppProtocol.ISO2: Iso2EvccConfig(family=family, contract=contract)})
    s = SeccNegotiator(make_evse("wall-connector" if family is Family.AC else "dc-bidi"), protocols=(AppProtocol.ISO2,),
                       tls=tls, clock=wall, configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=pnc)})
    return e, s


@pytest.mark.parametrize("family", [Family.AC, Family.DC])
def test_pnc_session_to_session_stop(pkis: tuple[Path, Path], family: Family) -> None:
    contract = contract_from_pki(pkis[0])
    e, s = _pair(pkis[0], contract, family=family)
    tr = run_pair(e, s)
    assert e.ok and s.ok, (e.end_reason, s.end_reason)
    assert e.core.authorization == s.core.authorization == "PnC"
    assert s.core.emaid == contract.emaid
    sent = tr.sent("evcc")
    assert sent[3:6] == ["PaymentServiceSelectionReq", "PaymentDetailsReq", "AuthorizationReq"], sent
    sel = [ev.message for ev in tr.of("evcc", SendMessage) if ev.name == "PaymentServiceSelectionReq"][0]  # type: ignore[attr-defined]
    assert sel.selected_payment_option is m2.PaymentOption.CONTRACT
    details = [ev.message for ev in tr.of("secc", SendMessage) if ev.name == "PaymentDetailsRes"][0]  # type: ignore[attr-defined]
    assert len(details.gen_challenge) == 16
    auth = [ev for ev in tr.of("evcc", SendMessage) if ev.name == "AuthorizationReq"][0]
    signed = decode_message(auth.payload)  # type: ignore[attr-defined]
    assert signed.header.signature is not None and signed.body.body_element.gen_challenge == details.gen_challenge


def test_no_contract_over_tcp(pkis: tuple[Path, Path]) -> None:
    e, s = _pair(pkis[0], contract_from_pki(pkis[0]), tls=False)
    tr = run_pair(e, s)
    assert e.ok and s.ok and e.core.authorization == "EIM"
    sd = [ev.message for ev in tr.of("secc", SendMessage) if ev.name == "ServiceDiscoveryRes"][0]  # type: ignore[attr-defined]
    assert sd.payment_option_list.payment_option == [m2.PaymentOption.EXTERNAL_PAYMENT]


def test_a_contract_of_another_mo_is_refused(pkis: tuple[Path, Path]) -> None:
    e, s = _pair(pkis[0], contract_from_pki(pkis[1]))
    run_pair(e, s)
    assert not e.ok and not s.ok
    assert s.core.end_reason.startswith("FAILED_CertChainError")


def _secc_at_payment_details(pki: Path) -> tuple[Iso2SeccSession, bytes]:
    p = load_pki(pki)
    core = Iso2SeccSession(make_evse("wall-connector"), Iso2SeccConfig(pnc=Iso2SeccPnC(mo_roots=(p.cert("moRootCA"),))),
                           now=0.0, clock=wall, tls=True)
    contract = contract_from_pki(pki)

    def send(body: object, t: float, **header: object) -> object:
        payload = m2.encode(m2.message(core.session_id if header.pop("sid", True) else bytes(1), body, **header))  # type: ignore[arg-type]
        out = [e for e in core.receive(0x8001, payload, t) if isinstance(e, SendMessage)]
        return decode_message(out[0].payload).body.body_element if out else None

    send(m2.SessionSetupReq(evcc_id=bytes(6)), 0.1, sid=False)
    send(m2.ServiceDiscoveryReq(), 0.2)
    send(m2.PaymentServiceSelectionReq(selected_payment_option=m2.PaymentOption.CONTRACT,
                                       selected_service_list=m2.SelectedServiceList(selected_service=[m2.SelectedService(service_id=1)])), 0.3)
    from iso15118.session.iso2.evcc import Iso2EvccSession

    ev = Iso2EvccSession(make_ev("cybertruck-awd"), Iso2EvccConfig(contract=contract), clock=wall)
    res = send(ev._payment_details(), 0.4)
    assert isinstance(res, m2.PaymentDetailsRes) and res.response_code is RC.OK
    return core, res.gen_challenge


def test_bad_signature_and_wrong_challenge(pkis: tuple[Path, Path]) -> None:
    other = contract_from_pki(pkis[1])
    mine = contract_from_pki(pkis[0])
    for key, challenge_ok, code in ((other.key, True, RC.FAILED_SIGNATURE_ERROR), (mine.key, False, RC.FAILED_CHALLENGE_INVALID)):
        core, challenge = _secc_at_payment_details(pkis[0])
        req = m2.AuthorizationReq(id="ID1", gen_challenge=challenge if challenge_ok else bytes(16))
        payload = m2.encode(m2.message(core.session_id, req, signature=sign_elements([req], key)))  # type: ignore[arg-type]
        out = [e for e in core.receive(0x8001, payload, 1.0) if isinstance(e, SendMessage)]
        assert decode_message(out[0].payload).body.body_element.response_code is code
        assert core.ended and not core.ok
    # unsigned, first AuthorizationReq after PaymentDetails: refused too
    core, challenge = _secc_at_payment_details(pkis[0])
    out = [e for e in core.receive(0x8001, encode_message(core.session_id, m2.AuthorizationReq(id="ID1", gen_challenge=challenge)), 1.0)
           if isinstance(e, SendMessage)]
    assert decode_message(out[0].payload).body.body_element.response_code is RC.FAILED_SIGNATURE_ERROR
