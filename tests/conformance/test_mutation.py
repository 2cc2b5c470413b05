"""The tester proven by mutation: every defective charger and vehicle of conformance.faults is
caught by at least one case, every case fails against at least one defect (mutation score
100 %), and a dead, a silent and a random-EXI charger pass no case of the whole SECC catalogue
and exit non-zero.  The defect x case matrix is written as JSON, CSV and HTML
(``ISO15118_ARTIFACTS`` or a temp dir) and its wall time reported."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from conformance.faults import EVCC_DEFECTS, SECC_DEFECTS, ZERO_PASS
from conformance.mutation import run_matrix


def test_mutation_matrix() -> None:
    assert len(SECC_DEFECTS) >= 25 and len(EVCC_DEFECTS) >= 10
    out = Path(os.environ.get("ISO15118_ARTIFACTS") or tempfile.mkdtemp(prefix="mutation-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    mx = run_matrix(jobs=2)
    wall = time.monotonic() - t0
    mx.write(out / "mutation-matrix.json", out / "mutation-matrix.csv", out / "mutation-matrix.html")
    s = mx.summary()
    print(f"\nmutation matrix ({wall:.0f} s wall, artifacts in {out}):\n{json.dumps(s, indent=1)}")
    for r in mx.rows:
        print(f"  {r.role} {r.defect:32} run {len(r.verdicts):3} fail {len(r.killed):3} pass {len(r.passed):3} "
              f"exit {r.exit_status} {r.seconds:5.1f} s {'caught' if mx.caught(r) else 'NOT CAUGHT'}")
    for name in ZERO_PASS:
        row = next(r for r in mx.rows if r.defect == name)
        assert not row.passed and row.exit_status != 0, (name, sorted(row.passed))
        assert len(row.verdicts) >= len(mx.cases["SECC"]), name  # the whole catalogue
    assert all(mx.caught(r) for r in mx.rows), s
    assert s["SECC"]["survivors"] == [] and s["EVCC"]["survivors"] == [], s
    assert s["SECC"]["mutation_score_pct"] == 100.0 and s["EVCC"]["mutation_score_pct"] == 100.0
