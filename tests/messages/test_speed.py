"""A loose guard on the typed layer's cost (the timing script prints the real numbers).

``from_tree`` of a large DC_ChargeLoopReq must stay a small fraction of the raw EXI decode, so
that typed decoding is well within 1.5x of raw decoding.  Minimum-of-N timings with the garbage
collector off keep this stable on a busy machine; the bound leaves a wide margin.
"""

from __future__ import annotations

import gc
import timeit

import pytest

from tests.messages.timing_dc_chargeloop import sample

try:
    from iso15118.exi.codec import get_codec
except ImportError as exc:  # pragma: no cover
    get_codec = None
    MISSING = f"EXI codec not importable: {exc}"
else:
    MISSING = ""


@pytest.mark.skipif(bool(MISSING), reason=MISSING or "codec present")
def test_from_tree_is_cheap_next_to_raw_decode() -> None:
    from iso15118.messages import DCChargeLoopReq

    msg = sample()
    c = get_codec("dc")
    data = c.encode(msg.to_tree())
    tree = c.decode(data)
    gc.disable()
    try:
        raw = typed = float("inf")
        for _ in range(3):
            raw = min(raw, min(timeit.repeat(lambda: c.decode(data), number=50, repeat=5)) / 50)
            typed = min(typed, min(timeit.repeat(lambda: DCChargeLoopReq.from_tree(tree), number=50, repeat=5)) / 50)
    finally:
        gc.enable()
    assert typed < 0.5 * raw, f"from_tree {typed * 1e6:.1f} us vs raw decode {raw * 1e6:.1f} us"
