"""Record real ISO 15118 sessions on loopback for the capture decoder's tests.

Two pairs of endpoints, each run as separate processes and sniffed on ``lo`` by tcpdump (pcap)
or dumpcap (pcapng) with a port filter:

* Josev (``tools/peer/josev``: ``secc --once`` and ``evcc --no-linger``), each side
  writing a ``--trace`` (one JSON line per V2GTP message, with the EXI bytes it sent/received);
* this project's ``iso15118 secc --once`` / ``iso15118 evcc`` with ``-v`` (the EVCC prints every
  message it sends, the SECC every message it receives).

Nothing here decodes: the tests compare :mod:`iso15118.capture` against these records.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.capture.tlsrig import Sniffer
from tests.peer import PeerUnavailable, ensure_peer, josev

REPO = Path(__file__).resolve().parents[2]
OUR_CLI = [sys.executable, "-m", "iso15118"]


@dataclass
class TraceLine:
    """One V2GTP message as an endpoint logged it."""

    direction: str  # "tx" | "rx", from the logging endpoint's point of view
    name: str
    payload_type: int
    payload: bytes
    t: float = 0.0  # wall-clock time of the log line (Unix seconds)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TraceLine:
        pt = d["payload_type"]
        return cls(d["dir"], d["name"], int(pt, 16) if isinstance(pt, str) else int(pt), bytes.fromhex(d["exi_hex"]),
                   float(d.get("t", 0.0)))


@dataclass
class Recording:
    """One recorded session: the capture, key logs and what each endpoint reported."""

    label: str
    directory: Path
    capture: Path
    port: int
    keylogs: list[Path] = field(default_factory=list)
    evcc_rc: int | None = None
    evcc_stdout: str = ""
    evcc_stderr: str = ""
    secc_stdout: list[str] = field(default_factory=list)
    secc_proc: subprocess.Popen[bytes] | None = None
    secc_stderr: Path | None = None
    seconds: float = 0.0
    error: str | None = None

    # -- Josev traces -------------------------------------------------------------------

    def trace(self, side: str) -> list[TraceLine]:
        """The ``--trace`` lines of ``side`` (``evcc`` / ``secc``)."""
        path = self.directory / f"{side}.trace.jsonl"
        if not path.exists():
            return []
        return [TraceLine.from_json(json.loads(ln)) for ln in path.read_text().splitlines() if ln.strip()]

    def sent(self, side: str) -> list[TraceLine]:
        return [t for t in self.trace(side) if t.direction == "tx"]

    def received(self, side: str) -> list[TraceLine]:
        return [t for t in self.trace(side) if t.direction == "rx"]

    # -- the SECC's end -----------------------------------------------------------------

    def secc_verdict(self, timeout: float = 20.0) -> str:
        """The SECC's ``SESSION ...`` line (``--once``: it exits after it); waits for it."""
        proc = self.secc_proc
        if proc is not None:
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                out, _ = proc.communicate(timeout=10)
            self.secc_stdout.extend(out.decode("utf-8", "replace").splitlines())
            self.secc_proc = None
        return next((ln for ln in self.secc_stdout if ln.startswith("SESSION")), "")

    def stop(self) -> None:
        """Terminate the SECC if it is still running (never raises)."""
        proc = self.secc_proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def secc_log_tail(self, n: int = 2500) -> str:
        if self.secc_stderr is None or not self.secc_stderr.exists():
            return ""
        return self.secc_stderr.read_text(errors="replace")[-n:]


class SnifferUnavailable(RuntimeError):
    """tcpdump / dumpcap did not start capturing (no permission on this machine, ...)."""


def free_port() -> int:
    """A free TCP port on ``::1`` in 49152..65535 (the range SDP allows)."""
    for _ in range(200):
        port = random.randint(49152, 65535)
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            try:
                s.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 49152..65535")


def setup_peer() -> tuple[dict[str, str] | None, str]:
    """The environment for ``tools/peer/josev`` (the peer set up once per test process by
    :func:`tests.peer.ensure_peer`); ``(None, reason)`` when the peer cannot be set up."""
    try:
        return ensure_peer(), ""
    except PeerUnavailable as exc:
        return None, str(exc)


def sniffer_tool(preferred: str) -> str | None:
    """``preferred`` when installed, else the other of tcpdump / dumpcap, else None."""
    for tool in (preferred, "dumpcap" if preferred == "tcpdump" else "tcpdump"):
        if shutil.which(tool):
            return tool
    return None


def _start_sniffer(directory: Path, port: int, tool: str) -> Sniffer:
    ext = "pcapng" if tool == "dumpcap" else "pcap"
    sn = Sniffer(directory / f"session.{ext}", port, tool, "lo")
    if not sn.ready:
        sn.stop()
        raise SnifferUnavailable(f"{tool} could not capture on lo: {sn.stderr.decode('utf-8', 'replace')[-400:]}")
    return sn


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> tuple[str, list[str]]:
    """Read the SECC's stdout until its READY line (or it exits / the time is up); returns the
    READY line ("" if none) and every complete line read."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    lines: list[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    ready = ""
    while not ready and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            ln, buf = buf.split(b"\n", 1)
            text = ln.decode("utf-8", "replace")
            lines.append(text)
            if text.startswith("READY") and not ready:
                ready = text
    return ready, lines


def record_josev(env: dict[str, str], base: Path, label: str, *, tls: str, tool: str,
                 service: str = "DC_BPT", attempts: int = 2) -> Recording:
    """Josev EVCC against Josev SECC (``--once``), sniffed with ``tool``.  The SECC is left
    tearing down (its 5 s delay): :meth:`Recording.secc_verdict` collects its SESSION line.
    A session the EVCC reports as failed (Josev's own timeouts on a busy machine) is run again
    once, on a new port."""
    rec: Recording | None = None
    for attempt in range(attempts):
        d = base / f"{label}-{attempt}"
        d.mkdir(parents=True)
        rec = _josev_once(env, d, label, tls=tls, tool=tool, service=service)
        if rec.error is None:
            return rec
        rec.stop()
    assert rec is not None
    return rec


def _josev_once(env: dict[str, str], d: Path, label: str, *, tls: str, tool: str, service: str) -> Recording:
    port = free_port()
    t0 = time.monotonic()
    cwd = d / "cwd"  # Josev reads ./.env: a directory of its own
    cwd.mkdir()
    sn = _start_sniffer(d, port, tool)
    rec = Recording(label, d, sn.path, port, secc_stderr=d / "secc.stderr.log")
    tls_args = ["--tls", tls]
    secc_cmd = josev("secc", "--port", str(port), "--services", service, "--once",
                     "--trace", str(d / "secc.trace.jsonl"), *tls_args)
    evcc_cmd = josev("evcc", "--port", str(port), "--service", service, "--no-linger",
                     "--timeout", "60", "--trace", str(d / "evcc.trace.jsonl"), *tls_args)
    if tls != "none":
        secc_cmd += ["--keylog", str(d / "secc.keys")]
        evcc_cmd += ["--keylog", str(d / "evcc.keys")]
        rec.keylogs = [d / "evcc.keys", d / "secc.keys"]
    try:
        with open(rec.secc_stderr, "w") as err:  # type: ignore[arg-type]
            secc = subprocess.Popen(secc_cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err)
        rec.secc_proc = secc
        ready, lines = _wait_ready(secc, 30)
        rec.secc_stdout = lines
        if not ready:
            rec.error = f"josev secc printed no READY line: {lines} {rec.secc_log_tail()}"
            return rec
        try:
            ev = subprocess.run(evcc_cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=90)
            rec.evcc_rc, rec.evcc_stdout, rec.evcc_stderr = ev.returncode, ev.stdout, ev.stderr
        except subprocess.TimeoutExpired as exc:
            rec.evcc_rc, rec.evcc_stderr = -1, f"timed out: {exc}"
        if rec.evcc_rc != 0 or not rec.evcc_stdout.startswith("PASS"):
            rec.error = (f"josev evcc failed (rc {rec.evcc_rc}): {rec.evcc_stdout.strip()}\n"
                         f"{rec.evcc_stderr[-2500:]}")
    finally:
        sn.stop()
        rec.seconds = time.monotonic() - t0
    return rec


def record_ours(base: Path, *, service: str = "AC_BPT", loops: int = 10, tool: str = "tcpdump") -> Recording:
    """``iso15118 secc --once`` and ``iso15118 evcc`` over TLS 1.3 with a lab PKI in ``base``,
    both writing key logs and running verbose."""
    d = base / "ours"
    d.mkdir(parents=True)
    port = free_port()
    t0 = time.monotonic()
    sn = _start_sniffer(d, port, tool)
    rec = Recording("ours", d, sn.path, port, keylogs=[d / "evcc.keys", d / "secc.keys"],
                    secc_stderr=d / "secc.stderr.log")
    pki = d / "pki"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    try:
        with open(rec.secc_stderr, "w") as err:  # type: ignore[arg-type]
            secc = subprocess.Popen(
                [*OUR_CLI, "secc", "--once", "--host", "::1", "--port", str(port), "--tls", "--pki", str(pki),
                 "--keylog", str(d / "secc.keys"), "-v"],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
            )
        rec.secc_proc = secc
        ready, lines = _wait_ready(secc, 60)  # the first run creates the secp521r1 PKI
        rec.secc_stdout = lines
        if not ready:
            rec.error = f"iso15118 secc printed no READY line: {lines} {rec.secc_log_tail()}"
            return rec
        try:
            ev = subprocess.run(
                [*OUR_CLI, "evcc", "--service", service, "--host", "::1", "--port", str(port), "--tls",
                 "--pki", str(pki), "--keylog", str(d / "evcc.keys"), "--loops", str(loops), "-v"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
            )
            rec.evcc_rc, rec.evcc_stdout, rec.evcc_stderr = ev.returncode, ev.stdout, ev.stderr
        except subprocess.TimeoutExpired as exc:
            rec.evcc_rc, rec.evcc_stderr = -1, f"timed out: {exc}"
        rec.secc_verdict(timeout=20)
        last = rec.evcc_stdout.strip().splitlines()[-1:] or [""]
        if rec.evcc_rc != 0 or not last[0].startswith("PASS"):
            rec.error = f"iso15118 evcc failed (rc {rec.evcc_rc}): {rec.evcc_stdout[-2000:]}\n{rec.evcc_stderr[-2000:]}"
    finally:
        rec.stop()
        sn.stop()
        rec.seconds = time.monotonic() - t0
    return rec


_OUR_SEND = re.compile(r"^\d+\.\d+ SendMessage (\S+)")
_OUR_RX = re.compile(r"^\d+\.\d+ rx (\S+)")
_OUR_SUMMARY = re.compile(r"messages=(\d+) \(tx=(\d+) rx=(\d+)\)")


def our_evcc_sent(rec: Recording) -> list[str]:
    """Names of the messages our EVCC printed as sent (``-v``: ``<t> SendMessage <name>``)."""
    return [m.group(1) for ln in rec.evcc_stdout.splitlines() if (m := _OUR_SEND.match(ln))]


def our_secc_received(rec: Recording) -> list[str]:
    """Names of the messages our SECC printed as received (``-v``: ``<t> rx <name>``)."""
    return [m.group(1) for ln in rec.secc_stdout if (m := _OUR_RX.match(ln))]


def our_evcc_counts(rec: Recording) -> tuple[int, int] | None:
    """``(tx, rx)`` from our EVCC's summary line."""
    m = _OUR_SUMMARY.search(rec.evcc_stdout)
    return (int(m.group(2)), int(m.group(3))) if m else None
