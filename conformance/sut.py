"""The system under test: where it listens, how to reach it (TCP or TLS), what it offers,
and optionally a power probe that reports its physical output state.

``--sut`` URLs: ``tcp://[::1]:15119``, ``tls://[::1]:15119`` (or ``--tls`` with a ``tcp://``
URL).  A *power probe* is the lab's view of the output (power analyser, contactor feedback):
``http://host:port/path`` answering ``{"power_w": ..., "contactors_closed": ...}`` for
``?evccid=...``, or an in-process callable.  Without one, cases that must observe the
physical state after an abort end inconclusive and say why.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from iso15118.session.services import EnergyService


@dataclass(frozen=True)
class PowerState:
    """What a probe saw at the SUT's output."""

    power_w: float
    contactors_closed: bool
    energy_wh: float | None = None


class PowerProbe(Protocol):
    async def state(self, evcc_id: str) -> PowerState | None:
        """The output state of the session of ``evcc_id`` (None: unknown)."""


class HttpProbe:
    """Reads ``GET url?evccid=ID`` -> ``{"power_w": W, "contactors_closed": bool}``."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def state(self, evcc_id: str) -> PowerState | None:
        sep = "&" if "?" in self.url else "?"
        url = f"{self.url}{sep}evccid={urllib.parse.quote(evcc_id)}"

        def get() -> Any:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - lab URL given by the user
                return json.loads(resp.read())

        try:
            d = await asyncio.to_thread(get)
        except Exception:
            return None
        return PowerState(float(d.get("power_w", 0.0)), bool(d.get("contactors_closed", False)), d.get("energy_wh"))


class CallableProbe:
    """An in-process probe: ``fn(evcc_id) -> PowerState | None``."""

    def __init__(self, fn: Callable[[str], PowerState | None]) -> None:
        self.fn = fn

    async def state(self, evcc_id: str) -> PowerState | None:
        return self.fn(evcc_id)


class SutControl(Protocol):
    async def trigger(self, evcc_id: str, event: str) -> bool:
        """Make the SUT's environment do ``event`` for the session of ``evcc_id``:
        ``grid_outage``, ``grid_restored``, ``notify:Terminate``, ``notify:Pause`` ...
        Returns False if the event is not supported."""


class HttpControl:
    """``POST url`` with ``{"evccid": ..., "event": ...}`` -> 2xx when done."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def trigger(self, evcc_id: str, event: str) -> bool:
        body = json.dumps({"evccid": evcc_id, "event": event}).encode()

        def post() -> bool:
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310 - lab URL given by the user
                return bool(200 <= resp.status < 300)

        try:
            return bool(await asyncio.to_thread(post))
        except Exception:
            return False


@dataclass
class SutInfo:
    """What the SUT offers: declared (``--pics FILE`` / ``--services``) or probed at campaign start."""

    services: set[EnergyService] = field(default_factory=set)
    probed: bool = False
    notes: list[str] = field(default_factory=list)
    control_modes: set[str] = field(default_factory=set)
    """``Dynamic`` / ``Scheduled`` (empty: unknown)."""
    authorization: set[str] = field(default_factory=set)
    """``EIM`` / ``PnC`` (empty: unknown)."""
    features: dict[str, bool] = field(default_factory=dict)
    """Optional features (``pause_resume``, ``service_renegotiation``, ``standby`` ...); absent = unknown."""
    source: str = ""
    """Where this came from: ``pics:FILE``, ``--services``, ``probe`` or ``profile``."""
    reachable: bool | None = None
    unreachable_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source or ("probe" if self.probed else "declared"),
            "services": sorted(s.name for s in self.services),
            "control_modes": sorted(self.control_modes),
            "authorization": sorted(self.authorization),
            "features": dict(sorted(self.features.items())),
            "reachable": self.reachable,
            "unreachable_reason": self.unreachable_reason,
            "notes": list(self.notes),
        }

    def offers(self, service: EnergyService) -> bool:
        return service in self.services

    def families(self) -> set[str]:
        return {s.family.value for s in self.services if s.family is not None}


@dataclass
class SutEndpoint:
    """One SUT: address, transport security, PKI, probe, and hooks around each case."""

    host: str
    port: int
    tls: bool = False
    pki_dir: Path | None = None
    name: str = ""
    probe: PowerProbe | None = None
    control: SutControl | None = None
    """Lab interface that makes the SUT's environment act (grid outage, EVSE notification)."""
    info: SutInfo = field(default_factory=SutInfo)
    before_case: Callable[[], Awaitable[None]] | None = None
    """Awaited before every case (e.g. wait until a peer that serves one session at a time
    is ready again)."""
    jobs: int = 1
    """Cases run concurrently against this SUT (1 for chargers with one connector)."""
    connect_timeout: float = 10.0
    role: str = "SECC"
    """``SECC``: a charger listening on host/port; ``EVCC``: a vehicle started by ``evcc_launcher``."""
    evcc_launcher: Any = None
    """EVCC under test: ``async launcher(host, port)`` (see :mod:`conformance.tester_secc`)."""
    evcc_profile: str = "wall-connector"
    """Charger profile the tester SECC simulates for an EVCC under test."""
    evcc_tls_launcher: Any = None
    """EVCC under test over TLS: ``async launcher(host, port, trust_dir)``; ``trust_dir`` holds
    ``v2gRootCACert.pem``, the root the vehicle trusts (see :mod:`conformance.tester_secc`)."""
    evcc_pki: Path | None = None
    """PKI (with the root's key) the EVCC under test trusts: the tester SECC's chains, good
    and deliberately broken, are issued from it."""
    time_scale: float = 1.0
    """Multiplies case time limits (slow lab peers)."""

    @classmethod
    def evcc(cls, launcher: Any, name: str, profile: str = "wall-connector") -> SutEndpoint:
        """An EVCC under test (the harness listens; ``launcher`` makes the EVCC connect)."""
        return cls("::1", 0, name=name, role="EVCC", evcc_launcher=launcher, evcc_profile=profile)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{'tls' if self.tls else 'tcp'}://[{self.host}]:{self.port}"

    @classmethod
    def parse(cls, url: str, *, tls: bool = False, pki: str | Path | None = None, **kw: Any) -> SutEndpoint:
        """``tcp://[::1]:15119`` / ``tls://[::1]:15119`` / ``[::1]:15119`` / ``host:port``."""
        u = urllib.parse.urlsplit(url if "://" in url else "tcp://" + url)
        if u.scheme not in ("tcp", "tls"):
            raise ValueError(f"unsupported SUT scheme {u.scheme!r} in {url!r} (tcp:// or tls://)")
        if u.hostname is None or u.port is None:
            raise ValueError(f"SUT URL needs host and port: {url!r}")
        return cls(u.hostname, u.port, tls or u.scheme == "tls", Path(pki) if pki else None, **kw)

    # ------------------------------------------------------------------ TLS contexts

    def _josev_layout(self) -> bool:
        return self.pki_dir is not None and (self.pki_dir / "certs" / "oemCertChain.pem").exists() and not (
            self.pki_dir / "pki.json"
        ).exists()

    def client_context(self, identity: str | None = "vehicle", **kw: Any) -> ssl.SSLContext:
        """The tester EVCC's TLS context for this SUT (``identity=None``: no client certificate)."""
        if self.pki_dir is None:
            raise ValueError("TLS needs --pki DIR")
        from iso15118.security import tls as T

        if self._josev_layout():
            return T.josev_evcc_context(self.pki_dir, present_oem_chain=identity is not None, **kw)
        from iso15118.security.pki import load_pki

        paths = load_pki(self.pki_dir).paths
        return T.evcc_context_from_pki(paths, identity=identity, **kw)

    def trust_anchor(self) -> Path | None:
        if self.pki_dir is None:
            return None
        if self._josev_layout():
            return self.pki_dir / "certs" / "v2gRootCACert.pem"
        return self.pki_dir / "certs" / "v2gRootCACert.pem"
