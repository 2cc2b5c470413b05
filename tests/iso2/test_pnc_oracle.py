"""-2 Plug & Charge through the reference EXI codec (EXIficient).

:func:`pnc_corpus` is every -2 PnC message our in-memory sessions send (PaymentDetails, signed
Authorization with its header Signature, CertificateInstallation both ways, MeteringReceipt, the
charge loops with ReceiptRequired, the FAILED answers); ``test_oracle.py`` puts it through the
oracle with the rest of the -2 vocabulary.  Here: every element our sessions *sign* (digested as
an EXI fragment of the -2 grammar, eMAID under the relaxed element fragment grammar) must be the
bytes the oracle gives for the same XML fragment, and must read back as the same element.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from iso15118.exi.codec import get_codec
from iso15118.exi.tree import Element
from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.messages import iso2 as m2
from iso15118.security import xmldsig
from iso15118.security.pki import PkiProfile, create_pki
from iso15118.session.events import SendMessage
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig
from iso15118.session.iso2.lab import credentials_from_pki, secc_pnc2_from_pki
from iso15118.session.memory import run_pair
from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
from iso15118.sim import make_ev, make_evse
from tests.oracle import Job, Oracle, oracle  # noqa: F401  (session fixture)

from .helpers import wall

BODY = "urn:iso:15118:2:2013:MsgBody"


@cache
def _pnc_sessions() -> tuple[tuple[str, bytes], ...]:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="pnc2-oracle-"))
    root = create_pki(d / "pki", profile=PkiProfile.ISO2, password=b"pw").root
    contract, prov = credentials_from_pki(root)
    out: list[tuple[str, bytes]] = []
    for fam in (Family.AC, Family.DC):
        for creds, update in (({"contract": contract}, False), ({"provisioning": prov}, False),
                              ({"contract": contract, "provisioning": prov}, True)):
            ev = make_ev("cybertruck-awd", stop_after=3.0, **creds)
            evse = make_evse("dc-bidi" if fam is Family.DC else "wall-connector")
            e = EvccNegotiator(ev, protocols=(AppProtocol.ISO2,), clock=wall, tls=True,
                               configs={AppProtocol.ISO2: Iso2EvccConfig(family=fam, update_contract=update)})
            s = SeccNegotiator(evse, protocols=(AppProtocol.ISO2,), clock=wall, tls=True,
                               configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=secc_pnc2_from_pki(root))})
            tr = run_pair(e, s)
            assert tr.ended("secc").ok, tr.ended("secc")  # type: ignore[union-attr]
            out += [(ev_.name, ev_.payload) for _, _, ev_ in tr.entries  # type: ignore[attr-defined]
                    if isinstance(ev_, SendMessage) and not ev_.name.startswith("supported")]
    return tuple(out)


def pnc_corpus() -> dict[bytes, str]:
    """payload -> element name of every message of the in-memory -2 PnC sessions (AC, DC; with a
    contract, with CertificateInstallation, with CertificateUpdate)."""
    out: dict[bytes, str] = {}
    for name, payload in _pnc_sessions():
        out.setdefault(payload, name)
    return out


def _signed_fragments() -> list[tuple[str, Element]]:
    """Every element our PnC sessions signed, as the tree that was digested."""
    out: list[tuple[str, Element]] = []
    for name, payload in _pnc_sessions():
        msg = m2.decode(payload)
        if msg.header.signature is None:
            continue
        body = msg.body.body_element
        if isinstance(body, (m2.CertificateInstallationRes, m2.CertificateUpdateRes)):
            out += [(n, getattr(body, a).to_tree(n, BODY)) for a, n in (
                ("contract_signature_cert_chain", "ContractSignatureCertChain"),
                ("contract_signature_encrypted_private_key", "ContractSignatureEncryptedPrivateKey"),
                ("d_hpublickey", "DHpublickey"), ("e_ma_id", "eMAID"))]
        else:
            out.append((name, body.to_tree()))  # type: ignore[union-attr]
    return out


@pytest.mark.oracle
def test_every_signed_pnc_fragment_matches_the_oracle(oracle: Oracle) -> None:  # noqa: F811
    frags = _signed_fragments()
    names = {n for n, _ in frags}
    assert {"AuthorizationReq", "MeteringReceiptReq", "CertificateInstallationReq", "CertificateUpdateReq",
            "ContractSignatureCertChain",
            "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID"} <= names, names
    codec = get_codec("iso2")
    ours = [xmldsig.fragment_bytes(t, "iso2") for _, t in frags]
    xmls = [codec.tree_to_xml(t, fragment=True) for _, t in frags]
    results: list[Any] = oracle.run([Job.encode("iso2", x, fragment=True) for x in xmls]
                                    + [Job.decode("iso2", b, fragment=True) for b in ours])
    n = len(frags)
    for (name, _), mine, res in zip(frags, ours, results[:n]):
        assert res.unwrap() == mine, f"{name}: the oracle encodes the signed fragment to other bytes"
    for (name, tree), res in zip(frags, results[n:]):
        back = codec.xml_to_tree(res.unwrap(), fragment=True)
        back = back[0] if isinstance(back, list) else back
        assert codec.tree_to_xml(back, fragment=True) == codec.tree_to_xml(tree, fragment=True), name
    print(f"{n} signed -2 PnC fragments ({len(names)} kinds) byte-identical with EXIficient both ways")
