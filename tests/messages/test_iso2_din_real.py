"""Typed ISO 15118-2 and DIN SPEC 70121 classes against what real vehicles and chargers sent.

Every -2 / DIN V2GTP payload of the 27 real recordings in ``fixtures/`` (captures, vehicles,
slac) that the generic codec reads is read into the typed classes (``iso15118.messages.iso2`` /
``.din``) and written back: the bytes must be the recorded ones, bit for bit.  The payloads are
what the cars' and chargers' own EXI encoders produced, not ours.  The oracle corpus documents
(``fixtures/exi/iso2``, ``fixtures/exi/din``, EXIficient's bytes) go the same way.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pytest

import iso15118.messages as M
from iso15118.capture.analyzer import analyze
from iso15118.exi import ExiDecodeError
from iso15118.exi.codec import get_codec
from iso15118.messages import din, iso2
from tests.proofs import REAL_PAYLOADS, record

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = sorted(p for d in ("captures", "vehicles", "slac") for p in (ROOT / "fixtures" / d).glob("*.pcap"))


@cache
def real_payloads() -> dict[tuple[str, bytes], str]:
    """(schema, payload) -> a recording it came from, for every distinct -2 / DIN payload."""
    out: dict[tuple[str, bytes], str] = {}
    for path in RECORDINGS:
        for ev in analyze(path):
            if ev.kind == "v2g" and ev.schema in ("iso2", "din") and ev.payload:
                out.setdefault((ev.schema, bytes(ev.payload)), path.name)
    return out


def test_the_recordings_hold_thousands_of_messages() -> None:
    assert len(RECORDINGS) == 27
    by_schema = Counter(k for k, _ in real_payloads())
    assert by_schema["iso2"] > 500 and by_schema["din"] > 500, by_schema


@pytest.mark.parametrize("key", ["iso2", "din"])
def test_every_real_payload_reads_typed_and_writes_back_bit_for_bit(key: str) -> None:
    scope = iso2 if key == "iso2" else din
    names: Counter[str] = Counter()
    unreadable = []
    for (schema, payload), where in real_payloads().items():
        if schema != key:
            continue
        try:
            get_codec(key).decode(payload)
        except ExiDecodeError:
            unreadable.append(where)  # not a document of the schema at all (left to the decoder's tests)
            continue
        msg = scope.decode(payload)
        assert isinstance(msg, scope.V2GMessage)
        names[type(msg.body.body_element).__name__] += 1
        assert scope.encode(msg) == payload, (where, type(msg.body.body_element).__name__)
        assert M.decode(payload, key) == msg  # the package-level entry point finds the scope
    assert len(unreadable) <= 5, unreadable
    record(REAL_PAYLOADS, sum(names.values()))
    # the whole sequence of each protocol is there, both directions
    wanted = {"SessionSetupReq", "SessionSetupRes", "ChargeParameterDiscoveryReq", "PowerDeliveryReq", "CurrentDemandReq",
              "CurrentDemandRes", "CableCheckReq", "PreChargeRes", "SessionStopRes"}
    if key == "iso2":
        wanted |= {"ChargingStatusReq", "ChargingStatusRes", "PaymentServiceSelectionReq", "AuthorizationReq"}
    else:
        wanted |= {"ServicePaymentSelectionReq", "ContractAuthenticationReq", "WeldingDetectionReq"}
    assert wanted <= set(names), sorted(wanted - set(names))


@pytest.mark.parametrize("key", ["iso2", "din"])
def test_the_oracle_corpus_reads_typed_and_writes_back(key: str) -> None:
    docs = sorted((ROOT / "fixtures" / "exi" / key).glob("*.exi"))
    assert docs
    for p in docs:
        data = p.read_bytes()
        msg = M.decode(data, key)
        assert M.encode(msg) == data, p.name


def test_the_scopes_keep_their_own_names() -> None:
    assert iso2.SessionSetupReq is not din.SessionSetupReq is not M.SessionSetupReq
    assert M.message_class("CurrentDemandReq", "din") is din.CurrentDemandReq
    assert M.message_class("SessionStopReq", "din") is din.SessionStopReq  # DIN's SessionStopType
    assert iso2.ResponseCode.FAILED_SEQUENCE_ERROR.value == "FAILED_SequenceError"
    assert din.ResponseCode("FAILED_SequenceError") is din.ResponseCode.FAILED_SEQUENCE_ERROR
    with pytest.raises(M.MessageValidationError, match="session_id"):
        iso2.MessageHeader(session_id=bytes(9))
    with pytest.raises(M.MessageDecodeError):
        iso2.from_tree(get_codec("din").decode(next(k[1] for k in real_payloads() if k[0] == "din")))
