"""An unknown V2GTP payload type (reserved or manufacturer-specific) on a live SECC connection is
ignored (one warning) and the session goes on, as transport/v2gtp.py documents: real SECC, real
loopback TCP and TLS 1.3.  (A *defined* -20 type in the wrong place, e.g. SDP or DC in the SAP
state, is a protocol error the session core ends the session for; not tested here.)"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from iso15118.security.pki import create_pki
from iso15118.session.runner import start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_evse
from iso15118.transport.tcp import open_connection
from iso15118.transport.v2gtp import encode_frame

pytestmark = pytest.mark.timeout(60)
SAP_REQ = (Path(__file__).resolve().parents[2] / "fixtures" / "exi" / "sap" / "SupportedAppProtocolReq.exi").read_bytes()


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls13"])
@pytest.mark.parametrize("ptype", [0xA000, 0xFFFF, 0x8050, 0x9100], ids=["manufacturer", "manufacturer-max", "reserved",
                                                                          "reserved-sdp-range"])
def test_unknown_payload_type_is_ignored_and_the_session_goes_on(
    ptype: int, tls: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = tmp_path / "pki"
    if tls:
        create_pki(pki, "secp521r1")

    async def main() -> tuple[int, bytes]:
        secc = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, secc_context(pki) if tls else None)
        try:
            conn = await open_connection("::1", secc.port, evcc_context(pki) if tls else None, timeout=10)
            try:
                # the unknown message and a real SupportedAppProtocolReq in one write
                await conn.send_raw(encode_frame(ptype, b"\x00junk\xff" * 3) + encode_frame(0x8001, SAP_REQ))
                frame = await conn.recv(timeout=5)
                return frame.payload_type, frame.payload
            finally:
                await conn.aclose()
        finally:
            await secc.aclose(0.5)

    with caplog.at_level(logging.WARNING, logger="iso15118.session.runner"):
        ptype_back, payload = asyncio.run(main())
    assert ptype_back == 0x8001 and payload  # supportedAppProtocolRes: the session went on
    warnings = [r.getMessage() for r in caplog.records if f"0x{ptype:04X}" in r.getMessage()]
    assert len(warnings) == 1 and "ignored" in warnings[0], warnings
