"""Session benchmark: N concurrent DC_BPT sessions over loopback against one SECC process.

    from iso15118.sim.bench import bench
    print(bench(n_sessions=200, loops_per_second=4, duration=20))

The SECC (``dc-bidi`` simulator, one :class:`SeccSession` per connection) runs in a child
process; all EVCCs share this process's event loop.  Each EV asks for ``loops_per_second``
charge loops per second (``loop_interval = 1 / loops_per_second``) for ``duration``
seconds.  Reported: completed charge-loop round trips per second, round-trip latency
percentiles (EVCC request written -> response decoded), sessions that passed / failed.
Speed is measured here, never asserted in tests.  On a 2-core machine both processes are
CPU-bound by EXI encode/decode, so the achieved rate tells how many sessions one SECC
process can carry at the requested cadence.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
from typing import Any

from iso15118.session import EnergyService, EvccConfig
from iso15118.session.events import Event, MessageReceived, SendMessage


def _serve(conn: Any) -> None:  # child process
    from iso15118.session.runner import start_secc
    from iso15118.sim import make_evse

    async def main() -> None:
        secc = await start_secc(lambda: make_evse("dc-bidi"), "::1", 0, None, linger=0.0)
        conn.send(secc.port)
        assert secc.server is not None
        await secc.server.serve_forever()

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


async def _run_clients(port: int, n: int, lps: float, duration: float, timeout_scale: float, ramp: float) -> dict[str, Any]:
    from iso15118.session.runner import run_evcc
    from iso15118.sim import make_ev

    rtts: list[float] = []
    loop_times: list[float] = []
    per_session: list[list[float]] = []

    def make_sink() -> Any:
        pending: dict[str, float] = {}
        mine: list[float] = []
        per_session.append(mine)

        def sink(side: str, now: float, ev: Event) -> None:
            if isinstance(ev, SendMessage) and ev.name == "DC_ChargeLoopReq":
                pending["t"] = now
            elif isinstance(ev, MessageReceived) and ev.name == "DC_ChargeLoopRes" and "t" in pending:
                rtts.append(now - pending.pop("t"))
                loop_times.append(now)
                mine.append(now)

        return sink

    async def one(i: int) -> Any:
        await asyncio.sleep(ramp * i / max(1, n))
        cfg = EvccConfig(
            service=EnergyService.DC_BPT,
            loop_interval=1.0 / lps,
            max_loops=max(1, int(duration * lps)),
            timeout_scale=timeout_scale,
        )
        try:
            return await run_evcc(make_ev("cybertruck-awd"), "::1", port, None, config=cfg, sink=make_sink())
        except Exception as exc:  # connection refused under overload etc.
            return exc

    t0 = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.monotonic() - t0
    ok = sum(1 for r in results if getattr(r, "ok", False))
    reasons: dict[str, int] = {}
    for r in results:
        if not getattr(r, "ok", False):
            key = getattr(r, "reason", repr(r))[:60]
            reasons[key] = reasons.get(key, 0) + 1
    span = (max(loop_times) - min(loop_times)) if len(loop_times) > 1 else float("nan")
    # the steady window: when every session is in its charge loop (skip ramp-up and tail)
    looping = [x for x in per_session if x]
    steady = float("nan")
    if looping:
        a, b = max(x[0] for x in looping), min(x[-1] for x in looping)
        if b > a:
            steady = sum(1 for t in loop_times if a <= t <= b) / (b - a)
    return {
        "sessions": n,
        "sessions_ok": ok,
        "sessions_failed": n - ok,
        "failure_reasons": reasons,
        "requested_loops_per_second": n * lps,
        "charge_loops": len(rtts),
        "loops_per_second": steady,
        "loops_per_second_overall": len(rtts) / span if span and span == span else 0.0,
        "rtt_p50_ms": 1000 * _pct(rtts, 50),
        "rtt_p99_ms": 1000 * _pct(rtts, 99),
        "rtt_max_ms": 1000 * max(rtts) if rtts else float("nan"),
        "rtt_mean_ms": 1000 * statistics.fmean(rtts) if rtts else float("nan"),
        "within_0_5_s": sum(1 for r in rtts if r <= 0.5) / len(rtts) if rtts else 0.0,
        "wall_s": wall,
    }


def bench(
    n_sessions: int = 200,
    loops_per_second: float = 4.0,
    duration: float = 20.0,
    *,
    timeout_scale: float = 20.0,
    ramp: float = 5.0,
) -> dict[str, Any]:
    """Run the benchmark; returns a dict of measurements (see module docstring).

    ``timeout_scale`` relaxes the EVCC's message timeouts so an overloaded run still yields
    latencies instead of aborted sessions; ``within_0_5_s`` is the share of loops that met the
    standard 0.5 s charge-loop timeout.  ``ramp`` spreads session starts over that many seconds.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("SECC process did not start")
        port = parent.recv()
        return asyncio.run(_run_clients(port, n_sessions, loops_per_second, duration, timeout_scale, ramp))
    finally:
        proc.terminate()
        proc.join(10)


if __name__ == "__main__":  # python -m iso15118.sim.bench [n] [loops/s] [duration]
    import json
    import sys

    argv = [float(a) for a in sys.argv[1:]]
    out = bench(int(argv[0]) if argv else 200, argv[1] if len(argv) > 1 else 4.0, argv[2] if len(argv) > 2 else 20.0)
    print(json.dumps(out, indent=2))
