"""Every command fails like a tool: the real CLI, as a subprocess, answers a refused connection, a
missing file and a bad flag with ONE line on stderr and the documented exit status (``iso15118/cli.py``:
0 ok, 1 finding, 2 usage or error, 3 not a capture), never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iso15118", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    return lines[0]


def closed_port() -> int:
    """A port on ::1 that nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def test_evcc_connection_refused(tmp_path: Path) -> None:
    port = closed_port()
    proc = run_cli("evcc", "--host", "::1", "--port", str(port), cwd=tmp_path)
    line = one_line(proc)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert line == f"iso15118 evcc: error: cannot connect to [::1]:{port}: connection refused"
    assert proc.stdout == ""


@pytest.mark.parametrize("action,name", [("decode", "missing.exi"), ("encode", "missing.xml")])
def test_exi_missing_file(tmp_path: Path, action: str, name: str) -> None:
    present = tmp_path / "present.xml"
    present.write_text("<x/>")
    proc = run_cli("exi", action, "--schema", "common", str(present), str(tmp_path / name), cwd=tmp_path)
    line = one_line(proc)
    assert proc.returncode == 2
    assert line == f"iso15118 exi {action}: error: {tmp_path / name}: no such file"
    assert not list(tmp_path.glob("present.*x*i")), "nothing is written when an input is missing"


def test_capture_decode_missing_file(tmp_path: Path) -> None:
    proc = run_cli("decode", str(tmp_path / "missing.pcap"), cwd=tmp_path)
    line = one_line(proc)
    assert proc.returncode == 3
    assert "missing.pcap" in line and "No such file" in line


@pytest.mark.parametrize("argv,needle", [
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["exi", "decode", "--schema", "nope", "x.exi"], "invalid choice: 'nope'"),
    (["evcc", "--port", "not-a-number"], "invalid int value: 'not-a-number'"),
])
def test_bad_flag(tmp_path: Path, argv: list[str], needle: str) -> None:
    proc = run_cli(*argv, cwd=tmp_path)
    line = one_line(proc)
    assert proc.returncode == 2
    assert needle in line and line.startswith("iso15118") and "--help" in line
    assert proc.stdout == ""


def test_help_documents_exit_statuses(tmp_path: Path) -> None:
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "exit status: 0 success, 1 a finding" in text and "2 usage error" in text and "3 not a capture" in text


def test_conformance_run_against_an_unreachable_sut(tmp_path: Path) -> None:
    """An unreachable SUT is an error (2), not a campaign of 'not applicable' verdicts (0); the tester
    reports it per case (conformance/cli.py), without a traceback."""
    port = closed_port()
    proc = run_cli("conformance", "run", "--sut", f"tcp://[::1]:{port}", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "SUT unreachable" in proc.stdout and "Connect call failed" in proc.stdout
