"""Timing script (not a test): DC_ChargeLoopReq from_tree / to_tree vs the raw codec.

    .venv/bin/python tests/messages/timing_dc_chargeloop.py
"""

from __future__ import annotations

import gc
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from iso15118.messages import (  # noqa: E402
    BPTDynamicDCCLReqControlMode,
    DCChargeLoopReq,
    DisplayParameters,
    MessageHeader,
    RationalNumber,
)


def sample() -> DCChargeLoopReq:
    """A BPT dynamic DC_ChargeLoopReq with display parameters (a large, realistic one)."""
    r = RationalNumber.from_decimal
    return DCChargeLoopReq(
        header=MessageHeader(session_id=bytes.fromhex("0102030405060708"), time_stamp=1_700_000_000),
        display_parameters=DisplayParameters(present_soc=55, target_soc=80, charging_complete=False),
        meter_info_requested=False,
        ev_present_voltage=r("398.5"),
        control_mode=BPTDynamicDCCLReqControlMode(
            departure_time=7200,
            ev_target_energy_request=r("40000"),
            ev_maximum_energy_request=r("60000"),
            ev_minimum_energy_request=r("-20000"),
            ev_maximum_charge_power=r("150000"),
            ev_minimum_charge_power=r("0"),
            ev_maximum_charge_current=r("400"),
            ev_maximum_voltage=r("450"),
            ev_minimum_voltage=r("300"),
            ev_maximum_discharge_power=r("11000"),
            ev_minimum_discharge_power=r("0"),
            ev_maximum_discharge_current=r("30"),
        ),
    )


def best_us(fn, number: int, rounds: int = 7) -> float:
    """Minimum time per call in microseconds (the least disturbed run on a busy machine)."""
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    msg = sample()
    tree = msg.to_tree()
    gc.disable()  # allocation-triggered collections otherwise land on random samples
    try:
        to_us = best_us(msg.to_tree, 5000)
        from_us = best_us(lambda: DCChargeLoopReq.from_tree(tree), 5000)
        print(f"DC_ChargeLoopReq to_tree:   {to_us:7.2f} us")
        print(f"DC_ChargeLoopReq from_tree: {from_us:7.2f} us")
        try:
            from iso15118.exi.codec import get_codec
        except ImportError as exc:  # codec not there yet
            print(f"codec not available ({exc}); skipping EXI timings")
            return
        c = get_codec("dc")
        data = c.encode(tree)
        raw = typed = enc = enc_typed = float("inf")
        for _ in range(5):  # interleave, so load changes hit both sides alike
            raw = min(raw, best_us(lambda: c.decode(data), 300, 3))
            typed = min(typed, best_us(lambda: DCChargeLoopReq.from_tree(c.decode(data)), 300, 3))
            enc = min(enc, best_us(lambda: c.encode(tree), 300, 3))
            enc_typed = min(enc_typed, best_us(lambda: c.encode(msg.to_tree()), 300, 3))
    finally:
        gc.enable()
    print(f"EXI ({len(data)} bytes) raw decode:          {raw:7.2f} us")
    print(f"EXI typed decode (decode + from_tree): {typed:7.2f} us  ratio {typed / raw:.3f}")
    print(f"EXI raw encode:                        {enc:7.2f} us")
    print(f"EXI typed encode (to_tree + encode):   {enc_typed:7.2f} us  ratio {enc_typed / enc:.3f}")


if __name__ == "__main__":
    main()
