"""OCSP / CRL status in the session-level PnC contract check, over loopback TLS 1.3 with the
real runner: a revoked contract gets WARNING_CertificateRevoked, a good one is authorized."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509 import ocsp

from iso15118.security.pki import PKI, create_pki, load_pki, make_crl, make_ocsp_response
from iso15118.session import ControlMode, EnergyService, EvccConfig, SeccConfig
from iso15118.session.events import MessageReceived
from iso15118.session.pnc import contract_from_pki, secc_pnc_from_pki
from iso15118.session.runner import SessionResult, run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return load_pki(create_pki(tmp_path_factory.mktemp("pnc-rev") / "pki", "secp521r1").root)


def _auth_code(r: SessionResult) -> str:
    codes = [str(ev.message.response_code.value) for _, ev in r.events
             if isinstance(ev, MessageReceived) and ev.name == "AuthorizationRes"]
    assert codes, "no AuthorizationRes"
    return codes[-1]


def _session(p: PKI, **revocation: Any) -> tuple[SessionResult, SessionResult]:
    cfg = SeccConfig(authorization_services=("PnC", "EIM"), pnc=secc_pnc_from_pki(p, **revocation))

    async def main() -> tuple[SessionResult, SessionResult]:
        secc = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, secc_context(p.paths.root), config=cfg,
                                linger=0.1)
        try:
            r = await run_evcc(make_ev("cybertruck-awd", contract=contract_from_pki(p)), "::1", secc.port,
                               evcc_context(p.paths.root), record_events=True,
                               config=EvccConfig(authorization="PnC", service=EnergyService.AC_BPT,
                                                 control_mode=ControlMode.DYNAMIC, max_loops=1, loop_interval=0.05))
            return r, (await secc.wait_sessions(1, 20))[0]
        finally:
            await secc.aclose(0.5)

    return asyncio.run(main())


def _ocsp(p: PKI, status: ocsp.OCSPCertStatus) -> ocsp.OCSPResponse:
    return make_ocsp_response(p.cert("contractLeaf"), p.issued("moSubCA2"), status)


def test_ocsp_revoked_contract_refused(lab: PKI) -> None:
    r, s = _session(lab, ocsp_responses=[_ocsp(lab, ocsp.OCSPCertStatus.REVOKED)])
    assert _auth_code(r) == "WARNING_CertificateRevoked" and s.authorization is None, (r.reason, s.reason)


def test_ocsp_good_contract_authorized(lab: PKI) -> None:
    r, s = _session(lab, ocsp_responses=[_ocsp(lab, ocsp.OCSPCertStatus.GOOD)])
    assert r.ok and s.authorization == "PnC" and _auth_code(r) == "OK", (r.reason, s.reason)


def test_crl_revoked_contract_refused(lab: PKI) -> None:
    crl = make_crl(lab.issued("moSubCA2"), [lab.cert("contractLeaf").serial_number])
    r, s = _session(lab, crls=[crl])
    assert _auth_code(r) == "WARNING_CertificateRevoked" and s.authorization is None, (r.reason, s.reason)


_ = Path
