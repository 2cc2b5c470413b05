"""-2 over real sockets (loopback TCP) through the runner: pause on one connection, resume on the next."""

from __future__ import annotations

import asyncio

import pytest

from iso15118.facts.namespaces import AppProtocol, Family
from iso15118.messages import iso2 as m2
from iso15118.session.events import MessageReceived
from iso15118.session.iso2 import Iso2EvccConfig, Iso2SeccConfig
from iso15118.session.runner import run_evcc, start_secc
from iso15118.sim import make_ev, make_evse

pytestmark = pytest.mark.timeout(120)


def test_pause_then_resume_on_a_new_connection() -> None:
    async def scenario() -> None:
        evse = make_evse("wall-connector")
        srv = await start_secc(lambda: evse, "::1", 0, None, linger=0.2, configs={AppProtocol.ISO2: Iso2SeccConfig()},
                               protocols=(AppProtocol.ISO2,))
        try:
            ev = make_ev("cybertruck-awd", pause_after=0.6)
            r1 = await run_evcc(ev, "::1", srv.port, None, configs={AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC)})
            assert r1.ok and r1.reason == "SessionStop Pause", r1.reason
            assert r1.paused_session_id is not None and len(r1.paused_session_id) == 8
            s1 = (await srv.wait_sessions(1, 10))[0]
            assert s1.ok and s1.reason == "SessionStop Pause"
            ev.pause_after, ev.stop_after = None, 0.1
            r2 = await run_evcc(ev, "::1", srv.port, None, configs={
                AppProtocol.ISO2: Iso2EvccConfig(family=Family.AC, resume_session_id=r1.paused_session_id, max_loops=2)},
                record_events=True)
            assert r2.ok and r2.reason == "SessionStop Terminate", r2.reason
            s2 = (await srv.wait_sessions(2, 10))[1]
            assert s2.ok
            # the second connection joined the paused session: OK_OldSessionJoined, the same SessionID
            setup = [e.message for _, e in r2.events if isinstance(e, MessageReceived) and e.name == "SessionSetupRes"]
            assert setup and setup[0].response_code is m2.ResponseCode.OK_OLD_SESSION_JOINED
        finally:
            srv.close()

    asyncio.run(scenario())
