"""Without the native verify callback (another interpreter, a libssl mismatch) the chain rules
still run on every live connection, right after the handshake: the connection is closed (no
alert can be sent then) and the log says why."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from iso15118.security import tls as T
from iso15118.security.pki import Profile, create_pki, issue_certificate, load_pki
from iso15118.session.runner import start_secc
from iso15118.sim import make_evse
from iso15118.transport.tcp import ConnectionClosed, open_connection

from .tls_harness import write_identity

pytestmark = pytest.mark.timeout(60)


def test_rules_run_after_the_handshake_without_the_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(T._openssl, "verify_callback_available", lambda: False)
    p = load_pki(create_pki(tmp_path / "pki", "secp521r1").root)
    key = p.algorithm.generate_key()
    leaf = issue_certificate(cn="WMIV1234567890ABCDEX", dc="CPO", profile=Profile.VEHICLE, key=key,
                             issuer=p.issued("vehicleSubCA2"))
    chain, keyfile = write_identity(tmp_path, "vehicle", [leaf, *p.intermediates("vehicleCertChain")], key)
    sctx = T.secc_context_from_pki(p.paths)
    cctx = T.client_context([p.paths.cert("v2gRootCA")], chain, keyfile)
    assert "iso15118_after_handshake" in sctx.__dict__

    async def main() -> str:
        secc = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, sctx)
        try:
            conn = await open_connection("::1", secc.port, cctx, timeout=10)
            try:
                await conn.recv(timeout=5)
                return "frame"
            except ConnectionClosed as exc:
                return f"closed: {exc}"
            finally:
                await conn.aclose()
        finally:
            await secc.aclose(0.5)

    with caplog.at_level(logging.WARNING):
        got = asyncio.run(main())
    assert got.startswith("closed"), got
    lines = [r.getMessage() for r in caplog.records if "TLS handshake from" in r.getMessage()]
    assert len(lines) == 1 and "WRONG_DOMAIN" in lines[0], lines
