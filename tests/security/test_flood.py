"""1,000 idle sockets on the TLS port of a real SECC process: its memory stays bounded and a
legitimate session is still served while the flood holds its sockets.

Loopback only, bounded counts (1,000 sockets) and bounded waits.  Memory is the SECC's peak
resident set (``VmHWM`` of ``/proc/PID/status``) minus its resident set before the flood.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iso15118.security.pki import create_pki

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "iso15118"]
FLOOD = 1000
LIMIT_MB = 100


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.fail(f"need {want} file descriptors, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_idle_socket_flood(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.fail("this test measures memory through /proc")
    _raise_fd_limit(FLOOD + 512)
    pki = tmp_path / "pki"
    create_pki(pki, "secp521r1")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    log = tmp_path / "secc.log"
    with log.open("w") as err:
        secc = subprocess.Popen(
            [*CMD, "secc", "--profile", "wall-connector", "--port", "0", "--pki", str(pki)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO,
        )
    flood: list[socket.socket] = []
    try:
        assert secc.stdout is not None
        ready = secc.stdout.readline()
        assert ready.startswith("READY tls"), ready + log.read_text()
        port = int(ready.rsplit(":", 1)[1])
        # warm the SECC up with one real session so the baseline includes a served session
        warm = subprocess.run([*CMD, "evcc", "--port", str(port), "--pki", str(pki), "--loops", "1", "--service", "AC_BPT"],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=90)
        assert warm.returncode == 0, warm.stdout + warm.stderr
        base_kb = _status_kb(secc.pid, "VmRSS")
        t0 = time.monotonic()
        for _ in range(FLOOD):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(("::1", port))
            flood.append(s)
        connect_s = time.monotonic() - t0  # reported, not asserted (backlog sized for bursts)
        time.sleep(2.0)  # let the SECC accept and sort out the flood
        # a legitimate session while every flood socket is still open on our side
        legit = subprocess.run([*CMD, "evcc", "--port", str(port), "--pki", str(pki), "--loops", "2", "--service", "AC_BPT"],
                               capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
        peak_kb = _status_kb(secc.pid, "VmHWM")
        now_kb = _status_kb(secc.pid, "VmRSS")
        closed = sum(_closed_by_peer(s) for s in flood)
        growth_mb = (peak_kb - base_kb) / 1024
        print(f"\nflood: {FLOOD} idle sockets; SECC RSS before {base_kb / 1024:.1f} MB, peak {peak_kb / 1024:.1f} MB, "
              f"after {now_kb / 1024:.1f} MB -> growth {growth_mb:.1f} MB (limit {LIMIT_MB} MB); "
              f"{closed} flood sockets closed by the SECC's limits; {FLOOD} connects took {connect_s:.2f} s; "
              f"legitimate session: {legit.stdout.strip()}")
        assert legit.returncode == 0 and legit.stdout.startswith("PASS"), legit.stdout + legit.stderr + log.read_text()[-2000:]
        assert growth_mb < LIMIT_MB
        assert closed > 0 and "connection limits acting" in log.read_text(), log.read_text()[-2000:]
    finally:
        for s in flood:
            s.close()
        secc.kill()
        secc.wait(10)
