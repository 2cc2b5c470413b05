"""Verdicts and the evidence behind them: a timestamped message log and timeline samples.

Every case ends with a :class:`CaseResult`: one of four verdicts, the reason, and the evidence
(each V2GTP frame with time, direction, payload type, decoded message and response code, plus
notes and the power / current / SOC samples the HTML timeline plots).  A pass always carries
the checks that were made (``checks``), so a report never shows a bare, unexplained pass.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Verdict(str, enum.Enum):
    """ISO 15118-21 style verdicts."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


def _plain(value: Any) -> Any:
    """JSON-friendly form of a message field value."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.value
    if type(value).__name__ == "RationalNumber":
        return float(Decimal(value.value).scaleb(value.exponent))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    fields = getattr(value, "FIELDS", None)
    if fields is not None:
        out: dict[str, Any] = {}
        if getattr(value, "ELEMENT", None) is None and type(value).__name__.endswith("ControlMode"):
            out["@type"] = type(value).__name__
        elif type(value).__name__.endswith("Mode") and not type(value).__name__.startswith("Selected"):
            out["@type"] = type(value).__name__
        for spec in fields:
            v = getattr(value, spec.attr, None)
            if v is None or v == []:
                continue
            out[spec.attr] = _plain(v)
        return out
    return str(value)


def message_to_dict(msg: Any) -> dict[str, Any]:
    """A typed message as nested plain values (RationalNumbers as floats, bytes as hex)."""
    d = _plain(msg)
    return d if isinstance(d, dict) else {"value": d}


def response_code_of(msg: Any) -> str | None:
    code = getattr(msg, "response_code", None)
    if code is None:
        return None
    return getattr(code, "value", str(code))


@dataclass
class LogEntry:
    """One line of evidence."""

    t: float
    """Seconds since the case started."""
    direction: str
    """``tx`` (tester -> SUT), ``rx`` (SUT -> tester) or ``note``."""
    name: str
    payload_type: int | None = None
    length: int | None = None
    decoded: dict[str, Any] | None = None
    response_code: str | None = None
    exi_hex: str | None = None
    detail: str = ""
    response_time: float | None = None
    """rx only: seconds since the request it answers."""
    level: str = "info"
    wall: float = 0.0
    """Wall-clock epoch time."""

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v not in (None, "", [])}
        d["t"] = round(self.t, 4)
        if self.response_time is not None:
            d["response_time"] = round(self.response_time, 4)
        return d


@dataclass
class Sample:
    """One timeline point of the charge loop (W, A, %; None = not reported)."""

    t: float
    power_w: float | None = None
    current_a: float | None = None
    soc: float | None = None
    ev_max_charge_w: float | None = None
    ev_max_discharge_w: float | None = None
    evse_max_charge_w: float | None = None
    evse_max_discharge_w: float | None = None
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items() if v not in (None, "")}


class Evidence:
    """The message log and samples of one case run."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.entries: list[LogEntry] = []
        self.samples: list[Sample] = []
        self.markers: list[tuple[float, str]] = []
        self.annex: dict[str, Any] = {}
        """Structured findings of a case beyond its checks (a replay's per-message diff ...)."""

    def now(self) -> float:
        return time.monotonic() - self.t0

    def frame(
        self,
        direction: str,
        payload_type: int | None,
        payload: bytes | None,
        msg: Any = None,
        *,
        name: str | None = None,
        detail: str = "",
        response_time: float | None = None,
        level: str = "info",
    ) -> LogEntry:
        nm = name or (msg.ELEMENT[1] if msg is not None and getattr(msg, "ELEMENT", None) else "?")
        e = LogEntry(
            t=self.now(),
            direction=direction,
            name=nm,
            payload_type=payload_type,
            length=len(payload) if payload is not None else None,
            decoded=message_to_dict(msg) if msg is not None else None,
            response_code=response_code_of(msg) if msg is not None else None,
            exi_hex=payload.hex() if payload is not None and len(payload) <= 4096 else None,
            detail=detail,
            response_time=response_time,
            level=level,
            wall=time.time(),
        )
        self.entries.append(e)
        return e

    def note(self, text: str, level: str = "info") -> LogEntry:
        e = LogEntry(t=self.now(), direction="note", name=text, level=level, wall=time.time())
        self.entries.append(e)
        return e

    def mark(self, label: str) -> None:
        """A vertical marker on the timeline (derate, abort, recovery ...)."""
        self.markers.append((self.now(), label))
        self.note(f"marker: {label}")

    def sample(self, **kw: Any) -> Sample:
        s = Sample(t=self.now(), **kw)
        self.samples.append(s)
        return s

    def messages(self, direction: str | None = None, name: str | None = None) -> list[LogEntry]:
        return [
            e
            for e in self.entries
            if e.direction != "note" and (direction is None or e.direction == direction) and (name is None or e.name == name)
        ]


@dataclass
class Check:
    """One requirement check made during a case."""

    requirement: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "ok": self.ok, "detail": self.detail}


@dataclass
class CaseResult:
    """Outcome of one case against one SUT."""

    case_id: str
    title: str
    sut: str
    verdict: Verdict
    reason: str
    duration: float
    evidence: Evidence
    checks: list[Check] = field(default_factory=list)
    tags: tuple[str, ...] = ()
    group: str = ""
    requirement: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def to_json(self, with_log: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.case_id,
            "title": self.title,
            "group": self.group,
            "sut": self.sut,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "requirement": self.requirement,
            "tags": list(self.tags),
            "duration": round(self.duration, 3),
            "started": self.started,
            "checks": [c.to_json() for c in self.checks],
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
        }
        if with_log:
            d["log"] = [e.to_json() for e in self.evidence.entries]
            d["samples"] = [s.to_json() for s in self.evidence.samples]
            d["markers"] = [{"t": round(t, 4), "label": lbl} for t, lbl in self.evidence.markers]
        if self.evidence.annex:
            d["annex"] = self.evidence.annex
        return d


def dump_jsonl(entries: list[LogEntry]) -> str:
    """The message log as JSON lines (the replay format)."""
    return "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries if e.direction != "note")
