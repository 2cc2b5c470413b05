"""The committed ``iso15118/messages/_gen_*.py`` are what ``tools/gen_messages.py`` produces now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import iso15118.messages as M

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "iso15118" / "messages"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_messages", ROOT / "tools" / "gen_messages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_messages"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_generated_modules_are_not_stale(tmp_path: Path) -> None:
    gen = _load_generator()
    written = gen.generate(tmp_path)
    assert written
    stale = []
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = PKG / rel
        if not committed.exists() or committed.read_text(encoding="utf-8") != path.read_text(encoding="utf-8"):
            stale.append(str(rel))
    assert {p.relative_to(tmp_path).parts[0] for p in written if len(p.relative_to(tmp_path).parts) > 1} == {"iso2", "din"}
    extra = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("_gen_*.py") if not (tmp_path / p.relative_to(PKG)).exists())
    assert not stale and not extra, (
        f"stale generated modules {stale}, leftovers {extra}: run .venv/bin/python tools/gen_messages.py"
    )


def test_counts_and_public_surface() -> None:
    from iso15118.messages import _gen_index

    assert len(M.ALL_CLASSES) == _gen_index.CLASS_COUNT
    assert len(M.ALL_ENUMS) == _gen_index.ENUM_COUNT
    from iso15118.messages import din, iso2

    for scope in (iso2, din):
        assert (len(scope.ALL_CLASSES), len(scope.ALL_ENUMS)) == _gen_index.SCOPED_COUNTS[scope.SCHEMA_KEY]
        scoped = [c.__name__ for c in scope.ALL_CLASSES] + [e.__name__ for e in scope.ALL_ENUMS]
        assert len(scoped) == len(set(scoped)), "names are unique within a scope"
    names = [c.__name__ for c in M.ALL_CLASSES] + [e.__name__ for e in M.ALL_ENUMS]
    assert len(names) == len(set(names)), "public names must be unique across schemas"
    for name in names:
        assert getattr(M, name).__name__ == name
    # every message of every schema has a class that knows its element
    for key, element in [
        ("sap", "supportedAppProtocolReq"),
        ("common", "SessionSetupReq"),
        ("common", "CertificateInstallationRes"),
        ("ac", "AC_ChargeLoopReq"),
        ("dc", "DC_ChargeLoopRes"),
        ("acdp", "ACDP_DisconnectReq"),
        ("wpt", "WPT_FinePositioningSetupReq"),
        ("xmldsig", "SignedInfo"),
    ]:
        klass = M.message_class(element, key)
        assert klass.ELEMENT[1] == element
        assert M.schema_key_of(klass) == key
    assert M.message_class("DCChargeLoopReq", "dc") is M.DCChargeLoopReq
    assert M.message_class("SignedInfo", "common") is M.SignedInfo


def test_naming_examples() -> None:
    from iso15118.messages import (
        AppProtocolResponseCode,
        BPTDynamicACCLReqControlMode,
        DCChargeLoopReq,
        MessageHeader,
        ResponseCode,
        ScheduleExchangeReq,
        SessionSetupReq,
    )

    assert ResponseCode.FAILED_SEQUENCE_ERROR.value == "FAILED_SequenceError"
    assert ResponseCode.OK.value == "OK"
    assert list(ResponseCode)[34] is ResponseCode.FAILED_SEQUENCE_ERROR  # XSD order is kept
    assert AppProtocolResponseCode.FAILED_NO_NEGOTIATION.value == "Failed_NoNegotiation"
    assert [f.attr for f in MessageHeader.FIELDS] == ["session_id", "time_stamp", "signature"]
    assert [f.attr for f in SessionSetupReq.FIELDS] == ["header", "evcc_id"]
    assert "ev_maximum_charge_power" in {f.attr for f in BPTDynamicACCLReqControlMode.FIELDS}
    spec = {f.attr: f for f in DCChargeLoopReq.FIELDS}["control_mode"]
    assert spec.kind == "union"
    assert [a[1] for a in spec.alts] == [
        "Scheduled_DC_CLReqControlMode",
        "BPT_Scheduled_DC_CLReqControlMode",
        "Dynamic_DC_CLReqControlMode",
        "BPT_Dynamic_DC_CLReqControlMode",
    ]
    spec = {f.attr: f for f in ScheduleExchangeReq.FIELDS}["control_mode"]
    assert [a[1] for a in spec.alts] == ["Dynamic_SEReqControlMode", "Scheduled_SEReqControlMode"]
