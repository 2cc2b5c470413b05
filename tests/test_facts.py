"""One home for each protocol fact: the session, the tester and the capture decoder read the
same values from ``iso15118.facts``, and judge the same late answer the same way."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

import conformance.tester as tester
import iso15118.capture.limits as limits
import iso15118.security.pnc as pnc
import iso15118.session.evcc as evcc_mod
import iso15118.session.secc as secc_mod
import iso15118.session.services as services
import iso15118.transport.v2gtp as v2gtp
from iso15118 import messages as m
from iso15118.capture.analyzer import CaptureDecoder
from iso15118.capture.pcapwriter import PcapWriter, TcpFlowWriter
from iso15118.facts import codes, namespaces, payload, timing
from iso15118.session import EvccConfig, EvccSession, SeccConfig, SeccSession, rules
from iso15118.session.events import SendMessage
from iso15118.session.memory import run_pair
from iso15118.session.runner import _account
from iso15118.sim import make_ev, make_evse


def test_the_modules_hold_the_facts_objects() -> None:
    """Identity, not copies: each user re-exports or reads the object of ``iso15118.facts``."""
    assert rules.Family is namespaces.Family and services.Family is namespaces.Family
    assert rules.TIMERS is timing.TIMERS and rules.LOOP_TIMER is timing.LOOP_TIMER
    assert services.NAMESPACE is namespaces.NAMESPACE and services.FAMILY_OF_NAMESPACE is namespaces.FAMILY_OF_NAMESPACE
    assert v2gtp.PayloadType is payload.PayloadType and v2gtp.NAMESPACE_TO_PAYLOAD_TYPE is payload.NAMESPACE_TO_PAYLOAD_TYPE
    assert v2gtp.schema_key_for is payload.schema_key_for
    for mod in (secc_mod, evcc_mod, tester):
        assert mod.SESSION_SCHEMAS is namespaces.SESSION_SCHEMAS, mod.__name__
    assert pnc.ResponseCode is m.ResponseCode is codes.ResponseCode
    assert pnc.RESPONSE_CODES is codes.RESPONSE_CODES and len(codes.RESPONSE_CODES) == 40
    assert limits.PROTOCOL_LABELS is namespaces.PROTOCOL_LABELS
    assert limits.loop_limit is timing.loop_limit and limits.protocol_for_namespace is namespaces.protocol_for_namespace


def test_session_and_decoder_use_the_same_timing() -> None:
    for name, spec in rules.MESSAGES.items():
        t = timing.message_timing("-20", name)
        assert (spec.evcc_timeout, spec.secc_performance) == (t.evcc_timeout, t.secc_performance), name
        assert limits.timing_limits("-20", name[:-3]) == (t.evcc_timeout, t.secc_performance, t.source), name
        assert spec.secc_performance < spec.evcc_timeout, name
        assert spec.payload_type is payload.payload_type_for_schema_key(spec.schema_key), name
        assert limits.schema_for(spec.payload_type, "-20", True) == spec.schema_key, name
    assert limits.SECC_SEQUENCE_TIMEOUT == rules.TIMERS.secc_sequence
    assert limits.COMMUNICATION_SETUP_TIMEOUT == rules.TIMERS.communication_setup
    assert limits.loop_limit("-20", "DC_PreCharge") == (rules.TIMERS.evcc_pre_charge, "V2G_EVCC_PreCharge_Timeout")
    assert limits.loop_limit("-20", "DC_CableCheck") == (rules.TIMERS.evcc_cable_check, "V2G_EVCC_CableCheck_Timeout")


def test_the_decided_charge_loop_performance_time() -> None:
    """docs/timing.md: 0.4 s, shorter than the EV's 0.5 s timeout (the decoder used to assume 1.5 s)."""
    assert rules.MESSAGES["DC_ChargeLoopReq"].secc_performance == 0.4
    assert limits.timing_limits("-20", "AC_ChargeLoop")[:2] == (0.5, 0.4)
    assert limits.timing_limits("iso2", "CurrentDemand")[:2] == (0.25, 0.025)


def _session_on_the_wire(tmp_path: Path, answer_delay: float) -> tuple[Path, list[SendMessage]]:
    """A real DC_BPT session of the two cores, written as a capture in which the charger answers
    each charge-loop request ``answer_delay`` seconds late (every other answer after 10 ms)."""
    ev, evse = make_ev("cybertruck-awd"), make_evse("dc-bidi")
    evcc = EvccSession(ev, EvccConfig(max_loops=4), clock=lambda: 0.0)
    secc = SeccSession(evse, SeccConfig(), clock=lambda: 0.0)
    tr = run_pair(evcc, secc, latency=0.001, max_time=300.0)
    sent = [(side, e) for _, side, e in tr.entries if isinstance(e, SendMessage)]
    path = tmp_path / "session.pcap"
    t = 1_800_000_000.0
    with PcapWriter(str(path)) as w:
        flow = TcpFlowWriter(w, (ipaddress.IPv6Address("fe80::2").packed, 50322), (ipaddress.IPv6Address("fe80::1").packed, 64109))
        flow.handshake(t)
        for side, e in sent:
            t += (answer_delay if e.name.endswith("ChargeLoopRes") else 0.01) if side == "secc" else 0.05
            flow.send(t, 0 if side == "evcc" else 1, v2gtp.encode_frame(e.payload_type, e.payload))
        flow.close(t + 0.01)
    return path, [e for side, e in sent if side == "secc"]


@pytest.mark.parametrize("delay, late", [(0.45, True), (0.35, False)])
def test_stack_and_decoder_judge_a_late_answer_alike(tmp_path: Path, delay: float, late: bool) -> None:
    """The runner's statistics and the capture decoder see the same answer times and agree on
    which answers broke V2G_SECC_Msg_Performance_Time."""
    path, responses = _session_on_the_wire(tmp_path, delay)
    loops = [e for e in responses if e.name == "DC_ChargeLoopRes"]
    assert len(loops) >= 4
    stats: dict[str, float] = {}
    for ev in responses:
        _account(stats, [ev], delay if ev.name.endswith("ChargeLoopRes") else 0.01)
    decoded = [e for e in CaptureDecoder(path).events() if e.kind == "timing" and e.fields.get("rule") == "performance_time"]
    assert {e.fields["limit_s"] for e in decoded} <= {rules.MESSAGES["DC_ChargeLoopReq"].secc_performance}
    assert stats.get("late_responses", 0) == len(decoded) == (len(loops) if late else 0)


def test_one_transport_rule() -> None:
    """Which protocol runs over which TLS version: the negotiation, the capture decoder and the
    tester read the one table of ``iso15118.facts.transport``."""
    import conformance.local as local
    import iso15118.capture.analyzer as analyzer
    import iso15118.session.negotiation as negotiation
    from iso15118.facts import transport

    assert negotiation.carries is analyzer.carries is transport.carries
    assert analyzer.TRANSPORTS is transport.TRANSPORTS
    assert local.served_protocols(None, True) == {"din": False, "iso2": True}
    assert local.served_protocols(None, False) == {"din": True, "iso2": True}
