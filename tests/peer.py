"""The independent peer, Josev (PyPI ``iso15118`` 0.31.2), for tests: set up by ``tools/peer/setup``
in its own venv and run through ``tools/peer/josev secc|evcc|exi`` (``tools/peer/README.md``).

Josev's import name is also ``iso15118``: it never runs in this project's interpreter, only as a
subprocess in its venv. :func:`ensure_peer` runs the setup once per test process (``tools/test`` runs
it before pytest and sets ``ISO15118_PEER_READY``, so the tests only check) and returns the
environment for the subprocesses, or raises :class:`PeerUnavailable` with the setup's own reason.
The fixtures skip with that reason; ``tools/test --strict`` turns such a skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PEER_TOOLS = REPO / "tools" / "peer"
SETUP = PEER_TOOLS / "setup"
JOSEV = PEER_TOOLS / "josev"


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (no Java, setup failed, ...); the message says why."""


def peer_home() -> Path:
    """Where the peer lives: ``$ISO15118_PEER_HOME`` or ``<repo>/.cache/peer``."""
    return Path(os.environ.get("ISO15118_PEER_HOME") or REPO / ".cache" / "peer").resolve()


def peer_pki() -> Path:
    """Josev's test PKI (``certs/``, ``private_keys/``; key passwords ``12345``)."""
    return peer_home() / "pki" / "iso15118_2"


def josev(command: str, *args: str) -> list[str]:
    """The command line of ``tools/peer/josev COMMAND ARGS``."""
    return [str(JOSEV), command, *args]


_lock = threading.Lock()
_state: dict[str, object] = {}


def ensure_peer() -> dict[str, str]:
    """The environment for ``tools/peer/josev`` subprocesses, after making sure the peer is set up."""
    with _lock:
        if "env" in _state:
            return dict(_state["env"])  # type: ignore[call-overload]
        if "error" in _state:
            raise PeerUnavailable(str(_state["error"]))
        home = peer_home()
        env = dict(os.environ, ISO15118_PEER_HOME=str(home))
        env.pop("PYTHONPATH", None)
        if os.environ.get("ISO15118_PEER_READY") != str(home) or not (home / "venv" / "bin" / "python").exists():
            try:
                # a neutral working directory: the setup's checks import Josev's iso15118
                with tempfile.TemporaryDirectory(prefix="peer-setup-") as cwd:
                    proc = subprocess.run([str(SETUP)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                _state["error"] = f"tools/peer/setup did not run: {exc}"
                raise PeerUnavailable(str(_state["error"])) from exc
            if proc.returncode != 0:
                last = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
                _state["error"] = f"tools/peer/setup failed: {last[0]}"
                raise PeerUnavailable(str(_state["error"]))
        _state["env"] = env
        return dict(env)


@pytest.fixture(scope="session")
def peer_env() -> dict[str, str]:
    """The environment for ``tools/peer/josev``; skips with the setup's reason when it cannot run."""
    try:
        return ensure_peer()
    except PeerUnavailable as exc:
        pytest.skip(f"Josev peer unavailable: {exc}")
        raise  # unreachable


@pytest.fixture(scope="session")
def josev_pki(peer_env: dict[str, str]) -> Path:
    """Josev's test PKI folder (made by the setup)."""
    pki = peer_pki()
    if not (pki / "certs" / "cpoCertChain.pem").is_file():
        pytest.skip(f"Josev test PKI missing under {pki} (tools/peer/setup makes it)")
    return pki
