"""Running the Josev SECC (independent peer, side venv) as a SUT for the conformance harness."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("ISO15118_SHARED", ROOT.parent / "shared"))


def peer_dir() -> Path:
    return shared_dir() / "peer"


def ensure_peer() -> tuple[Path | None, str]:
    """(venv, "") when the peer can run, else (None, why not).  Runs ``setup`` if needed
    (from a neutral directory: the setup's own Python checks would otherwise import this
    project's ``iso15118`` package from the current directory)."""
    peer = peer_dir()
    if not (peer / "josev-secc").exists():
        return None, f"no Josev peer scripts at {peer}"
    env_venv = os.environ.get("ISO15118_PEER_VENV")
    if env_venv and (Path(env_venv) / "bin" / "python").exists():
        return Path(env_venv), ""
    try:
        out = subprocess.run([str(peer / "setup")], cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=600)
    except Exception as exc:  # noqa: BLE001
        return None, f"peer setup failed to run: {exc}"
    if out.returncode != 0:
        return None, f"peer setup failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}"
    venv = Path(out.stdout.strip().splitlines()[-1])
    return venv, ""


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


class JosevSecc:
    """``josev-secc`` in the background; ``before_case`` waits for its next READY line
    (it serves one session at a time and needs 5 s of teardown after each)."""

    def __init__(self, services: str = "AC_BPT,DC_BPT", extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.services = services
        self.extra = extra
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Queue[str] = asyncio.Queue()
        self.sessions: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._first = True
        self.stderr = Path(tempfile.mkdtemp(prefix="josev-secc-")) / "stderr.log"

    async def start(self, timeout: float = 60.0) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            str(peer_dir() / "josev-secc"), "--port", str(self.port), "--services", self.services, *self.extra,
            stdout=asyncio.subprocess.PIPE, stderr=self.stderr.open("w"), cwd=tempfile.gettempdir(),
        )
        self._reader = asyncio.ensure_future(self._read())
        return await asyncio.wait_for(self.ready.get(), timeout)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            s = line.decode(errors="replace").strip()
            if s.startswith("READY"):
                self.ready.put_nowait(s)
            elif s.startswith("SESSION"):
                self.sessions.append(s)

    async def before_case(self) -> None:
        if self._first:
            self._first = False
            return
        await asyncio.wait_for(self.ready.get(), 30.0)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
        if self._reader is not None:
            self._reader.cancel()

    def endpoint(self) -> Any:
        from conformance.sut import SutEndpoint
        from iso15118.session.services import EnergyService

        sut = SutEndpoint("::1", self.port, name="josev-secc", before_case=self.before_case, jobs=1)
        sut.info.services = {EnergyService[s] for s in self.services.split(",")}
        return sut
