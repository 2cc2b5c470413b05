"""Capability statements in the style of a PICS (ISO 15118-21 uses PICS/PIXIT to decide which
cases apply): a TOML file declaring what the SUT supports.

    [sut]
    name = "Wall Connector gen 4"          # informative
    [services]
    energy = ["AC_BPT", "AC"]              # EnergyService names
    control_modes = ["Dynamic", "Scheduled"]
    authorization = ["EIM"]                # EIM, PnC
    [features]                             # optional features; absent = unknown (cases run)
    pause_resume = true
    service_renegotiation = true
    standby = false
    iso20 = true                           # the protocols it speaks (DIN / -2 cases: din, iso2;
    iso2 = true                            # iso20 = false: the reach gate speaks -2 or DIN)
    din = false

A case is *not applicable* only when the SUT declares the feature it needs unsupported;
everything else it must do, and a SUT that misbehaves before the step a case needs fails.
Without ``--pics`` (and without ``--services``) the runner probes the SUT for the same facts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from conformance.sut import SutInfo
from iso15118.session.services import EnergyService

KNOWN_FEATURES = ("pause_resume", "service_renegotiation", "standby", "pnc", "scheduled", "dynamic", "metering", "iso20", "iso2",
                  "din", "iso2_receipt")
MODES = {"dynamic": "Dynamic", "scheduled": "Scheduled"}


class PicsError(ValueError):
    """The PICS file is malformed (bad usage: exit status 2)."""


def load_pics(path: str | Path) -> SutInfo:
    try:
        d: dict[str, Any] = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PicsError(f"cannot read PICS {path}: {exc}") from exc
    svc = d.get("services", {})
    info = SutInfo(source=f"pics:{path}")
    try:
        info.services = {EnergyService[s.strip()] for s in svc.get("energy", [])}
    except KeyError as exc:
        raise PicsError(f"PICS {path}: unknown energy service {exc} (use {', '.join(s.name for s in EnergyService)})") from exc
    for cm in svc.get("control_modes", []):
        if cm.lower() not in MODES:
            raise PicsError(f"PICS {path}: unknown control mode {cm!r} (Dynamic, Scheduled)")
        info.control_modes.add(MODES[cm.lower()])
    for a in svc.get("authorization", []):
        if a not in ("EIM", "PnC"):
            raise PicsError(f"PICS {path}: unknown authorization {a!r} (EIM, PnC)")
        info.authorization.add(a)
    for k, v in d.get("features", {}).items():
        if not isinstance(v, bool):
            raise PicsError(f"PICS {path}: feature {k} must be true or false")
        info.features[k] = v
    if info.control_modes:
        for key, mode in MODES.items():
            info.features.setdefault(key, mode in info.control_modes)
    if info.authorization:
        info.features.setdefault("pnc", "PnC" in info.authorization)
    if not info.services:
        raise PicsError(f"PICS {path}: [services] energy lists no service")
    return info


def to_toml(info: SutInfo) -> str:
    """The capability statement as PICS TOML (what the probe found, saved with the report)."""
    def q(xs: Any) -> str:
        return "[" + ", ".join(f'"{x}"' for x in sorted(xs)) + "]"

    lines = ["# capability statement (" + (info.source or "probe") + ")", "[services]",
             f"energy = {q(s.name for s in info.services)}"]
    if info.control_modes:
        lines.append(f"control_modes = {q(info.control_modes)}")
    if info.authorization:
        lines.append(f"authorization = {q(info.authorization)}")
    if info.features:
        lines.append("[features]")
        lines += [f"{k} = {'true' if v else 'false'}" for k, v in sorted(info.features.items())]
    return "\n".join(lines) + "\n"
