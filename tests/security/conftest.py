"""Session-wide lab PKIs for the security tests (generated once, ~0.1 s each)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from iso15118.security.pki import PKI, Algorithm, create_pki, load_pki


def _ipv6_reason() -> str | None:
    if not socket.has_ipv6:
        return "Python built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind ::1: {exc}"
    return None


IPV6_REASON = _ipv6_reason()
needs_ipv6 = pytest.mark.skipif(IPV6_REASON is not None, reason=f"IPv6 loopback: {IPV6_REASON}")


@pytest.fixture(scope="session")
def pki_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="session")
def pki_p521(pki_root: Path) -> PKI:
    return load_pki(create_pki(pki_root / "secp521r1", Algorithm.SECP521R1).root)


@pytest.fixture(scope="session")
def pki_ed448(pki_root: Path) -> PKI:
    return load_pki(create_pki(pki_root / "ed448", Algorithm.ED448).root)


@pytest.fixture(scope="session")
def pki_other(pki_root: Path) -> PKI:
    """An unrelated secp521r1 PKI with the same names (a 'wrong CA')."""
    return load_pki(create_pki(pki_root / "other", Algorithm.SECP521R1).root)


@pytest.fixture(scope="session")
def pki_p256(pki_root: Path) -> PKI:
    """Same hierarchy on P-256/SHA-256: the -2 algorithms, not allowed for -20."""
    return load_pki(create_pki(pki_root / "p256", Algorithm.SECP256R1).root)


@pytest.fixture(params=["secp521r1", "ed448"])
def pki(request: pytest.FixtureRequest) -> PKI:
    """Each -20 algorithm in turn."""
    return request.getfixturevalue("pki_p521" if request.param == "secp521r1" else "pki_ed448")
