"""ISO 15118-2 chargers and vehicles over TLS 1.2 with Plug & Charge, in the style of ISO 15118-4.

The tester vehicle is :mod:`conformance.tester_iso2_pnc` (our -2 EVCC core behind a recording,
rewriting tap, on a TLS connection the tester opens with the charger's -2 lab PKI); for a vehicle
under test, a tester charger (our -2 SECC core behind the same tap, with the vehicle's PKI).  Each case
judges the charger by positive evidence read from its answers: a code, a GenChallenge, a
signature verified here against the chain the charger sent.  A refusal is a FAILED code or a
close; silence is never one.  A charger that cannot be reached, or whose TLS handshake fails, is
an error.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conformance.catalogue import CaseContext, case
from conformance.tester_iso2_pnc import (
    PncRun,
    body,
    broken_signature,
    connect_tls12,
    pki_of,
    pnc_session,
    rebuild,
    run_iso2_pnc_ev,
)
from iso15118 import messages as m
from iso15118.facts.namespaces import NS_ISO2
from iso15118.facts.payload import PayloadType
from iso15118.messages import iso2 as m2
from iso15118.security.tls import ISO2, client_context, connection_info, peer_chain

REGISTERED: list[str] = []
NEEDS = ("tls", "iso2", "pnc")
TAGS = ("legacy", "iso2", "pnc")
RC = m2.ResponseCode
Run = Callable[[CaseContext], Awaitable[None]]


def _register(cid: str, title: str, *, group: str, purpose: str, requirement: str, steps: tuple[str, ...],
              needs: tuple[str, ...] = NEEDS) -> Callable[[Run], Run]:
    REGISTERED.append(cid)
    return case(cid, f"ISO 15118-2 over TLS: {title}", group=group, purpose=purpose, requirement=requirement, steps=steps,
                needs=needs, tags=TAGS, timeout=60.0)


def _code(msg: object) -> str:
    rc = getattr(body(msg), "response_code", None)
    return str(getattr(rc, "value", rc))


def _ok(msg: object) -> bool:
    return msg is not None and _code(msg).startswith("OK")


def _refused(ctx: CaseContext, run: PncRun, req: str, code: RC, requirement: str) -> None:
    """The answer to ``req`` carries ``code``; no answer counts only when the charger closed."""
    res = run.answer_to(req)
    if res is not None:
        ctx.check(requirement, _code(res) == code.value, f"{type(body(res)).__name__} {_code(res)} (expected {code.value})")
        return
    ctx.check(requirement, run.closed_by_sut,
              "no answer; the charger closed the connection" if run.closed_by_sut
              else f"no answer and the connection stayed open (silence is not a refusal): {run.ended}")


def _authorized(ctx: CaseContext, run: PncRun) -> None:
    """Precondition of the PnC cases: PaymentDetails answered with a GenChallenge."""
    res = run.answer_to("PaymentDetailsReq")
    ctx.precondition(_ok(res), f"PaymentDetailsReq answered {_code(res) if res is not None else 'not at all'} ({run.ended})",
                     "precondition: the charger accepts the contract chain in PaymentDetailsReq")


# =============================================================================== TLS


@_register("TC_SECC_ISO2_TLS_001", "the TLS 1.2 handshake uses the -2 suite and a P-256 chain", group="TLS",
           purpose="A vehicle that offers TLS 1.2 and 1.3 and every library cipher suite gets TLS 1.2 with "
                   "ECDHE-ECDSA-AES128-SHA256 and a P-256 / ECDSA-SHA256 chain to the V2G root, and -2 is negotiated on it.",
           requirement="DIN/-2 digest §3.11 (P-256, ECDSA-SHA256), §3.12 (TLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256)",
           needs=("tls", "iso2"),
           steps=("TLS handshake offering TLS 1.2-1.3, default suites, trusting the V2G root",
                  "expect TLSv1.2, ECDHE-ECDSA-AES128-SHA256, every certificate of the chain P-256",
                  "supportedAppProtocolReq -2 on it: expect OK"))
async def tls_1(ctx: CaseContext) -> None:
    ctx.feature("iso2")
    wide = dataclasses.replace(ISO2, name="tester-wide", maximum_version=ssl.TLSVersion.TLSv1_3, tls12_ciphers=None,
                               sigalgs=None, groups=None, x509_strict=False, leaf_purpose=False)
    conn = await connect_tls12(ctx, client_context([Path(pki_of(ctx)) / "certs" / "v2gRootCACert.pem"], profile=wide))
    obj = conn.ssl_object
    assert obj is not None
    info = connection_info(obj)
    ctx.evidence.note(f"handshake: {info.as_dict()}")
    ctx.check("digest §3.12: TLS 1.2", info.version == "TLSv1.2", f"negotiated {info.version}")
    ctx.check("digest §3.12: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", info.cipher == "ECDHE-ECDSA-AES128-SHA256",
              f"cipher {info.cipher}")
    from iso15118.security.algorithms import algorithm_of_key

    chain = peer_chain(obj)
    algs = [algorithm_of_key(c.public_key()) for c in chain]
    ctx.check("digest §3.11: the charger's chain is P-256 (ECDSA-SHA256)", bool(chain) and set(algs) == {"secp256r1"}
              and all(c.signature_hash_algorithm is not None and c.signature_hash_algorithm.name == "sha256" for c in chain),
              f"{len(chain)} certificates: {algs}")
    req = m.SupportedAppProtocolReq(app_protocol=[m.AppProtocol(protocol_namespace=NS_ISO2, version_number_major=2,
                                                                version_number_minor=0, schema_id=1, priority=1)])
    await conn.send(int(PayloadType.SAP), m.encode(req))
    frame = await conn.recv(timeout=4.0)
    res = m.decode(frame.payload, "sap")
    ctx.check("digest §1.3: -2 is negotiated over the TLS 1.2 connection",
              isinstance(res, m.SupportedAppProtocolRes) and res.response_code.value.startswith("OK") and res.schema_id == 1,
              f"{type(res).__name__} {getattr(getattr(res, 'response_code', None), 'value', '?')}")


# =============================================================================== PnC


@_register("TC_SECC_ISO2_PnC_001", "PaymentDetailsReq gets a GenChallenge; AuthorizationReq signed over it is accepted",
           group="PnC",
           purpose="The charger answers PaymentDetailsReq (contract chain) with OK and a 16-byte GenChallenge, accepts the "
                   "AuthorizationReq signed with the contract key over that challenge, and the session charges to SessionStop.",
           requirement="DIN/-2 digest §3.13 (AuthorizationReq signed by the contract key, GenChallenge of PaymentDetailsRes)",
           steps=("-2 PnC session over TLS 1.2 with the PKI's contract", "expect PaymentDetailsRes OK, GenChallenge 16 bytes",
                  "expect AuthorizationRes OK (Finished)", "expect SessionStopRes OK"))
async def pnc_1(ctx: CaseContext) -> None:
    run = await pnc_session(ctx, loops=1)
    _authorized(ctx, run)
    pd = body(run.answer_to("PaymentDetailsReq"))
    challenge = bytes(pd.gen_challenge or b"")
    ctx.check("digest §3.13: PaymentDetailsRes carries a 16-byte GenChallenge", len(challenge) == 16 and any(challenge),
              f"GenChallenge {challenge.hex() or 'missing'}")
    signed = run.sent("AuthorizationReq")
    ctx.check("the tester signed its AuthorizationReq over that GenChallenge",
              bool(signed) and body(signed[0]).gen_challenge == challenge and signed[0].header.signature is not None,
              "signed AuthorizationReq sent" if signed else "no AuthorizationReq sent")
    auth = run.got("AuthorizationRes")
    ctx.check("digest §3.13: the signed AuthorizationReq is accepted", bool(auth) and all(_ok(a) for a in auth)
              and str(getattr(body(auth[-1]).evse_processing, "value", "")) == "Finished",
              ", ".join(f"{_code(a)} {getattr(body(a).evse_processing, 'value', '')}" for a in auth) or "no AuthorizationRes")
    stop = run.got("SessionStopRes")
    ctx.check("the session charges to SessionStop", bool(stop) and _ok(stop[-1]), f"{run.ended}")


@_register("TC_SECC_ISO2_PnC_002", "an AuthorizationReq with a bad signature is refused (FAILED_SignatureError)",
           group="PnC",
           purpose="The tester flips one bit of the AuthorizationReq's SignatureValue: the charger answers "
                   "FAILED_SignatureError (or closes); it never authorizes.",
           requirement="DIN/-2 digest §3.13 (signature over AuthorizationReq verified with the contract certificate)",
           steps=("-2 PnC session over TLS 1.2 up to AuthorizationReq", "send it with a broken SignatureValue",
                  "expect FAILED_SignatureError"))
async def pnc_2(ctx: CaseContext) -> None:
    def out(msg: m2.V2GMessage) -> m2.V2GMessage:
        return broken_signature(msg) if isinstance(body(msg), m2.AuthorizationReq) else msg

    run = await pnc_session(ctx, out=out)
    _authorized(ctx, run)
    _refused(ctx, run, "AuthorizationReq", RC.FAILED_SIGNATURE_ERROR,
             "digest §3.13: a bad AuthorizationReq signature is refused with FAILED_SignatureError")


@_register("TC_SECC_ISO2_PnC_003", "an AuthorizationReq signed over another GenChallenge is refused (FAILED_ChallengeInvalid)",
           group="PnC",
           purpose="The tester vehicle is shown another GenChallenge than the charger sent and signs it correctly: the "
                   "charger answers FAILED_ChallengeInvalid (or closes).",
           requirement="DIN/-2 digest §3.13 (the signed GenChallenge must be the one of PaymentDetailsRes)",
           steps=("-2 PnC session over TLS 1.2", "the tester signs AuthorizationReq over a GenChallenge with every bit inverted",
                  "expect FAILED_ChallengeInvalid"))
async def pnc_3(ctx: CaseContext) -> None:
    def into(msg: m2.V2GMessage) -> m2.V2GMessage:
        b = body(msg)
        if not isinstance(b, m2.PaymentDetailsRes) or not b.gen_challenge:
            return msg
        return rebuild(msg, dataclasses.replace(b, gen_challenge=bytes(x ^ 0xFF for x in b.gen_challenge)))

    run = await pnc_session(ctx, into=into)
    _authorized(ctx, run)
    _refused(ctx, run, "AuthorizationReq", RC.FAILED_CHALLENGE_INVALID,
             "digest §3.13: a signature over another GenChallenge is refused with FAILED_ChallengeInvalid")


@_register("TC_SECC_ISO2_PnC_004", "CertificateInstallationRes is signed by the SA provisioning chain and verifies",
           group="PnC",
           purpose="A vehicle without a contract asks CertificateInstallation: the answer is OK, its SAProvisioningCertificateChain "
                   "leads to the V2G root, its signature over the four delivered elements verifies with the chain's leaf, "
                   "and the installed contract then authorizes.",
           requirement="DIN/-2 digest §3.13 (ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey, "
                       "eMAID signed by the CPS leaf; SAProvisioningCertificateChain -> V2G root)",
           steps=("-2 PnC session over TLS 1.2 with only the OEM provisioning certificate", "CertificateInstallationReq",
                  "verify the chain and the signature of CertificateInstallationRes", "expect PaymentDetails and Authorization OK"))
async def pnc_4(ctx: CaseContext) -> None:
    from iso15118.security import pnc2
    from iso15118.security.algorithms import ISO2_POLICY
    from iso15118.security.validation import CertificateChainError, Purpose, verified_path
    from iso15118.security.xmldsig import SignatureError
    from iso15118.session.iso2.lab import credentials_from_pki
    from iso15118.session.iso2.pnc import chain_of

    run = await pnc_session(ctx, install=True, loops=1)
    res = run.answer_to("CertificateInstallationReq")
    ctx.require("digest §3.13: CertificateInstallationReq is answered OK", _ok(res),
                f"{_code(res) if res is not None else 'no answer'} ({run.ended})")
    assert res is not None
    b = body(res)
    cps = chain_of(b.sa_provisioning_certificate_chain)
    roots = list(credentials_from_pki(pki_of(ctx))[1].v2g_roots)
    try:
        verified_path(cps[0], cps[1:], roots, purpose=Purpose.CPS, policy=ISO2_POLICY)
        chain_ok, why = True, f"{len(cps)} certificates to the V2G root"
    except CertificateChainError as exc:
        chain_ok, why = False, str(exc)
    ctx.check("digest §3.11: SAProvisioningCertificateChain leads to the V2G root", chain_ok, why)
    ns = "urn:iso:15118:2:2013:MsgBody"
    parts = [(b.contract_signature_cert_chain, "ContractSignatureCertChain", ns),
             (b.contract_signature_encrypted_private_key, "ContractSignatureEncryptedPrivateKey", ns),
             (b.d_hpublickey, "DHpublickey", ns), (b.e_ma_id, "eMAID", ns)]
    sig = res.header.signature
    sig_ok, why = False, "no signature in the header"
    if sig is not None:
        try:
            pnc2.verify_elements(sig, parts, cps[0], required_ids=[str(p[0].id) for p in parts])
            sig_ok, why = True, "the signature over the four elements verifies with the CPS leaf"
        except SignatureError as exc:
            why = str(exc)
    ctx.check("digest §3.13: CertificateInstallationRes is signed by the SA provisioning leaf", sig_ok, why)
    auth = run.got("AuthorizationRes")
    ctx.check("the installed contract authorizes", _ok(run.answer_to("PaymentDetailsReq")) and bool(auth) and _ok(auth[-1]),
              f"PaymentDetailsRes {_code(run.answer_to('PaymentDetailsReq'))}; AuthorizationRes "
              f"{_code(auth[-1]) if auth else 'none'} ({run.ended})")


@_register("TC_SECC_ISO2_PnC_005", "MeteringReceipt is requested and the signed receipt accepted", group="PnC",
           needs=(*NEEDS, "iso2_receipt"),
           purpose="A charger that asks for metering receipts (PICS iso2_receipt) sets ReceiptRequired with MeterInfo in a "
                   "charge-loop answer of a PnC session, and accepts the MeteringReceiptReq the vehicle signs over it.",
           requirement="DIN/-2 digest §3.12 (MeteringReceipt needs TLS), §3.13 (MeteringReceiptReq signed by the contract key)",
           steps=("-2 PnC session over TLS 1.2, 4 charge-loop cycles", "expect ReceiptRequired=true with MeterInfo",
                  "expect MeteringReceiptRes OK to the signed MeteringReceiptReq"))
async def pnc_5(ctx: CaseContext) -> None:
    run = await pnc_session(ctx, loops=4)
    _authorized(ctx, run)
    loop = run.got("ChargingStatusRes") + run.got("CurrentDemandRes")
    asked = [r for r in loop if getattr(body(r), "receipt_required", False)]
    ctx.check("digest §3.12: the charger asks for a MeteringReceipt (ReceiptRequired with MeterInfo)",
              bool(asked) and body(asked[0]).meter_info is not None,
              f"{len(asked)} of {len(loop)} charge-loop answers ask for a receipt")
    sent = run.sent("MeteringReceiptReq")
    ctx.require("the tester signed a MeteringReceiptReq", bool(sent) and sent[0].header.signature is not None,
                f"{len(sent)} MeteringReceiptReq sent")
    res = run.answer_to("MeteringReceiptReq")
    ctx.check("digest §3.13: the signed MeteringReceiptReq is accepted", _ok(res),
              f"{_code(res) if res is not None else 'no answer'} ({run.ended})")


# =============================================================================== the vehicle under test


def _contract_of(run: PncRun) -> Any:
    """The contract certificate the vehicle presented in PaymentDetailsReq (None: none)."""
    from iso15118.session.iso2.pnc import chain_of

    req = run.got("PaymentDetailsReq")
    if not req:
        return None
    chain = chain_of(body(req[0]).contract_signature_cert_chain)
    return chain[0] if chain else None


@_register("TC_EVCC_ISO2_PnC_001", "the vehicle signs AuthorizationReq over the GenChallenge it was given", group="PnC",
           purpose="After PaymentDetailsRes with a GenChallenge the vehicle sends AuthorizationReq carrying that challenge, "
                   "signed (ECDSA-SHA256) with the key of the contract certificate it presented.",
           requirement="DIN/-2 digest §3.13 (AuthorizationReq incl. GenChallenge, signed by the contract leaf key)",
           steps=("tester -2 PnC charger on TLS 1.2", "PaymentDetailsRes OK with a fresh GenChallenge",
                  "verify the AuthorizationReq's GenChallenge and signature with the contract certificate of PaymentDetailsReq"))
async def ev_pnc_1(ctx: CaseContext) -> None:
    from iso15118.security import pnc2
    from iso15118.security.xmldsig import SignatureError

    run = await run_iso2_pnc_ev(ctx)
    given = [bytes(body(r).gen_challenge or b"") for r in run.sent("PaymentDetailsRes") if _ok(r)]
    cert = _contract_of(run)
    ctx.precondition(bool(given) and cert is not None, f"PaymentDetails exchanged: {len(given)} GenChallenge(s) ({run.ended})",
                     "precondition: the vehicle presents a contract in PaymentDetailsReq (PnC)")
    auth = run.got("AuthorizationReq")
    ctx.require("digest §3.13: the vehicle sends AuthorizationReq after PaymentDetailsRes", bool(auth), f"{run.ended}")
    try:
        pnc2.verify_authorization_req(auth[0], cert, given[-1])
        ok, why = True, "GenChallenge echoed, signature verifies with the contract certificate"
    except pnc2.ChallengeMismatch as exc:
        ok, why = False, str(exc)
    except SignatureError as exc:
        ok, why = False, f"signature: {exc}"
    ctx.check("digest §3.13: AuthorizationReq carries the GenChallenge, signed by the contract key", ok, why)


@_register("TC_EVCC_ISO2_PnC_002", "the vehicle sends a signed MeteringReceiptReq when ReceiptRequired", group="PnC",
           purpose="A charge-loop answer sets ReceiptRequired with MeterInfo: the vehicle's next request is MeteringReceiptReq "
                   "with that MeterInfo, signed with its contract key.",
           requirement="DIN/-2 digest §3.12 (MeteringReceipt over TLS), §3.13 (MeteringReceiptReq signed by the contract key)",
           steps=("tester -2 PnC charger on TLS 1.2 that asks for a receipt in its first charge-loop answer",
                  "expect MeteringReceiptReq next, MeterInfo as asked, signature verifying with the contract certificate"))
async def ev_pnc_2(ctx: CaseContext) -> None:
    from iso15118.security import pnc2
    from iso15118.security.xmldsig import SignatureError

    run = await run_iso2_pnc_ev(ctx, receipt_after_loops=1)
    asked = [s for s in run.seen if s.direction == "tx" and getattr(body(s.msg), "receipt_required", False)]
    cert = _contract_of(run)
    ctx.precondition(bool(asked) and cert is not None, f"{len(asked)} answers asked for a receipt ({run.ended})",
                     "precondition: the PnC session reaches the charge loop")
    after = [s for s in run.seen if s.direction == "rx" and s.at >= asked[0].at]
    nxt = after[0] if after else None
    ctx.require("digest §3.12: the next request after ReceiptRequired is MeteringReceiptReq",
                nxt is not None and nxt.name == "MeteringReceiptReq", f"next: {nxt.name if nxt else 'nothing'} ({run.ended})")
    assert nxt is not None
    req = body(nxt.msg)
    ctx.check("the receipt carries the MeterInfo asked for", req.meter_info == body(asked[0].msg).meter_info,
              f"{req.meter_info}")
    sig = nxt.msg.header.signature
    try:
        if sig is None:
            raise ValueError("no signature")
        pnc2.verify_elements(sig, [req], cert, required_ids=[str(req.id)])
        ok, why = True, "signature verifies with the contract certificate"
    except (SignatureError, ValueError) as exc:
        ok, why = False, str(exc)
    ctx.check("digest §3.13: MeteringReceiptReq is signed by the contract key", ok, why)


@_register("TC_EVCC_ISO2_PnC_003", "the vehicle refuses a CertificateInstallationRes whose signature is bad", group="PnC",
           purpose="The tester charger flips one bit of its CertificateInstallationRes signature: the vehicle must not use the "
                   "delivered contract (no PaymentDetailsReq with it) and must end the session (SessionStopReq or a close).",
           requirement="DIN/-2 digest §3.13 (the delivered contract elements are signed by the CPS leaf; the EV verifies)",
           steps=("tester -2 PnC charger on TLS 1.2", "CertificateInstallationRes with a broken SignatureValue",
                  "expect no PaymentDetailsReq and SessionStopReq or a close, within 20 s"))
async def ev_pnc_3(ctx: CaseContext) -> None:
    def out(msg: m2.V2GMessage) -> m2.V2GMessage:
        return broken_signature(msg) if isinstance(body(msg), m2.CertificateInstallationRes) else msg

    run = await run_iso2_pnc_ev(ctx, out=out, timeout=20.0)
    sent = [s for s in run.seen if s.direction == "tx" and s.name == "CertificateInstallationRes"]
    if not sent:
        ctx.not_applicable("the vehicle asked for no CertificateInstallation (it holds a contract)")
    later = [s.name for s in run.seen if s.direction == "rx" and s.at >= sent[0].at]
    ctx.check("digest §3.13: the vehicle does not use a contract whose delivery signature fails",
              not ({"PaymentDetailsReq", "AuthorizationReq"} & set(later)), f"requests after it: {later or 'none'}")
    ctx.check("the vehicle ends the session (SessionStopReq or a close; silence is not a refusal)",
              run.closed_by_sut or "SessionStopReq" in later,
              "it closed the connection" if run.closed_by_sut else f"requests after it: {later}; {run.ended}")
