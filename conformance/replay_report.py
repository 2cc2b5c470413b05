"""What one real-vehicle replay did and saw (:class:`ReplayReport`), and the per-message diff
of the SUT's answers against the recorded charger's (:func:`diff_messages`): evidence, never a
failure by itself (the verdict rules are in :mod:`conformance.vehicle_replay`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iso15118.capture.decode import flatten, json_value
from iso15118.exi.tree import Element

__all__ = ["IGNORED", "FieldDiff", "MessageDiff", "ReplayReport", "diff_messages"]

IGNORED = ("SessionID", "EVSEID", "DateTimeNow", "TimeStamp", "TMeter", "MeterID", "GenChallenge", "@Id", "Signature")
"""Fields that must differ between two chargers and sessions: never part of the diff."""


@dataclass
class FieldDiff:
    count: int
    at: int
    recorded: Any
    now: Any


@dataclass
class MessageDiff:
    compared: int = 0
    differing: int = 0
    fields: dict[str, FieldDiff] = field(default_factory=dict)


@dataclass
class ReplayReport:
    """What one replay did and saw (the case's ``evidence.annex['replay']``)."""

    session: str
    recorded_protocol: str | None
    protocol: str | None = None
    schema_id: int | None = None
    recorded_requests: int = 0
    sent: int = 0
    answered: int = 0
    refusal: str | None = None
    reached_stop: bool = False
    appended: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """Recorded repeats not sent (the SUT finished an Ongoing loop sooner)."""
    extra: dict[str, int] = field(default_factory=dict)
    """Repeats beyond the recording (the SUT needed longer)."""
    rewrites: dict[str, int] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    """The first 20 answers later than V2G_EVCC_Msg_Timeout (evidence)."""
    late_count: int = 0
    precharge_shortfall: str = ""
    """The SUT never pre-charged to the vehicle's target (evidence; a refusal with ``strict_precharge``)."""
    notes: list[str] = field(default_factory=list)
    diffs: dict[str, MessageDiff] = field(default_factory=dict)

    @property
    def compared(self) -> int:
        return sum(d.compared for d in self.diffs.values())

    @property
    def differing(self) -> int:
        return sum(d.differing for d in self.diffs.values())

    def diff_summary(self, limit: int = 6) -> str:
        parts = []
        for name, d in self.diffs.items():
            if d.differing:
                fields = ", ".join(sorted(d.fields, key=lambda f: -d.fields[f].count)[:limit])
                parts.append(f"{name} {d.differing}/{d.compared} ({fields})")
        return "; ".join(parts) or "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session, "recorded_protocol": self.recorded_protocol, "protocol": self.protocol,
            "schema_id": self.schema_id, "recorded_requests": self.recorded_requests, "sent": self.sent,
            "answered": self.answered, "refusal": self.refusal, "reached_stop": self.reached_stop,
            "appended": self.appended, "skipped": self.skipped, "extra": self.extra, "rewrites": self.rewrites,
            "late": self.late, "late_count": self.late_count, "precharge_shortfall": self.precharge_shortfall, "notes": self.notes,
            "compared": self.compared, "differing": self.differing,
            "diff": {
                name: {"compared": d.compared, "differing": d.differing,
                       "fields": {k: {"count": f.count, "first_at": f.at, "recorded": json_value(f.recorded),
                                      "now": json_value(f.now)} for k, f in d.fields.items()}}
                for name, d in self.diffs.items()
            },
        }


def diff_messages(recorded: Element, now: Element) -> dict[str, tuple[Any, Any]]:
    """Field -> (recorded, now) for every leaf that differs, physical values compared scaled;
    the fields two chargers must differ in (:data:`IGNORED`) are left out."""
    a, b = flatten(recorded), flatten(now)
    out: dict[str, tuple[Any, Any]] = {}
    for k in sorted(set(a) | set(b)):
        if any(x in k for x in IGNORED):
            continue
        va, vb = a.get(k), b.get(k)
        if va != vb:
            out[k] = (va, vb)
    return out
