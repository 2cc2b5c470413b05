"""TLS decryption on real recordings: Python ``ssl`` client and server over loopback with a
self-signed ECDSA certificate, the client writing an SSLKEYLOGFILE.  The traffic is recorded by a
relaying proxy (always; the bytes both sockets really exchanged) and by tcpdump / dumpcap when
they are installed.  Decrypted application data must equal what the sockets sent."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.events import EV_TO_EVSE, EVSE_TO_EV
from iso15118.capture.tls_decrypt import Keylog, hkdf_expand_label, tls12_prf
from iso15118.transport.v2gtp import encode_frame
from tests.capture.tlsrig import record, tool_available

ROOT = Path(__file__).resolve().parents[2]
EXI = ROOT / "fixtures" / "exi"

_SUITES13 = {
    "TLS_AES_128_GCM_SHA256": "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384": "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
}


def _record(tmp_path: Path, *, version: str, suite13: str | None = None, **spec: object) -> dict:
    """Run the recording rig; in a child process when a TLS 1.3 suite must be chosen
    (``OPENSSL_CONF`` does that, Python's ssl cannot)."""
    if not suite13:
        kw = dict(spec)
        for k in ("client_frames", "server_frames"):
            if kw.get(k) is not None:
                kw[k] = [bytes.fromhex(h) for h in kw[k]]  # type: ignore[union-attr]
        return record(tmp_path, version=version, **kw)  # type: ignore[arg-type]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"version": version, **spec}))
    env = dict(os.environ)
    if suite13:
        conf = tmp_path / "openssl.cnf"
        conf.write_text(
            "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n"
            "system_default = system_default_sect\n[system_default_sect]\n"
            f"Ciphersuites = {suite13}\n"
        )
        env["OPENSSL_CONF"] = str(conf)
    subprocess.run([sys.executable, "-m", "tests.capture.tlsrig", str(spec_path)], cwd=ROOT, env=env,
                   check=True, timeout=60)
    return json.loads((tmp_path / "result.json").read_text())


def _check(capture: Path, result: dict) -> list:
    dec = CaptureDecoder(capture, keylog=result["keylog"], decode=False)
    events = list(dec.events())
    v2g = [e for e in events if e.kind == "v2g"]
    sent_c = b"".join(bytes.fromhex(h) for h in result["client_sent"])
    sent_s = b"".join(bytes.fromhex(h) for h in result["server_sent"])
    got_c = b"".join(encode_frame(e.payload_type, e.payload) for e in v2g if e.direction == EV_TO_EVSE)
    got_s = b"".join(encode_frame(e.payload_type, e.payload) for e in v2g if e.direction == EVSE_TO_EV)
    assert got_c == sent_c
    assert got_s == sent_s == bytes.fromhex(result["client_received"])
    assert all(e.tls for e in v2g)
    tls = [e for e in events if e.kind == "tls"]
    hello = [e for e in tls if e.name == "TLS ServerHello"]
    assert hello and hello[0].fields["suite"] == result["cipher"]
    assert not [e for e in tls if e.level == "error"], [(e.name, e.detail) for e in tls if e.level == "error"]
    assert not [e for e in events if e.kind == "framing"]
    return events


@pytest.mark.parametrize("suite", sorted(_SUITES13))
def test_tls13_suites_proxy_recording(tmp_path: Path, suite: str) -> None:
    result = _record(tmp_path, version="1.3", suite13=suite)
    assert result["cipher"] == suite
    _check(tmp_path / "proxy.pcap", result)


@pytest.mark.parametrize("ciphers", ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256",
                                     "ECDHE-ECDSA-AES256-GCM-SHA384"])
def test_tls12_suites_proxy_recording(tmp_path: Path, ciphers: str) -> None:
    result = _record(tmp_path, version="1.2", ciphers=ciphers)
    assert result["cipher"] == ciphers
    events = _check(tmp_path / "proxy.pcap", result)
    if "SHA256" in ciphers and "GCM" not in ciphers:
        hello = [e for e in events if e.name == "TLS ServerHello"][0]
        # OpenSSL negotiates encrypt-then-MAC for CBC suites (RFC 7366): that path is exercised.
        assert hello.fields.get("encrypt_then_mac") is True


def test_tls12_cbc_mac_then_encrypt(tmp_path: Path) -> None:
    """ECDHE-ECDSA-AES128-SHA256 without encrypt-then-MAC: the classic MAC-then-encrypt records."""
    result = _record(tmp_path, version="1.2", ciphers="ECDHE-ECDSA-AES128-SHA256", no_etm=True)
    events = _check(tmp_path / "proxy.pcap", result)
    hello = [e for e in events if e.name == "TLS ServerHello"][0]
    assert "encrypt_then_mac" not in hello.fields


@pytest.mark.skipif(not tool_available("tcpdump"), reason="tcpdump not installed (apt-get install tcpdump)")
@pytest.mark.parametrize(
    "version,suite,curve,interface",
    [("1.3", "TLS_AES_256_GCM_SHA384", "P-521", "lo"), ("1.2", "ECDHE-ECDSA-AES128-SHA256", "P-256", "any")],
    ids=["tls13-p521-ethernet", "tls12-cbc-cooked"],
)
def test_tcpdump_capture(tmp_path: Path, version: str, suite: str, curve: str, interface: str) -> None:
    spec: dict = {"curve": curve, "sniff": "tcpdump", "interface": interface}
    for attempt in range(4):
        run_dir = tmp_path / f"run{attempt}"
        run_dir.mkdir()
        if version == "1.3":
            result = _record(run_dir, version=version, suite13=suite, **spec)
        else:
            result = _record(run_dir, version=version, ciphers=suite, **spec)
        if result["sniffed"] is None:
            pytest.skip(f"tcpdump could not capture here: {result['sniffer_error']}")
        # On a busy machine the sniffer can lose a packet (seen on "any"): the decoder must say
        # so (a gap, a broken TLS stream), and the check is repeated on a complete recording.
        # It can also start listening after the connection opened (no SYN in the file: the
        # handshake, hence the keys, are missing): that recording is repeated too.
        dec = CaptureDecoder(result["sniffed"], keylog=result["keylog"], decode=False)
        events = list(dec.events())
        notices = dec.stats.tcp_notices
        if not notices.get("gap") and notices.get("open"):
            break
        if notices.get("gap"):
            assert [e for e in events if e.kind == "tls" and e.level == "error"]
            assert not [e for e in events if e.kind == "tls" and e.name.startswith("TLS alert")]
        print(f"attempt {attempt}: incomplete recording ({notices}), repeated")
    dec = CaptureDecoder(result["sniffed"], decode=False)
    list(dec.events())
    # lo: Ethernet; any: Linux cooked v1 or v2 depending on the tcpdump version.
    assert dec.reader.linktypes <= {1, 113, 276}
    if interface == "any":
        assert dec.reader.linktypes & {113, 276}
    _check(Path(result["sniffed"]), result)


@pytest.mark.skipif(not tool_available("dumpcap"), reason="dumpcap not installed (apt-get install tshark)")
def test_dumpcap_pcapng_capture(tmp_path: Path) -> None:
    result = _record(tmp_path, version="1.3", suite13="TLS_CHACHA20_POLY1305_SHA256", sniff="dumpcap")
    if result["sniffed"] is None:
        pytest.skip(f"dumpcap could not capture here: {result['sniffer_error']}")
    assert Path(result["sniffed"]).read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    _check(Path(result["sniffed"]), result)


def test_iso15118_20_session_over_tls13(tmp_path: Path) -> None:
    """A -20 AC session (the reference EXI corpus's bytes) inside TLS 1.3: decrypted, framed,
    negotiated (SupportedAppProtocol -> -20 AC) and decoded with the schema each payload type
    selects."""
    import iso15118.exi.codec  # noqa: F401  (a missing codec fails the test, it never skips)
    seq = [
        (0x8001, "sap/SupportedAppProtocolReq", "sap/SupportedAppProtocolRes"),
        (0x8002, "common/SessionSetupReq", "common/SessionSetupRes"),
        (0x8002, "common/AuthorizationSetupReq", "common/AuthorizationSetupRes_EIM"),
        (0x8002, "common/AuthorizationReq_EIM", "common/AuthorizationRes"),
        (0x8002, "common/ServiceDiscoveryReq", "common/ServiceDiscoveryRes_AC"),
        (0x8002, "common/ServiceSelectionReq", "common/ServiceSelectionRes"),
        (0x8003, "ac/AC_ChargeParameterDiscoveryReq", "ac/AC_ChargeParameterDiscoveryRes"),
        (0x8002, "common/ScheduleExchangeReq_Scheduled", "common/ScheduleExchangeRes_Scheduled"),
        (0x8002, "common/PowerDeliveryReq_Start", "common/PowerDeliveryRes"),
        (0x8003, "ac/AC_ChargeLoopReq_Scheduled", "ac/AC_ChargeLoopRes_Scheduled"),
        (0x8002, "common/PowerDeliveryReq_Stop", "common/PowerDeliveryRes"),
        (0x8002, "common/SessionStopReq_Terminate", "common/SessionStopRes"),
    ]
    seq = [s for s in seq if (EXI / f"{s[1]}.exi").exists() and (EXI / f"{s[2]}.exi").exists()]
    assert len(seq) >= 8
    cf = [encode_frame(pt, (EXI / f"{req}.exi").read_bytes()).hex() for pt, req, _ in seq]
    sf = [encode_frame(pt, (EXI / f"{res}.exi").read_bytes()).hex() for pt, _, res in seq]
    result = _record(tmp_path, version="1.3", curve="P-521", client_frames=cf, server_frames=sf)
    dec = CaptureDecoder(tmp_path / "proxy.pcap", keylog=result["keylog"])
    events = list(dec.events())
    v2g = [e for e in events if e.kind == "v2g"]
    def message_name(fixture: str) -> str:
        stem = fixture.split("/")[1]
        if stem.startswith("SupportedAppProtocol"):
            return "supportedAppProtocol" + stem[20:23]
        return re.match(r"(.*?(?:Req|Res))(_.*)?$", stem).group(1)  # type: ignore[union-attr]

    assert [e.name for e in v2g] == [message_name(n) for _, req, res in seq for n in (req, res)]
    assert not [e for e in v2g if e.decoded is None or e.decoded.error]
    body = v2g[2:]
    assert {e.protocol for e in body} == {"-20"}
    assert {e.schema for e in body} == {"common", "ac"}
    assert all(e.schema == ("ac" if e.payload_type == 0x8003 else "common") for e in body)


def test_session_not_in_keylog(tmp_path: Path) -> None:
    _record(tmp_path, version="1.3")
    other = tmp_path / "other.txt"
    other.write_text("CLIENT_TRAFFIC_SECRET_0 " + "00" * 32 + " " + "11" * 32 + "\n")
    dec = CaptureDecoder(tmp_path / "proxy.pcap", keylog=str(other), decode=False)
    events = list(dec.events())
    assert not [e for e in events if e.kind == "v2g"]
    notes = [e for e in events if e.kind == "tls"]
    assert notes and "not in the key log" in notes[0].detail


def test_wrong_secret_is_reported(tmp_path: Path) -> None:
    result = _record(tmp_path, version="1.3")
    lines = Path(result["keylog"]).read_text().splitlines()
    broken = []
    for ln in lines:
        if ln.startswith("#") or not ln.strip():
            continue
        label, cr, secret = ln.split()
        if label == "SERVER_TRAFFIC_SECRET_0":
            secret = "00" * (len(secret) // 2)
        broken.append(f"{label} {cr} {secret}")
    kl = tmp_path / "broken.txt"
    kl.write_text("\n".join(broken) + "\n")
    dec = CaptureDecoder(tmp_path / "proxy.pcap", keylog=str(kl), decode=False)
    events = list(dec.events())
    errors = [e for e in events if e.kind == "tls" and e.level == "error"]
    assert errors and all(e.direction == EVSE_TO_EV for e in errors)
    # The client's direction still decrypts.
    sent_c = b"".join(bytes.fromhex(h) for h in result["client_sent"])
    got = b"".join(encode_frame(e.payload_type, e.payload) for e in events if e.kind == "v2g")
    assert got == sent_c


def test_key_schedule_vectors() -> None:
    """RFC 8448 (TLS 1.3 traces) 'Simple 1-RTT Handshake': server handshake traffic secret ->
    write key and IV; and the TLS 1.2 PRF against a published test vector."""
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    assert hkdf_expand_label("sha256", secret, b"key", b"", 16).hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert hkdf_expand_label("sha256", secret, b"iv", b"", 12).hex() == "5d313eb2671276ee13000b30"
    # TLS 1.2 PRF (SHA-256) test vector circulated on the IETF TLS list.
    out = tls12_prf("sha256", bytes.fromhex("9bbe436ba940f017b17652849a71db35"), b"test label",
                    bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"), 100)
    assert out.hex().startswith("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a")


def test_keylog_parsing() -> None:
    k = Keylog.parse("# comment\nCLIENT_RANDOM aa bb\nbad line\nSERVER_TRAFFIC_SECRET_0 zz 00\n")
    assert k.get("CLIENT_RANDOM", b"\xaa") == b"\xbb"
    assert len(k) == 1 and len(k.errors) == 2


def test_tls13_with_traffic_secrets_only(tmp_path: Path) -> None:
    """Only CLIENT_/SERVER_TRAFFIC_SECRET_0 in the key log: the encrypted handshake is reported as
    not decryptable (a warning), application data decrypts."""
    result = _record(tmp_path, version="1.3")
    lines = [ln for ln in Path(result["keylog"]).read_text().splitlines()
             if ln.startswith(("CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"))]
    assert len(lines) == 2
    kl = tmp_path / "app-only.txt"
    kl.write_text("\n".join(lines) + "\n")
    result["keylog"] = str(kl)
    dec = CaptureDecoder(tmp_path / "proxy.pcap", keylog=str(kl), decode=False)
    events = list(dec.events())
    skipped = [e for e in events if e.kind == "tls" and "no handshake secret" in e.detail]
    assert skipped and all(e.level == "warning" for e in skipped)
    sent_c = b"".join(bytes.fromhex(h) for h in result["client_sent"])
    sent_s = b"".join(bytes.fromhex(h) for h in result["server_sent"])
    v2g = [e for e in events if e.kind == "v2g"]
    assert b"".join(encode_frame(e.payload_type, e.payload) for e in v2g if e.direction == EV_TO_EVSE) == sent_c
    assert b"".join(encode_frame(e.payload_type, e.payload) for e in v2g if e.direction == EVSE_TO_EV) == sent_s


def test_secrets_embedded_in_pcapng(tmp_path: Path) -> None:
    """Key log inside the capture (pcapng Decryption Secrets Block): no --keylog needed.  Written
    by our writer, and by Wireshark's editcap --inject-secrets when it is installed."""
    from iso15118.capture.pcapio import open_capture
    from iso15118.capture.pcapwriter import PcapNgWriter

    result = _record(tmp_path, version="1.3")
    keylog = Path(result["keylog"]).read_bytes()
    ours = tmp_path / "embedded.pcapng"
    with PcapNgWriter(ours) as w:
        w.write_secrets(keylog)
        for r in open_capture(tmp_path / "proxy.pcap"):
            w.write(r.ts, r.data)
    paths = [ours]
    if tool_available("editcap"):
        theirs = tmp_path / "editcap.pcapng"
        subprocess.run(["editcap", "--inject-secrets", f"tls,{result['keylog']}", str(tmp_path / "proxy.pcap"),
                        str(theirs)], check=True, capture_output=True, timeout=60)
        paths.append(theirs)
    sent_c = b"".join(bytes.fromhex(h) for h in result["client_sent"])
    for p in paths:
        dec = CaptureDecoder(p, decode=False)  # no keylog given
        events = list(dec.events())
        assert [e for e in events if e.name == "TLS secrets in capture"]
        got = b"".join(encode_frame(e.payload_type, e.payload) for e in events
                       if e.kind == "v2g" and e.direction == EV_TO_EVSE)
        assert got == sent_c, p.name


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_protocol_over_the_wrong_tls_version_is_noted(tmp_path: Path, version: str) -> None:
    """SupportedAppProtocol agreeing -20 (the corpus's SAP pair) inside TLS 1.2 is noted, by the
    rule of iso15118.facts.transport the session follows (-20: TLS 1.3); inside TLS 1.3 it is not."""
    pairs = [(0x8001, "sap/SupportedAppProtocolReq", "sap/SupportedAppProtocolRes"),
             (0x8002, "common/SessionSetupReq", "common/SessionSetupRes")]
    cf = [encode_frame(pt, (EXI / f"{req}.exi").read_bytes()).hex() for pt, req, _ in pairs]
    sf = [encode_frame(pt, (EXI / f"{res}.exi").read_bytes()).hex() for pt, _, res in pairs]
    result = _record(tmp_path, version=version, client_frames=cf, server_frames=sf)
    events = list(CaptureDecoder(tmp_path / "proxy.pcap", keylog=result["keylog"]).events())
    assert {e.protocol for e in events if e.kind == "v2g" and e.name.startswith("SessionSetup")} == {"-20"}
    notes = [e for e in events if e.name == "protocol over this transport"]
    if version == "1.2":
        assert len(notes) == 1 and "ISO 15118-20 negotiated over TLS 1.2" in notes[0].detail, [e.detail for e in notes]
    else:
        assert notes == []
