"""Every -2 message our sessions send, through the reference EXI codec (EXIficient).

The in-memory sessions below cover the whole -2 vocabulary our cores speak (AC and DC, Ongoing
loops, renegotiation from both sides, pause, resume, StopCharging, the FAILED answers): each
distinct payload is decoded by the oracle (which must agree with the typed message we meant)
and the XML of the typed message is encoded by the oracle (which must give our bytes).
"""

from __future__ import annotations

from typing import Any

import pytest

from iso15118.exi.codec import get_codec
from iso15118.facts.namespaces import Family
from iso15118.messages import iso2 as m2
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig
from iso15118.session.iso2.parts import encode_message, minimal_response
from iso15118.session.iso2.rules import MESSAGES
from iso15118.session.memory import run_pair
from iso15118.session.secc import SessionStore
from iso15118.sim import make_ev, make_evse
from tests.iso2.helpers import pair, run, sent_payloads
from tests.oracle import Job, Oracle, oracle  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.oracle]


def _corpus() -> dict[bytes, str]:
    out: dict[bytes, str] = {}

    def add(tr: Any) -> None:
        for name, payload in sent_payloads(tr):
            out.setdefault(payload, name)

    for fam in (Family.AC, Family.DC):
        add(run(fam, evcc=Iso2EvccConfig(family=fam, service_detail=True))[0])
        add(run(fam, ev=make_ev("cybertruck-awd", renegotiate_after=0.6, stop_after=1.5),
                evse=make_evse("dc-bidi" if fam is Family.DC else "wall-connector", authorization_delay=0.3,
                               schedule_delay=0.3))[0])
        e, s = pair(fam, ev=make_ev("cybertruck-awd"))
        add(run_pair(e, s, hooks=[(1.0, lambda t, s=s: s.notify("ScheduleRenegotiation")),
                                  (2.0, lambda t, s=s: s.notify("Terminate"))]))
        store = SessionStore()
        ev = make_ev("cybertruck-awd", pause_after=0.5)
        tr, e, _ = run(fam, ev=ev, secc=Iso2SeccConfig(store=store))
        add(tr)
        ev.pause_after, ev.stop_after = None, 0.1
        add(run(fam, ev=ev, secc=Iso2SeccConfig(store=store),
                evcc=Iso2EvccConfig(family=fam, resume_session_id=e.paused_session_id))[0])
    # Plug & Charge over TLS: PaymentDetails, the signed AuthorizationReq and MeteringReceiptReq
    import tempfile
    from pathlib import Path

    from iso15118.facts.namespaces import AppProtocol
    from iso15118.security.pki import PkiProfile, create_pki, load_pki
    from iso15118.session.iso2.secc import Iso2SeccPnC
    from iso15118.session.negotiation import EvccNegotiator, SeccNegotiator
    from iso15118.session.pnc import contract_from_pki
    from tests.iso2.helpers import wall

    with tempfile.TemporaryDirectory() as tmp:
        create_pki(Path(tmp), "secp256r1", profile=PkiProfile.ISO2)
        contract, mo_root = contract_from_pki(Path(tmp)), load_pki(Path(tmp)).cert("moRootCA")
    for fam in (Family.AC, Family.DC):
        e = EvccNegotiator(make_ev("cybertruck-awd", stop_after=1.5), protocols=(AppProtocol.ISO2,), tls=True, clock=wall,
                           configs={AppProtocol.ISO2: Iso2EvccConfig(family=fam, contract=contract)})
        s = SeccNegotiator(make_evse("dc-bidi" if fam is Family.DC else "wall-connector"), protocols=(AppProtocol.ISO2,),
                           tls=True, clock=wall, configs={AppProtocol.ISO2: Iso2SeccConfig(pnc=Iso2SeccPnC(mo_roots=(mo_root,)))})
        add(run_pair(e, s))
        assert e.core.authorization == "PnC" and e.core.metering_receipts == 1
    # the FAILED answers, for every request type
    for req in MESSAGES:
        for fam in (Family.AC, Family.DC):
            body = minimal_response(req, m2.ResponseCode.FAILED_SEQUENCE_ERROR, fam)
            out.setdefault(encode_message(bytes(8), body), type(body).__name__)
    return out


def test_every_iso2_message_our_sessions_send_matches_the_oracle(oracle: Oracle) -> None:  # noqa: F811
    corpus = _corpus()
    names = set(corpus.values())
    # all 13 request types and their responses are in it
    assert {s.request for s in MESSAGES.values()} <= names and {s.response for s in MESSAGES.values()} <= names
    payloads = list(corpus)
    codec = get_codec("iso2")
    xmls = [codec.tree_to_xml(m2.decode(b).to_tree()) for b in payloads]
    results = oracle.run([Job.encode("iso2", x) for x in xmls] + [Job.decode("iso2", b) for b in payloads])
    n = len(payloads)
    for payload, result in zip(payloads, results[:n]):
        assert result.unwrap() == payload, f"{corpus[payload]}: the oracle encodes our message to other bytes"
    for payload, result in zip(payloads, results[n:]):
        theirs = m2.from_tree(codec.xml_to_tree(result.unwrap()))
        assert theirs == m2.decode(payload), f"{corpus[payload]}: the oracle reads something else"
    print(f"{n} distinct -2 payloads ({len(names)} message types) byte-identical with EXIficient both ways")
