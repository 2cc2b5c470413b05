"""A paused session resumes (OK_OldSessionJoined) only over TLS with the vehicle certificate of
the session that paused it (digest §1.3: the session is bound to the TLS peer certificate).
Real SECC and EVCC over loopback TLS 1.3; the runner hands the fingerprint to the sans-IO core."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from iso15118.security import tls as T
from iso15118.security.pki import Profile, create_pki, issue_certificate, load_pki
from iso15118.session import EnergyService, EvccConfig, SeccConfig
from iso15118.session.events import MessageReceived
from iso15118.session.runner import SessionResult, run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse

from .tls_harness import write_identity

pytestmark = pytest.mark.timeout(120)


def _setup_code(r: SessionResult) -> str:
    for _, ev in r.events:
        if isinstance(ev, MessageReceived) and ev.name == "SessionSetupRes":
            return str(ev.message.response_code.value)
    raise AssertionError("no SessionSetupRes")


def test_resume_bound_to_the_vehicle_certificate(tmp_path: Path) -> None:
    p = load_pki(create_pki(tmp_path / "pki", "secp521r1").root)
    key = p.algorithm.generate_key()
    other_leaf = issue_certificate(cn="WMIV1234567890ABCDEX", dc="OEM", profile=Profile.VEHICLE, key=key,
                                   issuer=p.issued("vehicleSubCA2"))
    chain, keyfile = write_identity(tmp_path / "other", "vehicle", [other_leaf, *p.intermediates("vehicleCertChain")], key)
    own_ctx = evcc_context(p.paths.root)
    other_ctx = T.client_context([p.paths.cert("v2gRootCA")], chain, keyfile)

    async def main() -> tuple[SessionResult, SessionResult, SessionResult]:
        secc = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, secc_context(p.paths.root), config=SeccConfig(), linger=0.1)
        try:
            cfg = EvccConfig(service=EnergyService.AC_BPT, loop_interval=0.05)
            first = await run_evcc(make_ev("cybertruck-awd", pause_after=0.3), "::1", secc.port, own_ctx, config=cfg)
            assert first.ok and first.paused_session_id is not None, first.reason
            resume = EvccConfig(service=EnergyService.AC_BPT, resume_session_id=first.paused_session_id, max_loops=1,
                                loop_interval=0.05)
            stolen = await run_evcc(make_ev("cybertruck-awd"), "::1", secc.port, other_ctx, config=resume,
                                    record_events=True)
            again = await run_evcc(make_ev("cybertruck-awd"), "::1", secc.port, own_ctx, config=resume, record_events=True)
            return first, stolen, again
        finally:
            await secc.aclose()

    first, stolen, again = asyncio.run(main())
    print(f"resume with another vehicle certificate: {_setup_code(stolen)}; with the pausing one: {_setup_code(again)}")
    assert _setup_code(stolen) == "OK_NewSessionEstablished"
    assert _setup_code(again) == "OK_OldSessionJoined"
