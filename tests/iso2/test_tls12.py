"""ISO 15118-2 sessions over TLS 1.2 with our own -2 lab PKI (``iso15118 pki create --profile iso2``).

The profile itself (TLS 1.2 only, ECDHE-ECDSA-AES128-SHA256 on P-256, the chain rules) is
``tests/security/test_tls_iso2.py``'s; Josev over TLS 1.2 is in ``tests/iso2/test_josev.py``.
Here: a whole -2 DC session of our EVCC against our SECC through the runner, over that profile.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.session.iso2 import Iso2EvccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, is_iso2_pki, secc_context
from iso15118.sim import make_ev, make_evse

ISO2_ONLY = (AppProtocol.ISO2,)


@pytest.fixture(scope="module")
def iso2_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki") / "iso2"
    proc = subprocess.run([sys.executable, "-m", "iso15118", "pki", "create", str(d), "--profile", "iso2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert is_iso2_pki(d)
    return d


def test_our_evcc_and_secc_over_tls12(iso2_pki: Path) -> None:
    async def scenario() -> None:
        srv = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, secc_context(iso2_pki), linger=0.2,
                               protocols=ISO2_ONLY)
        try:
            r = await run_evcc(make_ev("cybertruck-awd"), "::1", srv.port, evcc_context(iso2_pki),
                               protocols=ISO2_ONLY, configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.DC, max_loops=3)})
            s = (await srv.wait_sessions(1, 20))[0]
        finally:
            srv.close()
        assert r.ok and s.ok, (r.reason, s.reason)
        assert r.reason == s.reason == "SessionStop Terminate"
        assert r.tls_version == s.tls_version == "TLSv1.2"
        assert r.protocol is s.protocol is AppProtocol.ISO2 and r.loops == 3

    asyncio.run(scenario())
