"""Two network namespaces joined by a veth pair: the charging cable of the link tests.

Names are unique per test run (pid + counter) and removed afterwards.  Needs root and
``ip`` (iproute2); a missing tool is a failure, not a skip (the proof must run in CI)."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_seq = itertools.count()


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@dataclass
class Cable:
    evse_ns: str
    ev_ns: str
    evse_if: str
    ev_if: str

    def exec(self, ns: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *args]

    def python(self, ns: str, *args: str) -> list[str]:
        return self.exec(ns, sys.executable, *args)


@contextmanager
def cable() -> Iterator[Cable]:
    assert os.geteuid() == 0, "the namespace tests need root (CI runs as root)"
    assert shutil.which("ip"), "the namespace tests need iproute2 (ip)"
    tag = f"l{os.getpid() % 100000}x{next(_seq)}"
    c = Cable(f"{tag}e", f"{tag}v", f"{tag}a", f"{tag}b")
    try:
        _run("ip", "netns", "add", c.evse_ns)
        _run("ip", "netns", "add", c.ev_ns)
        _run("ip", "link", "add", c.evse_if, "type", "veth", "peer", "name", c.ev_if)
        _run("ip", "link", "set", c.evse_if, "netns", c.evse_ns)
        _run("ip", "link", "set", c.ev_if, "netns", c.ev_ns)
        for ns, ifn in ((c.evse_ns, c.evse_if), (c.ev_ns, c.ev_if)):
            # no duplicate address detection: the link-local address is usable at once
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                 "net.ipv6.conf.default.accept_dad=0")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", ifn, "up")
        yield c
    finally:
        for ns in (c.evse_ns, c.ev_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _settle(path: Path, quiet: float = 0.5, limit: float = 10.0) -> None:
    """Wait until the recording has stopped growing for ``quiet`` seconds (the recorder has
    written everything the kernel handed it), at most ``limit`` seconds."""
    import time

    last, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit:
        size = path.stat().st_size if path.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


@dataclass
class Bus:
    """Several EVSE namespaces and one EV namespace on a Linux bridge (crosstalk: every EVSE
    hears the EV's broadcasts).  The EV runs on the bridge device itself."""

    ev_ns: str
    ev_if: str
    evses: list[tuple[str, str]]  # (namespace, interface)


@contextmanager
def bus(n_evse: int = 2) -> Iterator[Bus]:
    assert os.geteuid() == 0 and shutil.which("ip")
    tag = f"l{os.getpid() % 100000}y{next(_seq)}"
    b = Bus(f"{tag}v", f"{tag}br", [(f"{tag}e{i}", f"{tag}a{i}") for i in range(n_evse)])
    made: list[str] = []
    try:
        _run("ip", "netns", "add", b.ev_ns)
        made.append(b.ev_ns)
        ev = ("ip", "netns", "exec", b.ev_ns)
        _run(*ev, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        _run(*ev, "ip", "link", "set", "lo", "up")
        _run(*ev, "ip", "link", "add", "name", b.ev_if, "type", "bridge")
        for i, (ns, ifn) in enumerate(b.evses):
            _run("ip", "netns", "add", ns)
            made.append(ns)
            port = f"{tag}p{i}"
            _run("ip", "link", "add", ifn, "type", "veth", "peer", "name", port)
            _run("ip", "link", "set", ifn, "netns", ns)
            _run("ip", "link", "set", port, "netns", b.ev_ns)
            _run(*ev, "ip", "link", "set", port, "master", b.ev_if)
            _run(*ev, "ip", "link", "set", port, "up")
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                 "net.ipv6.conf.default.accept_dad=0")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", ifn, "up")
        _run(*ev, "ip", "link", "set", b.ev_if, "up")
        yield b
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


@contextmanager
def capture(c: Cable, path: Path, *, builtin: bool = False) -> Iterator[str]:
    """Record the EVSE end of the cable: tcpdump when installed (and not ``builtin``), else
    iso15118.link.sniff."""
    tool = None if builtin else shutil.which("tcpdump")
    if tool:
        cmd = c.exec(c.evse_ns, tool, "-i", c.evse_if, "--immediate-mode", "-U", "-w", str(path), "-s", "0")
        name = "tcpdump"
    else:
        cmd = c.python(c.evse_ns, "-m", "iso15118.link.sniff", c.evse_if, str(path))
        name = "iso15118.link.sniff"
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # tcpdump: "listening on IF ...", the sniffer: "SNIFFING"
        assert "listening on" in line or "SNIFFING" in line, f"{name} did not start capturing: {line}"
        yield name
    finally:
        _settle(path)
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
