"""Shared fixtures of the transport tests: loopback availability and free ports."""

from __future__ import annotations

import asyncio
import inspect
import socket

import pytest


def _can_bind(family: socket.AddressFamily, host: str, kind: socket.SocketKind) -> str | None:
    """None if ``host`` can be bound, else the reason."""
    if family == socket.AF_INET6 and not socket.has_ipv6:
        return "Python built without IPv6 (socket.has_ipv6 is False)"
    try:
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
    except OSError as exc:
        return f"cannot bind {host}: {exc}"
    return None


ASYNC_TEST_TIMEOUT = 30.0

IPV6_REASON = _can_bind(socket.AF_INET6, "::1", socket.SOCK_DGRAM)
if IPV6_REASON:
    print(f"transport tests: IPv6 loopback unavailable, IPv6 tests skipped: {IPV6_REASON}")

needs_ipv6 = pytest.mark.skipif(IPV6_REASON is not None, reason=f"IPv6 loopback: {IPV6_REASON}")


def free_port(host: str, kind: socket.SocketKind) -> int:
    """A port that is free right now on ``host`` (closed again before returning)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this directory in a fresh event loop (no plugin needed)."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(func(**kwargs), ASYNC_TEST_TIMEOUT))
    return True
