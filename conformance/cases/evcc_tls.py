"""TLS cases with the vehicle under test: the tester SECC presents a chain that breaks one
ISO 15118-20 rule (digest §1.3, §8.2) and the EVCC must refuse it -- no V2G message over it.
Chains are issued from the PKI whose root the vehicle trusts (``--evcc-pki``; a local EVCC gets
a fresh one), so the only defect is the one the case names.

Positive evidence of a refusal: a TCP forwarder in front of the tester SECC sees the EVCC
connect and send its ClientHello, and no V2G request ever reaches the tester SECC."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ssl
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from conformance.catalogue import CaseContext, case

VARIANTS = ("good", "wrong_dc", "p256_ca", "expired", "untrusted", "tls12")


def _pki_dir(ctx: CaseContext) -> Path:
    if ctx.sut.evcc_pki is not None:
        return Path(ctx.sut.evcc_pki)
    pki: Any = getattr(ctx.sut.evcc_tls_launcher, "pki", None)
    if pki is None:
        ctx.not_applicable("no PKI of the EVCC under test (--evcc-pki)")
    return Path(pki())


@functools.lru_cache(maxsize=2)
def _rogue(algorithm: str) -> Path:
    from iso15118.security.pki import create_pki

    return create_pki(tempfile.mkdtemp(prefix="conformance-rogue-secc-"), algorithm).root


def _write(d: Path, chain: list[Any], key: Any) -> tuple[Path, Path]:
    c = d / "chain.pem"
    k = d / "key.pem"
    c.write_bytes(b"".join(x.public_bytes(serialization.Encoding.PEM) for x in chain))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return c, k


def build_server_context(pki_dir: Path, variant: str) -> ssl.SSLContext:
    """The tester SECC's TLS context for ``variant`` (see :data:`VARIANTS`)."""
    from iso15118.security import tls as T
    from iso15118.security.algorithms import Algorithm
    from iso15118.security.pki import IssuedCert, Profile, issue_certificate, load_pki

    pki = load_pki(pki_dir if variant != "untrusted" else _rogue(load_pki(pki_dir).algorithm.value))
    trust = load_pki(pki_dir)
    alg = pki.algorithm
    d = Path(tempfile.mkdtemp(prefix=f"conformance-secc-{variant}-"))
    sub1, sub2 = pki.issued("cpoSubCA1"), pki.issued("cpoSubCA2")
    leaf_key: Any = alg.generate_key()
    chain: list[Any]
    if variant in ("good", "untrusted", "tls12"):
        chain = [pki.cert("seccLeaf"), pki.cert("cpoSubCA2"), pki.cert("cpoSubCA1")]
        leaf_key = pki.key("seccLeaf")
    elif variant == "wrong_dc":  # SECC leaf with DomainComponent "OEM" instead of "CPO"
        leaf = issue_certificate(cn="SECCWRONGDC", dc="OEM", profile=Profile.SECC, key=leaf_key, issuer=sub2, days=30)
        chain = [leaf, pki.cert("cpoSubCA2"), pki.cert("cpoSubCA1")]
    elif variant == "p256_ca":  # a Sub-CA 2 on P-256: not a -20 algorithm
        k2: Any = Algorithm.SECP256R1.generate_key()
        ca2 = issue_certificate(cn="CPOSubCA2P256", dc="V2G", profile=Profile.SUB_CA2, key=k2, issuer=sub1, days=300)
        leaf = issue_certificate(cn="SECCP256CA", dc="CPO", profile=Profile.SECC, key=leaf_key, issuer=IssuedCert(ca2, k2), days=30)
        chain = [leaf, ca2, pki.cert("cpoSubCA1")]
    elif variant == "expired":
        now = dt.datetime.now(dt.UTC)
        leaf = issue_certificate(cn="SECCEXPIRED", dc="CPO", profile=Profile.SECC, key=leaf_key, issuer=sub2,
                                 not_before=now - dt.timedelta(days=40), not_after=now - dt.timedelta(days=2))
        chain = [leaf, pki.cert("cpoSubCA2"), pki.cert("cpoSubCA1")]
    else:
        raise ValueError(variant)
    cpath, kpath = _write(d, chain, leaf_key)
    # a plain context: the tester must be able to present chains our own library refuses to load
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cpath, kpath)
    ctx.load_verify_locations(cafile=str(trust.paths.cert("v2gRootCA")))
    ctx.verify_mode = ssl.CERT_REQUIRED
    _ = T
    if variant == "tls12":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256")
        except ssl.SSLError:
            pass
    return ctx


class Forwarder:
    """TCP forwarder in front of the tester SECC: sees the EVCC connect and its ClientHello."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.connections = 0
        self.client_hello = False
        self.bytes_up = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "::1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            ur, uw = await asyncio.open_connection("::1", self.target)
        except OSError:
            w.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await src.read(65536):
                    if up:
                        if self.bytes_up == 0 and data[:1] == b"\x16":
                            self.client_hello = True
                        self.bytes_up += len(data)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(r, uw, True), pump(ur, w, False))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def _tls_run(ctx: CaseContext, variant: str) -> tuple[Any, Forwarder]:
    pki_dir = _pki_dir(ctx)
    sctx = await asyncio.to_thread(build_server_context, pki_dir, variant)
    ctx.extra["evcc_trust_dir"] = str(pki_dir / "certs")
    from conformance.tester_secc import TesterSecc

    secc = TesterSecc(ctx.evidence, ctx.checks, profile=ctx.sut.evcc_profile, tls=sctx)
    port = await secc.start()
    fwd = Forwarder(port)
    fport = await fwd.start()
    ctx.evidence.note(f"tester SECC (TLS, chain '{variant}') on [::1]:{port}, forwarder [::1]:{fport}")
    launch = asyncio.ensure_future(ctx.sut.evcc_tls_launcher("::1", fport, ctx.extra["evcc_trust_dir"]))
    done = asyncio.ensure_future(secc.done.wait())
    try:
        async with asyncio.timeout(40 * ctx.sut.time_scale):
            await asyncio.wait({done, launch}, return_when=asyncio.FIRST_COMPLETED)
            if not done.done() and secc.connected_at is not None:
                await done
            try:
                out = await launch
                ctx.evidence.note(f"EVCC under test finished: {str(out)[:300]}")
            except Exception as exc:  # noqa: BLE001 - the EVCC's refusal is evidence
                ctx.evidence.note(f"EVCC under test ended with {type(exc).__name__}: {exc}")
    except TimeoutError:
        ctx.evidence.note("EVCC under test did not finish in time", "error")
        launch.cancel()
    finally:
        done.cancel()
        secc.close()
        fwd.close()
    ctx.evidence.note(f"forwarder: {fwd.connections} connections, ClientHello {'seen' if fwd.client_hello else 'not seen'}, "
                      f"{fwd.bytes_up} bytes from the EVCC")
    return secc, fwd


def _refuse_case(variant: str, rule: str) -> Any:
    async def run(ctx: CaseContext) -> None:
        secc, fwd = await _tls_run(ctx, variant)
        ctx.precondition(fwd.client_hello, f"the EVCC never started a TLS handshake ({fwd.connections} connections)",
                         "precondition: the EVCC connects and sends a ClientHello")
        ctx.check(f"{rule}: the EVCC refuses the charger (no V2G message over this TLS connection)", not secc.requests,
                  f"{len(secc.requests)} requests received: {secc.names()[:4]}" if secc.requests else
                  "handshake not completed by the EVCC; no request")
    return run


@case("TC_EVCC_TLS_001", "TLS 1.3 with a valid -20 chain: the session runs", group="TLS",
      purpose="With a correct SECC chain under the root the vehicle trusts, the EVCC completes TLS 1.3 and the session.",
      requirement="digest §1.3 (TLS 1.3, mutual authentication) / §8.2", steps=("tester SECC with the valid chain", "expect a session"),
      tags=("tls", "security", "evcc"), needs=("tls",))
async def evcc_tls_001(ctx: CaseContext) -> None:
    secc, fwd = await _tls_run(ctx, "good")
    ctx.check("digest §1.3: TLS session established and V2G messages exchanged", bool(secc.requests), f"{len(secc.requests)} requests")
    ctx.check("digest §3.1: the session ran to SessionStop", "SessionStopReq" in secc.names(), f"{secc.names()[-3:]}")


for _id, _variant, _title, _rule in (
    ("TC_EVCC_TLS_002", "wrong_dc", "SECC leaf with the wrong DomainComponent is refused",
     "digest §8.2 (SECC certificate DC=CPO)"),
    ("TC_EVCC_TLS_003", "p256_ca", "A chain with a P-256 Sub-CA is refused", "digest §1.3/§8.2 (-20: secp521r1 or Ed448 only)"),
    ("TC_EVCC_TLS_004", "expired", "An expired SECC certificate is refused", "digest §8.2 (validity)"),
    ("TC_EVCC_TLS_005", "untrusted", "A chain under an untrusted root is refused", "digest §1.3 (EVCC verifies against the V2G root)"),
    ("TC_EVCC_TLS_006", "tls12", "A charger offering only TLS 1.2 is refused", "digest §1.3 (-20: TLS 1.3 only)"),
):
    case(_id, _title, group="TLS", purpose=f"{_title}: the vehicle must not talk to it.", requirement=_rule,
         steps=(f"tester SECC presents the '{_variant}' chain", "expect the EVCC to abort the handshake, no V2G message"),
         tags=("tls", "security", "negative", "evcc", "pki"), needs=("tls",))(_refuse_case(_variant, _rule))
