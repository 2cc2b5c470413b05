"""bench() runs and reports the documented keys (speed itself is never asserted)."""

from __future__ import annotations

from iso15118.security.bench import bench


def test_bench_shape() -> None:
    result = bench(n_sign=3, n_handshake=2)
    assert set(result["sign_us"]) == set(result["verify_us"]) == {"ecdsa_p521_sha512", "ed448"}
    assert set(result["handshake_ms"]) == {"secp521r1", "ed448"}
    assert all(v > 0 for v in result["handshake_ms"].values())
    assert result["handshake"]["ed448"]["version"] == "TLSv1.3"
