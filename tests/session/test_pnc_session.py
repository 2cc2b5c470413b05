"""Plug & Charge through the session cores: PnC authorization, CertificateInstallation and
MeteringConfirmation, in memory (fake clock) and over loopback TLS 1.3 with mutual auth.

Real lab PKIs (secp521r1 and Ed448), real signatures and key delivery; no mocks."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from iso15118 import messages as m
from iso15118.security import pnc as sec
from iso15118.security.pki import PKI, Profile, create_pki, issue_certificate, load_pki
from iso15118.session import (
    ControlMode,
    EnergyService,
    EvccConfig,
    EvccSession,
    ProtocolError,
    SeccConfig,
    SeccSession,
    State,
)
from iso15118.session.events import SendMessage
from iso15118.session.pnc import (
    ContractCredentials,
    contract_from_pki,
    provisioning_from_pki,
    secc_pnc_from_pki,
    typed,
)
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse
from tests.session.helpers import EPOCH, NS_AC, Script, clock, run

pytestmark = pytest.mark.timeout(120)
RC = m.ResponseCode
ALGS = ["secp521r1", "ed448"]
BPT = [(EnergyService.AC_BPT, "wall-connector"), (EnergyService.DC_BPT, "dc-bidi")]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pnc-session")
    return {name: create_pki(root / name, "secp521r1" if name == "other" else name).root for name in (*ALGS, "other")}


@pytest.fixture(scope="module")
def pkis(pki_dirs: dict[str, Path]) -> dict[str, PKI]:
    return {name: load_pki(d) for name, d in pki_dirs.items()}


def secc_config(pki: PKI, **pnc_kwargs: Any) -> SeccConfig:
    return SeccConfig(authorization_services=("PnC", "EIM"), pnc=secc_pnc_from_pki(pki, **pnc_kwargs))


def pnc_pair(
    pki: PKI,
    *,
    evse: str = "dc-bidi",
    service: EnergyService = EnergyService.DC_BPT,
    mode: ControlMode = ControlMode.DYNAMIC,
    contract: ContractCredentials | None | str = "pki",
    provisioning: Any = None,
    tls: tuple[bool, bool] = (True, True),
    evcc_kwargs: dict[str, Any] | None = None,
    evse_kwargs: dict[str, Any] | None = None,
    secc_cfg: SeccConfig | None = None,
    loops: int = 4,
) -> tuple[Any, Any, EvccSession, SeccSession]:
    ev = make_ev(
        "cybertruck-awd",
        contract=contract_from_pki(pki) if contract == "pki" else contract,
        provisioning=provisioning,
    )
    charger = make_evse(evse, **(evse_kwargs or {}))
    cfg = EvccConfig(service=service, control_mode=mode, max_loops=loops, **(evcc_kwargs or {}))
    evcc = EvccSession(ev, cfg, clock=clock, tls=tls[0])
    secc = SeccSession(charger, secc_cfg or secc_config(pki), clock=clock, tls=tls[1])
    return ev, charger, evcc, secc


def responses(tr: Any, side: str, name: str) -> list[Any]:
    return [e.message for e in tr.of(side, SendMessage) if e.name == name]


def expired_contract(pki: PKI) -> ContractCredentials:
    key = pki.algorithm.generate_key()
    now = dt.datetime.now(dt.UTC)
    leaf = issue_certificate(
        cn=pki.emaid,
        dc="MO",
        profile=Profile.CONTRACT,
        key=key,
        issuer=pki.issued("moSubCA2"),
        not_before=now - dt.timedelta(days=400),
        not_after=now - dt.timedelta(days=1),
    )
    return ContractCredentials((leaf, *pki.intermediates("moCertChain")), key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- in memory: happy paths


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize(("service", "evse"), BPT, ids=[b[0].name for b in BPT])
def test_pnc_bpt_session_in_memory(pkis: dict[str, PKI], alg: str, service: EnergyService, evse: str) -> None:
    pki = pkis[alg]
    ev, charger, evcc, secc = pnc_pair(pki, evse=evse, service=service)
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert evcc.authorization == secc.authorization == "PnC"
    assert secc.emaid == pki.emaid
    setup = responses(tr, "secc", "AuthorizationSetupRes")[0]
    assert [a.value for a in setup.authorization_services] == ["PnC", "EIM"]
    assert isinstance(setup.authorization_mode, m.PnCASResAuthorizationMode)
    assert len(setup.authorization_mode.gen_challenge) == 16 and setup.certificate_installation_service
    req = [e.message for e in tr.of("evcc", SendMessage) if e.name == "AuthorizationReq"][0]
    assert req.selected_authorization_service is m.Authorization.PNC
    assert req.authorization_mode.gen_challenge == setup.authorization_mode.gen_challenge
    assert req.header.signature is not None
    assert [r.response_code for r in responses(tr, "secc", "AuthorizationRes")] == [RC.OK]
    assert "CertificateInstallationReq" not in tr.sent("evcc")
    assert charger.meter.charged_wh > 0


def test_every_session_gets_a_fresh_challenge(pkis: dict[str, PKI]) -> None:
    challenges = set()
    for _ in range(3):
        _, _, evcc, secc = pnc_pair(pkis["ed448"], loops=1)
        tr = run(evcc, secc)
        challenges.add(responses(tr, "secc", "AuthorizationSetupRes")[0].authorization_mode.gen_challenge)
    assert len(challenges) == 3


def test_backend_decides_while_authorization_is_ongoing(pkis: dict[str, PKI]) -> None:
    _, _, evcc, secc = pnc_pair(pkis["secp521r1"], evse_kwargs={"pnc_authorization_delay": 0.5})
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok and secc.authorization == "PnC"
    res = responses(tr, "secc", "AuthorizationRes")
    assert len(res) >= 3 and {r.evse_processing for r in res[:-1]} == {m.Processing.ONGOING}
    assert res[-1].evse_processing is m.Processing.FINISHED and res[-1].response_code is RC.OK
    reqs = [e.message for e in tr.of("evcc", SendMessage) if e.name == "AuthorizationReq"]
    # resent unaltered except the TimeStamp ([V2G20-1582]): same signed mode, same signature
    assert all(r.authorization_mode == reqs[0].authorization_mode for r in reqs)
    assert all(r.header.signature == reqs[0].header.signature for r in reqs)


def test_backend_refuses_the_contract(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    _, _, evcc, secc = pnc_pair(pki, evse_kwargs={"refused_emaids": (pki.emaid,)})
    tr = run(evcc, secc)
    assert responses(tr, "secc", "AuthorizationRes")[0].response_code is RC.WARNING_GENERAL_PNC_AUTHORIZATION_ERROR
    assert evcc.authorization is None and secc.authorization is None
    assert tr.sent("evcc")[-1] == "SessionStopReq" and "ServiceDiscoveryReq" not in tr.sent("evcc")


# --------------------------------------------------------------------------- in memory: rejections


def _pnc_script(pki: PKI, *, tls: bool = True) -> tuple[Script, SeccSession, Any]:
    secc = SeccSession(make_evse("wall-connector"), secc_config(pki), clock=clock, tls=tls)
    s = Script(secc)
    s.setup(NS_AC)
    return s, secc, s.send(m.AuthorizationSetupReq(header=s.header()))


def _signed_request(s: Script, pki: PKI, challenge: bytes, contract: ContractCredentials | None = None) -> Any:
    c = contract or contract_from_pki(pki)
    return sec.build_pnc_authorization_req(
        session_id=s.session_id, gen_challenge=challenge, contract_chain=c.chain, contract_key=c.key, time_stamp=EPOCH
    )


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_signature_fails_and_ends_the_session(pkis: dict[str, PKI], alg: str) -> None:
    pki = pkis[alg]
    s, secc, setup = _pnc_script(pki)
    tree = _signed_request(s, pki, setup.authorization_mode.gen_challenge)
    sv = tree.find("Header").find("Signature").find("SignatureValue")
    sv.value = bytes([sv.value[0] ^ 0x01]) + sv.value[1:]
    res = s.send(typed(tree))
    assert res.response_code is RC.FAILED_SIGNATURE_ERROR
    assert secc.ended and not secc.ok and secc.authorization is None
    assert [e.code for e in s.events if isinstance(e, ProtocolError)] == ["FAILED_SignatureError"]
    assert s.send(m.ServiceDiscoveryReq(header=s.header())) is None  # nothing after the end


def test_signature_by_a_key_that_is_not_the_contracts_fails_in_a_pair(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    good = contract_from_pki(pki)
    forged = ContractCredentials(good.chain, pki.algorithm.generate_key())  # type: ignore[arg-type]
    _, _, evcc, secc = pnc_pair(pki, contract=forged)
    tr = run(evcc, secc)
    assert responses(tr, "secc", "AuthorizationRes")[0].response_code is RC.FAILED_SIGNATURE_ERROR
    assert secc.ended and not secc.ok and evcc.ended and not evcc.ok
    assert any(e.code == "FAILED_SignatureError" for e in tr.of("evcc", ProtocolError))
    assert tr.sent("evcc")[-1] == "AuthorizationReq"


def test_wrong_challenge_is_a_warning_and_eim_may_follow(pkis: dict[str, PKI]) -> None:
    pki = pkis["ed448"]
    s, secc, setup = _pnc_script(pki)
    wrong = bytes(b ^ 0xFF for b in setup.authorization_mode.gen_challenge)
    res = s.send(typed(_signed_request(s, pki, wrong)))
    assert res.response_code is RC.WARNING_CHALLENGE_INVALID and res.evse_processing is m.Processing.FINISHED
    assert not secc.ended and secc.state is State.AUTHORIZATION_SETUP and secc.authorization is None
    eim = s.send(
        m.AuthorizationReq(
            header=s.header(), selected_authorization_service=m.Authorization.EIM, authorization_mode=m.EIMAReqAuthorizationMode()
        )
    )
    assert eim.response_code is RC.OK and secc.authorization == "EIM"


@pytest.mark.parametrize(
    ("case", "code"),
    [("expired", RC.WARNING_CERTIFICATE_EXPIRED), ("unknown_mo_root", RC.WARNING_CERTIFICATE_VALIDATION_ERROR)],
)
def test_contract_chain_problems_are_warnings(pkis: dict[str, PKI], case: str, code: Any) -> None:
    pki = pkis["secp521r1"]
    contract = expired_contract(pki) if case == "expired" else contract_from_pki(pkis["other"])
    s, secc, setup = _pnc_script(pki)
    res = s.send(typed(_signed_request(s, pki, setup.authorization_mode.gen_challenge, contract)))
    assert res.response_code is code and not secc.ended and secc.authorization is None
    # the same through both cores: our EV stops (no EIM fallback by default) ...
    _, _, evcc, secc = pnc_pair(pki, contract=contract)
    tr = run(evcc, secc)
    assert [r.response_code for r in responses(tr, "secc", "AuthorizationRes")] == [code]
    stop = [e.message for e in tr.of("evcc", SendMessage) if e.name == "SessionStopReq"][0]
    assert code.value in stop.ev_termination_explanation
    assert evcc.ended and secc.ended and "ServiceDiscoveryReq" not in tr.sent("evcc")
    # ... or, when allowed, falls back to EIM and charges
    _, charger, evcc, secc = pnc_pair(pki, contract=contract, evcc_kwargs={"pnc_fallback_eim": True})
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok and secc.authorization == evcc.authorization == "EIM"
    assert charger.meter.charged_wh > 0


def test_pnc_is_offered_only_over_tls(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    s, secc, setup = _pnc_script(pki, tls=False)
    assert [a.value for a in setup.authorization_services] == ["EIM"]
    assert isinstance(setup.authorization_mode, m.EIMASResAuthorizationMode)
    assert setup.certificate_installation_service is False
    res = s.send(typed(_signed_request(s, pki, bytes(16))))
    assert res.response_code is RC.WARNING_AUTHORIZATION_SELECTION_INVALID
    # a pair over plain TCP authorizes with EIM although the EV has a contract
    _, _, evcc, secc = pnc_pair(pki, tls=(False, False))
    run(evcc, secc)
    assert evcc.ok and secc.ok and evcc.authorization == secc.authorization == "EIM"
    # and our EV does not use its contract over TCP even if a (misconfigured) SECC offers PnC
    _, _, evcc, secc = pnc_pair(pki, tls=(False, True))
    tr = run(evcc, secc)
    assert evcc.ok and evcc.authorization == "EIM" and "PnC" in [
        a.value for a in responses(tr, "secc", "AuthorizationSetupRes")[0].authorization_services
    ]
    # an EV that insists on PnC stops instead
    _, _, evcc, secc = pnc_pair(pki, tls=(False, False), evcc_kwargs={"authorization": "PnC"})
    tr = run(evcc, secc)
    assert "AuthorizationReq" not in tr.sent("evcc") and evcc.authorization is None


# --------------------------------------------------------------------------- CertificateInstallation


@pytest.mark.parametrize("alg", ALGS)
def test_certificate_installation_round_trip(pkis: dict[str, PKI], alg: str) -> None:
    pki = pkis[alg]
    ev, _, evcc, secc = pnc_pair(pki, contract=None, provisioning=provisioning_from_pki(pki))
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    sent = tr.sent("evcc")
    assert sent[2:5] == ["AuthorizationSetupReq", "CertificateInstallationReq", "AuthorizationReq"]
    res = responses(tr, "secc", "CertificateInstallationRes")[0]
    assert res.response_code is RC.OK and res.header.signature is not None
    data = res.signed_installation_data
    assert data.ecdh_curve.value == ("X448" if alg == "ed448" else "SECP521")
    # the EV decrypted a key that matches the freshly issued contract certificate
    contract = ev.contract
    assert contract is not None and contract is evcc.installed_contract
    assert contract.certificate != pki.cert("contractLeaf") and contract.emaid == pki.emaid
    pub = lambda k: k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # noqa: E731
    assert pub(contract.key) == contract.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert secc.certificate_installations == 1 and secc.authorization == "PnC" and secc.emaid == pki.emaid
    # next session: the installed contract is used directly
    evcc2 = EvccSession(ev, EvccConfig(service=EnergyService.DC_BPT, max_loops=2), clock=clock, tls=True)
    secc2 = SeccSession(make_evse("dc-bidi"), secc_config(pki), clock=clock, tls=True)
    tr2 = run(evcc2, secc2)
    assert evcc2.ok and secc2.authorization == "PnC" and "CertificateInstallationReq" not in tr2.sent("evcc")


def test_certificate_installation_refused_for_an_unknown_oem(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    prov = provisioning_from_pki(pkis["other"])  # OEM chain the SECC does not trust
    ev, _, evcc, secc = pnc_pair(pki, contract=None, provisioning=prov)
    tr = run(evcc, secc)
    res = responses(tr, "secc", "CertificateInstallationRes")[0]
    assert res.response_code is RC.WARNING_CERTIFICATE_VALIDATION_ERROR
    assert ev.contract is None and secc.certificate_installations == 0
    assert tr.sent("evcc")[-1] == "SessionStopReq" and "AuthorizationReq" not in tr.sent("evcc")


def test_certificate_installation_with_a_tampered_cps_signature(pkis: dict[str, PKI]) -> None:
    """The EV refuses a response whose SignedInstallationData was altered after signing."""
    pki = pkis["ed448"]
    cfg = secc_config(pki)
    provider = cfg.pnc.provider  # type: ignore[union-attr]

    class Tamper:
        def certificate_installation_res(self, *args: Any) -> Any:
            tree = provider.certificate_installation_res(*args)  # type: ignore[union-attr]
            enc = next(c for c in tree.find("SignedInstallationData").children if c.name.endswith("_EncryptedPrivateKey"))
            enc.value = bytes([enc.value[0] ^ 1]) + enc.value[1:]
            return tree

    cfg.pnc.provider = Tamper()  # type: ignore[union-attr]
    ev, _, evcc, secc = pnc_pair(pki, contract=None, provisioning=provisioning_from_pki(pki), secc_cfg=cfg)
    tr = run(evcc, secc)
    assert [e.code for e in tr.of("evcc", ProtocolError)][0] == "CertificateInstallationFailed"
    assert ev.contract is None and "AuthorizationReq" not in tr.sent("evcc")


def test_no_installation_offered_means_eim(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    cfg = SeccConfig(authorization_services=("PnC", "EIM"), pnc=secc_pnc_from_pki(pki, certificate_installation=False))
    ev, _, evcc, secc = pnc_pair(pki, contract=None, provisioning=provisioning_from_pki(pki), secc_cfg=cfg)
    tr = run(evcc, secc)
    assert responses(tr, "secc", "AuthorizationSetupRes")[0].certificate_installation_service is False
    assert evcc.ok and evcc.authorization == "EIM" and "CertificateInstallationReq" not in tr.sent("evcc")


# --------------------------------------------------------------------------- MeteringConfirmation


@pytest.mark.parametrize("mode", [ControlMode.SCHEDULED, ControlMode.DYNAMIC], ids=lambda x: x.name)
@pytest.mark.parametrize("alg", ALGS)
def test_metering_confirmation_round_trip(pkis: dict[str, PKI], alg: str, mode: ControlMode) -> None:
    pki = pkis[alg]
    cfg = secc_config(pki, metering_confirmation_after_loops=2)
    _, _, evcc, secc = pnc_pair(pki, mode=mode, secc_cfg=cfg, loops=4)
    tr = run(evcc, secc)
    assert evcc.ok and secc.ok, (evcc.end_reason, secc.end_reason)
    assert secc.metering_confirmations == evcc.metering_confirmations == 1
    loop_res = responses(tr, "secc", "DC_ChargeLoopRes")
    asked = [r for r in loop_res if r.evse_status is not None]
    assert len(asked) == 1 and asked[0].evse_status.evse_notification is m.EVSENotification.METERING_CONFIRMATION
    req = [e.message for e in tr.of("evcc", SendMessage) if e.name == "MeteringConfirmationReq"][0]
    assert req.signed_metering_data.meter_info == asked[0].meter_info
    assert req.signed_metering_data.session_id == secc.session_id
    scheduled = isinstance(req.signed_metering_data.control_mode, m.ScheduledSMDTControlMode)
    assert scheduled is (mode is ControlMode.SCHEDULED)
    assert responses(tr, "secc", "MeteringConfirmationRes")[0].response_code is RC.OK
    sent = tr.sent("evcc")
    i = sent.index("MeteringConfirmationReq")
    assert sent[i - 1] == sent[i + 1] == "DC_ChargeLoopReq"  # the loop goes on


def test_metering_confirmation_signed_with_another_key_fails(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    ev, _, evcc, secc = pnc_pair(pki, loops=20)
    good = ev.contract

    def swap_key_and_ask(t: float) -> None:
        ev.contract = ContractCredentials(good.chain, pki.algorithm.generate_key())  # type: ignore[arg-type]
        secc.notify("MeteringConfirmation")

    tr = run(evcc, secc, hooks=[(3.0, swap_key_and_ask)])
    assert secc.state is State.CHARGING or secc.ended
    assert responses(tr, "secc", "MeteringConfirmationRes")[0].response_code is RC.FAILED_METERING_SIGNATURE_NOT_VALID
    assert secc.ended and not secc.ok and evcc.ended and not evcc.ok


def test_metering_confirmation_is_not_asked_in_an_eim_session(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    _, _, evcc, secc = pnc_pair(pki, contract=None, secc_cfg=secc_config(pki, metering_confirmation_after_loops=1))
    tr = run(evcc, secc, hooks=[(2.0, lambda t: secc.notify("MeteringConfirmation"))])
    assert evcc.ok and secc.ok and secc.authorization == "EIM"
    assert "MeteringConfirmationReq" not in tr.sent("evcc")
    assert all(r.evse_status is None for r in responses(tr, "secc", "DC_ChargeLoopRes"))


def test_unsolicited_metering_confirmation_in_an_eim_session_is_a_sequence_error(pkis: dict[str, PKI]) -> None:
    pki = pkis["secp521r1"]
    secc = SeccSession(make_evse("dc-bidi"), secc_config(pki), clock=clock, tls=True)
    s = Script(secc)
    s.setup()
    s.authorize()
    tree = sec.build_metering_confirmation_req(
        session_id=s.session_id, meter_info={"MeterID": "M", "ChargedEnergyReadingWh": 1}, key=pki.key("contractLeaf")  # type: ignore[arg-type]
    )
    res = s.send(typed(tree))
    assert res.response_code is RC.FAILED_SEQUENCE_ERROR and secc.ended


# --------------------------------------------------------------------------- no keys in logs


def _secret_strings(*keys: Any) -> list[str]:
    out = []
    for k in keys:
        if isinstance(k, ec.EllipticCurvePrivateKey):
            out.append(format(k.private_numbers().private_value, "x")[:32])
        else:
            out.append(k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()[:32])
        out.append(k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).hex()[-32:])
    return out


@pytest.mark.parametrize("alg", ALGS)
def test_keys_never_appear_in_logs(pkis: dict[str, PKI], pki_dirs: dict[str, Path], alg: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pki = pkis[alg]
    cfg = secc_config(pki, metering_confirmation_after_loops=1)
    ev, _, evcc, secc = pnc_pair(pki, contract=None, provisioning=provisioning_from_pki(pki), secc_cfg=cfg)
    tr = run(evcc, secc)
    assert evcc.ok and secc.metering_confirmations == 1 and ev.contract is not None
    # and a failing one (tampered signature: error paths log too)
    s, _, setup = _pnc_script(pki)
    tree = _signed_request(s, pki, setup.authorization_mode.gen_challenge)
    tree.find("Header").find("Signature").find("SignatureValue").value = bytes(132)
    s.send(typed(tree))
    logging.getLogger("iso15118").debug("events: %r", [e for _, _, e in tr.entries] + s.events)
    text = caplog.text + repr(ev.contract) + repr(ev.provisioning) + repr(cfg) + repr(evcc.config)
    assert "PnC authorized" in caplog.text and "contract installed" in caplog.text
    for s_ in _secret_strings(ev.contract.key, pki.key("contractLeaf"), pki.key("oemLeaf"), pki.key("cpsLeaf")):
        assert s_ not in text
    assert "PRIVATE KEY" not in text
    for pw in (pki_dirs[alg] / "private_keys").glob("*Password.txt"):
        assert pw.read_text().strip() not in text


# --------------------------------------------------------------------------- loopback TLS 1.3


def _tls_session(pki_dir: Path, evse: str, service: EnergyService, ev: Any, cfg: SeccConfig, loops: int = 4) -> tuple:
    async def main() -> tuple:
        secc = await start_secc(lambda: make_evse(evse), "::1", 0, secc_context(pki_dir), linger=0.3, config=cfg)
        try:
            r = await run_evcc(
                ev,
                "::1",
                secc.port,
                evcc_context(pki_dir),
                config=EvccConfig(service=service, control_mode=ControlMode.DYNAMIC, max_loops=loops, loop_interval=0.05),
            )
            results = await secc.wait_sessions(1, 20)
            return r, results[0]
        finally:
            await secc.aclose(0.5)

    return asyncio.run(main())


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize(("service", "evse"), BPT, ids=[b[0].name for b in BPT])
def test_pnc_bpt_over_loopback_tls13(pkis: dict[str, PKI], pki_dirs: dict[str, Path], alg: str, service: EnergyService, evse: str) -> None:
    pki = pkis[alg]
    ev = make_ev("cybertruck-awd", contract=contract_from_pki(pki))
    r, s = _tls_session(pki_dirs[alg], evse, service, ev, secc_config(pki, metering_confirmation_after_loops=2))
    assert r.ok and s.ok, (r.reason, s.reason)
    assert r.tls_version == s.tls_version == "TLSv1.3"
    assert r.authorization == s.authorization == "PnC" and r.emaid == s.emaid == pki.emaid
    assert r.rx == r.tx == s.rx == s.tx and r.loops == 4
    # handshake (TCP + TLS 1.3 mutual auth) and PnC authorization, generous bounds for CI
    assert 0 < r.stats["connect_s"] < r.stats["authorized_s"] < 5.0
    assert "late_responses" not in s.stats
    print(f"\n{alg} {service.name}: TLS connect {r.stats['connect_s'] * 1000:.1f} ms, "
          f"PnC authorized {r.stats['authorized_s'] * 1000:.1f} ms after connect start")


@pytest.mark.parametrize("alg", ALGS)
def test_certificate_installation_over_loopback_tls13(pkis: dict[str, PKI], pki_dirs: dict[str, Path], alg: str) -> None:
    pki = pkis[alg]
    ev = make_ev("cybertruck-awd", provisioning=provisioning_from_pki(pki))
    r, s = _tls_session(pki_dirs[alg], "wall-connector", EnergyService.AC_BPT, ev, secc_config(pki), loops=2)
    assert r.ok and s.ok and r.authorization == s.authorization == "PnC"
    assert ev.contract is not None and ev.contract.emaid == pki.emaid
    assert s.stats["max_response_s"] < rules_perf("CertificateInstallationReq")


def rules_perf(name: str) -> float:
    from iso15118.session import rules

    return rules.MESSAGES[name].secc_performance
