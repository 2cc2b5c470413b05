"""Real loopback sessions over TCP and TLS 1.3 with the asyncio runner."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from iso15118.security.pki import PKI, Profile, create_pki, issue_certificate, load_pki
from iso15118.session import ControlMode, EnergyService, EvccConfig, SeccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.session.tlsconf import evcc_context, secc_context
from iso15118.sim import make_ev, make_evse

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    create_pki(d, "secp521r1")
    return d


@pytest.fixture(scope="module")
def other_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("other")
    create_pki(d, "secp521r1")
    return d


def _session(
    evse: str,
    ev: str,
    service: EnergyService | None,
    *,
    server_tls: ssl.SSLContext | None = None,
    client_tls: ssl.SSLContext | None = None,
    loops: int = 4,
    mode: ControlMode = ControlMode.DYNAMIC,
) -> tuple:
    async def main() -> tuple:
        secc = await start_secc(lambda: make_evse(evse), "::1", 0, server_tls, linger=0.5, config=SeccConfig())
        try:
            r = await run_evcc(
                make_ev(ev),
                "::1",
                secc.port,
                client_tls,
                config=EvccConfig(service=service, control_mode=mode, max_loops=loops, loop_interval=0.05),
            )
            results = await secc.wait_sessions(1, 20)
            return r, results[0]
        finally:
            secc.close()

    return asyncio.run(main())


def test_wall_connector_and_awd_ac_bpt_over_tls13(pki_dir: Path) -> None:
    ev, se = _session(
        "wall-connector",
        "cybertruck-awd",
        EnergyService.AC_BPT,
        server_tls=secc_context(pki_dir),
        client_tls=evcc_context(pki_dir),
    )
    assert ev.ok and se.ok, (ev.reason, se.reason)
    assert ev.tls_version == "TLSv1.3" and se.tls_version == "TLSv1.3"
    assert ev.loops == 4 and ev.rx == ev.tx == se.rx == se.tx
    assert se.stats["max_response_s"] < 0.4 and "late_responses" not in se.stats


def test_dc_bidi_and_awd_dc_bpt_over_tls13(pki_dir: Path) -> None:
    ev, se = _session(
        "dc-bidi",
        "cybertruck-awd",
        EnergyService.DC_BPT,
        server_tls=secc_context(pki_dir),
        client_tls=evcc_context(pki_dir),
        mode=ControlMode.SCHEDULED,
    )
    assert ev.ok and se.ok and ev.tls_version == "TLSv1.3"


def test_dc_bidi_and_awd_dc_bpt_over_tcp() -> None:
    ev, se = _session("dc-bidi", "cybertruck-awd", EnergyService.DC_BPT)
    assert ev.ok and se.ok and ev.tls_version is None


def test_rwd_gets_no_bpt_over_tcp() -> None:
    async def main() -> tuple:
        secc = await start_secc(lambda: make_evse("wall-connector"), "::1", 0, None, linger=0.2, record_events=True)
        try:
            r = await run_evcc(make_ev("cybertruck-rwd"), "::1", secc.port, None, config=EvccConfig(max_loops=2, loop_interval=0.05))
            res = await secc.wait_sessions(1, 20)
            return r, res[0]
        finally:
            secc.close()

    ev, se = asyncio.run(main())
    assert ev.ok and se.ok

    selections = [e.message for _, e in se.events if getattr(e, "name", "") == "ServiceSelectionReq"]
    assert selections[0].selected_energy_transfer_service.service_id == int(EnergyService.AC)


def test_many_concurrent_sessions_on_one_secc() -> None:
    async def main() -> tuple:
        secc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, None, linger=0.1)
        try:
            results = await asyncio.gather(
                *(
                    run_evcc(
                        make_ev("cybertruck-awd"),
                        "::1",
                        secc.port,
                        None,
                        config=EvccConfig(service=EnergyService.DC_BPT, max_loops=3, loop_interval=0.1),
                    )
                    for _ in range(8)
                )
            )
            server = await secc.wait_sessions(8, 30)
            return results, server
        finally:
            secc.close()

    results, server = asyncio.run(main())
    assert all(r.ok for r in results), [r.reason for r in results]
    assert all(s.ok for s in server) and len(server) == 8


def _tls_failure(server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> tuple:
    async def main() -> tuple:
        secc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, server_tls, linger=0.1)
        try:
            with pytest.raises((ssl.SSLError, ConnectionError)) as exc_info:
                await run_evcc(make_ev("cybertruck-awd"), "::1", secc.port, client_tls, config=EvccConfig(max_loops=1))
            await asyncio.sleep(0.2)
            return exc_info.value, list(secc.results)
        finally:
            secc.close()

    return asyncio.run(main())


def test_tls_wrong_ca_is_refused(pki_dir: Path, other_pki_dir: Path) -> None:
    # the EV trusts another V2G root: the SECC chain does not verify
    err, results = _tls_failure(secc_context(pki_dir), evcc_context(other_pki_dir))
    assert isinstance(err, ssl.SSLCertVerificationError)
    assert "certificate verify failed" in str(err)
    assert results == []  # no session was ever started


def test_tls_expired_secc_certificate_is_refused(pki_dir: Path, tmp_path: Path) -> None:
    p: PKI = load_pki(pki_dir)
    key = p.algorithm.generate_key()
    now = dt.datetime.now(dt.UTC)
    leaf = issue_certificate(
        cn="DE*PNX*E12345*1",
        dc="CPO",
        profile=Profile.SECC,
        key=key,
        issuer=p.issued("cpoSubCA2"),
        not_before=now - dt.timedelta(days=90),
        not_after=now - dt.timedelta(days=1),
    )
    # a PKI directory whose SECC leaf has expired, everything else as before
    d = tmp_path / "expired"
    (d / "certs").mkdir(parents=True)
    (d / "private_keys").mkdir()
    chain = [leaf, *p.intermediates("cpoCertChain")]
    (d / "certs" / "cpoCertChain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    (d / "certs" / "v2gRootCACert.pem").write_bytes((pki_dir / "certs" / "v2gRootCACert.pem").read_bytes())
    (d / "private_keys" / "seccLeaf.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    err, results = _tls_failure(secc_context(d), evcc_context(pki_dir))
    assert isinstance(err, ssl.SSLCertVerificationError)
    assert "expired" in str(err)


def test_tls_client_without_vehicle_certificate_is_refused(pki_dir: Path) -> None:
    from iso15118.security.tls import client_context

    bare = client_context([pki_dir / "certs" / "v2gRootCACert.pem"])
    async def main() -> object:
        secc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, secc_context(pki_dir), linger=0.1)
        try:
            r = None
            try:
                r = await run_evcc(make_ev("cybertruck-awd"), "::1", secc.port, bare, config=EvccConfig(max_loops=1))
            except (ssl.SSLError, ConnectionError) as exc:
                return exc
            return r
        finally:
            secc.close()

    outcome = asyncio.run(main())
    # TLS 1.3: the client learns of the refusal with its first read (alert), never a session
    assert not getattr(outcome, "ok", False)
