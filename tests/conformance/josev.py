"""Running the Josev SECC (independent peer, side venv) as a SUT for the conformance harness."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from pathlib import Path
from typing import Any

from tests import peer


def ensure_peer() -> tuple[dict[str, str] | None, str]:
    """(environment for ``tools/peer/josev``, "") when the peer can run, else (None, why not)."""
    try:
        return peer.ensure_peer(), ""
    except peer.PeerUnavailable as exc:
        return None, str(exc)


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


class JosevSecc:
    """``tools/peer/josev secc`` in the background; ``before_case`` waits for its next READY line
    (it serves one session at a time and needs 5 s of teardown after each)."""

    def __init__(self, env: dict[str, str], services: str = "AC_BPT,DC_BPT", extra: tuple[str, ...] = ()) -> None:
        self.env = env
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
            *peer.josev("secc", "--port", str(self.port), "--services", self.services, *self.extra),
            stdout=asyncio.subprocess.PIPE, stderr=self.stderr.open("w"), cwd=tempfile.gettempdir(), env=self.env,
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
