"""-2 Plug & Charge in the sessions: PaymentServiceSelection(Contract) -> PaymentDetails (contract chain
to the MO root, a fresh 16-byte GenChallenge) -> AuthorizationReq signed with the contract key
(``iso15118.security.pnc2``) ... a signed MeteringReceipt when a loop response says ReceiptRequired;
our EVCC against our SECC in memory; the SECC's refusals with their -2 codes.  Contract is offered
only over TLS."""

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
    # the SECC asked for one MeteringReceipt (2nd loop); the EV signed exactly the MeterInfo it got
    assert s.core.metering_receipts == e.core.metering_receipts == 1
    loop = "ChargingStatusRes" if family is Family.AC else "CurrentDemandRes"
    asked = [ev.message for ev in tr.of("secc", SendMessage) if ev.name == loop and ev.message.receipt_required]  # type: ignore[attr-defined]
    receipt = [ev for ev in tr.of("evcc", SendMessage) if ev.name == "MeteringReceiptReq"]
    assert len(asked) == 1 and len(receipt) == 1
    got = decode_message(receipt[0].payload)  # type: ignore[attr-defined]
    assert got.body.body_element.meter_info == asked[0].meter_info and got.header.signature is not None
    assert tr.sent("evcc")[tr.sent("evcc").index("MeteringReceiptReq") - 1] == loop.replace("Res", "Req")


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


def test_eim_sessions_are_never_asked_for_a_receipt(pkis: tuple[Path, Path]) -> None:
    e, s = _pair(pkis[0], None)  # TLS, Contract offered, but the EV has no contract: EIM
    tr = run_pair(e, s)
    assert e.ok and s.ok and e.core.authorization == "EIM"
    assert not any(ev.message.receipt_required for ev in tr.of("secc", SendMessage) if ev.name == "ChargingStatusRes")  # type: ignore[attr-defined]


def test_metering_receipt_refusals(pkis: tuple[Path, Path]) -> None:
    """A receipt over another MeterInfo or signed with another key: FAILED_MeteringSignatureNotValid;
    a receipt nobody asked for, or another request instead of the receipt: FAILED_SequenceError."""
    from iso15118.session.memory import run_pair as _run

    for mode, code in (("meter", RC.FAILED_METERING_SIGNATURE_NOT_VALID), ("key", RC.FAILED_METERING_SIGNATURE_NOT_VALID),
                       ("skip", RC.FAILED_SEQUENCE_ERROR)):
        e, s = _pair(pkis[0], contract_from_pki(pkis[0]))
        other_key = contract_from_pki(pkis[1]).key

        def patch(t: float, e: EvccNegotiator = e, mode: str = mode, other_key: object = other_key) -> None:
            core = e.core
            if core is None or "_want_receipt" in vars(core):
                return
            original = core._want_receipt

            def tampered(res: object) -> None:
                original(res)  # type: ignore[arg-type]
                if core._receipt is None:
                    return
                if mode == "meter":  # another reading than the one the SECC sent
                    core._receipt = m2.MeterInfo(meter_id=core._receipt.meter_id, meter_reading=(core._receipt.meter_reading or 0) + 1)
                elif mode == "key":  # signed with a key that is not the contract's
                    core.contract = ContractCredentials(core.contract.chain, other_key)  # type: ignore[union-attr, arg-type]
                else:  # the EV ignores ReceiptRequired and goes on with the loop
                    core._receipt = None

            core._want_receipt = tampered  # type: ignore[method-assign]

        _run(e, s, hooks=[(t / 100, patch) for t in range(1, 100)])
        assert not s.ok and s.core.end_reason.startswith(code.value), (mode, s.core.end_reason)
    # a MeteringReceiptReq nobody asked for
    core, challenge = _secc_at_payment_details(pkis[0])
    meter = m2.MeterInfo(meter_id="x")
    out = [ev for ev in core.receive(0x8001, encode_message(core.session_id, m2.MeteringReceiptReq(
        session_id=core.session_id, meter_info=meter, id="ID2")), 1.0) if isinstance(ev, SendMessage)]
    assert decode_message(out[0].payload).body.body_element.response_code is RC.FAILED_SEQUENCE_ERROR


def test_pnc_pause_and_resume(pkis: tuple[Path, Path]) -> None:
    """U7: a resumed PnC session is offered Contract only and authorizes again (PaymentDetails, a new
    challenge, a signed AuthorizationReq)."""
    from iso15118.session.secc import SessionStore

    p = load_pki(pkis[0])
    contract = contract_from_pki(pkis[0])
    store = SessionStore()
    ev = make_ev("cybertruck-awd", pause_after=0.6)
    evse = make_evse("wall-connector")

    def pair(resume: bytes | None, start: float) -> tuple[EvccNegotiator, SeccNegotiator]:
        e = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), tls=True, clock=wall, configs={
            AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC, contract=contract, resume_session_id=resume)})
        s = SeccNegotiator(evse, protocols=(AppProtocol.ISO2,), tls=True, clock=wall, now=start, configs={
            AppProtocol.ISO2: Iso2SeccConfig(store=store, pnc=Iso2SeccPnC(mo_roots=(p.cert("moRootCA"),)))})
        return e, s

    e1, s1 = pair(None, 0.0)
    run_pair(e1, s1)
    assert e1.ok and s1.ok and e1.end_reason == "SessionStop Pause" and e1.core.authorization == "PnC"
    ev.pause_after, ev.stop_after = None, 0.1
    e2, s2 = pair(e1.paused_session_id, 50.0)
    tr = run_pair(e2, s2, start=50.0)
    assert e2.ok and s2.ok, (e2.end_reason, s2.end_reason)
    assert s2.core.resumed and s2.core.authorization == "PnC" and s2.core.session_id == e1.paused_session_id
    sd = [ev_.message for ev_ in tr.of("secc", SendMessage) if ev_.name == "ServiceDiscoveryRes"][0]  # type: ignore[attr-defined]
    assert sd.payment_option_list.payment_option == [m2.PaymentOption.CONTRACT]
    assert {"PaymentDetailsReq", "AuthorizationReq"} <= set(tr.sent("evcc"))
