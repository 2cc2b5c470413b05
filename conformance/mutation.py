"""Mutation proof of the tester: run the catalogue against every deliberately defective charger
and vehicle of :mod:`conformance.faults` and build the defect x case matrix.

* every defect must be **caught** (at least one case fails; for a dead, a silent and a
  random-EXI charger: no case passes and the campaign exits non-zero);
* every case must be **killed** (fail against at least one defect) -- mutation score 100 %.

Each defect runs only the cases that can catch it (``Defect.cases``; the whole catalogue for
the three zero-pass chargers); defects run in ``jobs`` worker processes, a few at a time each.
The matrix is written as JSON and CSV and summarised in a single-file HTML page."""

from __future__ import annotations

import asyncio
import csv
import fnmatch
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any


@dataclass
class Row:
    defect: str
    role: str
    what: str
    verdicts: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    exit_status: int = 0
    seconds: float = 0.0

    @property
    def killed(self) -> set[str]:
        return {c for c, v in self.verdicts.items() if v == "fail"}

    @property
    def passed(self) -> set[str]:
        return {c for c, v in self.verdicts.items() if v == "pass"}


@dataclass
class Matrix:
    rows: list[Row]
    cases: dict[str, list[str]]
    """Role -> every case ID of the catalogue for that role."""
    zero_pass: tuple[str, ...]
    wall_s: float = 0.0

    def caught(self, r: Row) -> bool:
        if r.defect in self.zero_pass:
            return not r.passed and r.exit_status != 0 and bool(r.verdicts)
        return bool(r.killed)

    def killed_cases(self, role: str) -> set[str]:
        return {c for r in self.rows if r.role == role for c in r.killed}

    def survivors(self, role: str) -> list[str]:
        return sorted(set(self.cases.get(role, [])) - self.killed_cases(role))

    def score(self, role: str) -> float:
        n = len(self.cases.get(role, []))
        return 100.0 * len(self.killed_cases(role) & set(self.cases.get(role, []))) / n if n else 100.0

    def ok(self) -> bool:
        return all(self.caught(r) for r in self.rows) and not any(self.survivors(role) for role in self.cases)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": round(self.wall_s, 1)}
        for role in sorted(self.cases):
            rows = [r for r in self.rows if r.role == role]
            out[role] = {
                "defects": len(rows),
                "defects_caught": sum(1 for r in rows if self.caught(r)),
                "uncaught": [r.defect for r in rows if not self.caught(r)],
                "cases": len(self.cases[role]),
                "cases_killed": len(self.killed_cases(role) & set(self.cases[role])),
                "survivors": self.survivors(role),
                "mutation_score_pct": round(self.score(role), 1),
            }
        out["zero_pass"] = {r.defect: {"passed": len(r.passed), "cases": len(r.verdicts), "exit_status": r.exit_status}
                            for r in self.rows if r.defect in self.zero_pass}
        return out

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "rows": [{"defect": r.defect, "role": r.role, "what": r.what, "exit_status": r.exit_status,
                          "seconds": round(r.seconds, 2), "caught": self.caught(r), "verdicts": r.verdicts,
                          "fail_reasons": {c: r.reasons[c] for c in sorted(r.killed)}} for r in self.rows]}

    def write(self, json_path: str | Path | None = None, csv_path: str | Path | None = None,
              html_path: str | Path | None = None) -> None:
        if json_path:
            Path(json_path).write_text(json.dumps(self.to_json(), indent=1) + "\n")
        if csv_path:
            with open(csv_path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["role", "defect", "case", "verdict", "reason"])
                for r in self.rows:
                    for c, v in sorted(r.verdicts.items()):
                        w.writerow([r.role, r.defect, c, v, r.reasons.get(c, "")[:300]])
        if html_path:
            Path(html_path).write_text(self.html())

    def html(self) -> str:
        s = self.summary()
        parts = ["<!doctype html><meta charset=utf-8><title>mutation matrix</title>",
                 "<style>body{font-family:system-ui;margin:20px}table{border-collapse:collapse;font-size:12px}"
                 "td,th{border:1px solid #ddd;padding:2px 5px}.k{background:#c62828;color:#fff}.p{background:#e8f5e9}"
                 ".e{background:#6a1b9a;color:#fff}.i{background:#fff3e0}</style>",
                 f"<h1>Mutation matrix</h1><p>wall time {s['wall_s']} s</p>"]
        for role in sorted(self.cases):
            x = s[role]
            parts.append(f"<h2>{role} under test</h2><p>defects caught {x['defects_caught']}/{x['defects']}; cases killed "
                         f"{x['cases_killed']}/{x['cases']} (mutation score {x['mutation_score_pct']} %)"
                         + (f"; uncaught: {escape(', '.join(x['uncaught']))}" if x["uncaught"] else "")
                         + (f"; surviving cases: {escape(', '.join(x['survivors']))}" if x["survivors"] else "") + "</p>")
            rows = [r for r in self.rows if r.role == role]
            parts.append("<table><tr><th>defect</th><th>what</th><th>run</th><th>fail</th><th>pass</th><th>exit</th>"
                         "<th>caught</th><th>killed cases</th></tr>")
            for r in rows:
                parts.append(f"<tr><td>{escape(r.defect)}</td><td>{escape(r.what)}</td><td>{len(r.verdicts)}</td>"
                             f"<td>{len(r.killed)}</td><td>{len(r.passed)}</td><td>{r.exit_status}</td>"
                             f"<td class={'k' if self.caught(r) else 'p'}>{'yes' if self.caught(r) else 'NO'}</td>"
                             f"<td>{escape(' '.join(sorted(r.killed))[:600])}</td></tr>")
            parts.append("</table>")
        return "\n".join(parts)


OUT_OF_REACH = ("link",)
"""Tags of cases no V2G defect can reach: the link-layer cases (SLAC, control pilot) drive
simulated modems and pilots, not the SUT's V2GTP endpoint.  They are outside the mutation
universe (they have their own proofs) and not run against the defects."""


def catalogue(role: str) -> list[Any]:
    """The cases of ``role`` (whichever module holds the selection)."""
    import conformance.cases as cases

    return list(cases.select(role=role))


def universe(role: str) -> list[Any]:
    """The cases the matrix must kill: not the link-layer ones, and no DIN / -2 case of a protocol
    our SECC does not serve (no defect of ours can speak it: such a case is never counted)."""
    from conformance.local import unserved

    return [c for c in catalogue(role) if not set(OUT_OF_REACH) & set(c.tags) and not unserved(c)]


def _select(globs: tuple[str, ...], role: str, legacy: bool = False) -> list[Any]:
    """The cases of ``universe`` matching ``globs``; the DIN / -2 cases only for the DIN / -2
    defects (``legacy``), whose proxy speaks those protocols."""
    out = []
    for c in universe(role):
        if ("legacy" in c.tags) != legacy:
            continue
        for g in globs:
            if fnmatch.fnmatchcase(c.id, g):
                if "long" in c.tags and any(ch in g for ch in "*?["):
                    continue  # long cases only when named
                out.append(c)
                break
    return out


async def _secc_row(name: str, pki_dir: Path) -> Row:
    from conformance.faults import SECC_DEFECTS, ZERO_PASS, start_secc_defect
    from conformance.faults_legacy import LEGACY_DEFECTS, legacy_row
    from conformance.runner import run_campaign

    t0 = time.monotonic()
    if name in LEGACY_DEFECTS:
        verdicts, reasons, status = await legacy_row(name, [c.id for c in _select(LEGACY_DEFECTS[name].cases, "SECC", True)])
        return Row(name, "SECC", LEGACY_DEFECTS[name].what, verdicts, reasons, status, time.monotonic() - t0)
    d = SECC_DEFECTS[name]
    sut, close = await start_secc_defect(name, pki_dir)
    try:
        if name in ZERO_PASS:  # the whole SECC catalogue, long and TLS cases included
            cases = catalogue("SECC")
        else:
            cases = _select(d.cases, "SECC")
        if not d.tls and name not in ZERO_PASS:
            cases = [c for c in cases if "tls" not in c.needs]
        camp = await run_campaign([sut], cases, probe=False)
    finally:
        close()
    return Row(name, "SECC", d.what, {r.case_id: r.verdict.value for r in camp.results},
               {r.case_id: r.reason for r in camp.results}, camp.exit_status(), time.monotonic() - t0)


async def _evcc_row(name: str, pki_dir: Path) -> Row:
    from conformance.faults import EVCC_DEFECTS, defective_evcc_launcher
    from conformance.faults_legacy import LEGACY_EV_DEFECTS, legacy_ev_row
    from conformance.runner import run_campaign
    from conformance.sut import SutEndpoint

    t0 = time.monotonic()
    if name in LEGACY_EV_DEFECTS:
        verdicts, reasons, status = await legacy_ev_row(name, [c.id for c in _select(LEGACY_EV_DEFECTS[name].cases, "EVCC", True)])
        return Row(name, "EVCC", LEGACY_EV_DEFECTS[name].what, verdicts, reasons, status, time.monotonic() - t0)
    d = EVCC_DEFECTS[name]
    launch = defective_evcc_launcher(name, tls_pki=pki_dir)
    sut = SutEndpoint.evcc(launch, f"defect-evcc:{name}")
    sut.evcc_tls_launcher = launch
    sut.evcc_pki = pki_dir
    sut.jobs = 8
    cases = _select(d.cases, "EVCC")
    camp = await run_campaign([sut], cases, probe=False)
    return Row(name, "EVCC", d.what, {r.case_id: r.verdict.value for r in camp.results},
               {r.case_id: r.reason for r in camp.results}, camp.exit_status(), time.monotonic() - t0)


def _worker(batch: list[tuple[str, str]], concurrency: int) -> list[Row]:
    from iso15118.security.pki import create_pki

    pki = create_pki(tempfile.mkdtemp(prefix="mutation-pki-"), "secp521r1").root

    async def main() -> list[Row]:
        sem = asyncio.Semaphore(concurrency)

        async def one(role: str, name: str) -> Row:
            async with sem:
                return await (_secc_row(name, pki) if role == "SECC" else _evcc_row(name, pki))

        return list(await asyncio.gather(*(one(r, n) for r, n in batch)))

    return asyncio.run(main())


COST = {"legacy-ev-hangs": 30, "legacy-short-sequence-timeout": 25, "legacy-always-ok": 20, "legacy-precharge-stuck": 20,
        "no-sequence-timeout": 90, "no-idle-timeout": 30, "no-timeouts": 60, "slow-start": 40, "never-closes": 40,
        "stale-answers": 30, "late-session-setup": 40, "power-on-after-abort": 25, "silent-after-accept": 5}


def run_matrix(secc: list[str] | None = None, evcc: list[str] | None = None, *, jobs: int = 2,
               concurrency: int = 3) -> Matrix:
    """The defect x case matrix (``secc`` / ``evcc``: defect names, None = all)."""
    from conformance.faults import EVCC_DEFECTS, SECC_DEFECTS, ZERO_PASS
    from conformance.faults_legacy import LEGACY_DEFECTS, LEGACY_EV_DEFECTS

    # a DIN / -2 defect runs only when our SECC serves a protocol of its cases
    all_secc = list(SECC_DEFECTS) + [n for n, d in LEGACY_DEFECTS.items() if _select(d.cases, "SECC", True)]
    work = [("SECC", n) for n in (secc if secc is not None else all_secc)]
    all_evcc = list(EVCC_DEFECTS) + [n for n, d in LEGACY_EV_DEFECTS.items() if _select(d.cases, "EVCC", True)]
    work += [("EVCC", n) for n in (evcc if evcc is not None else all_evcc)]
    work.sort(key=lambda w: -COST.get(w[1], 15))
    batches: list[list[tuple[str, str]]] = [[] for _ in range(max(1, jobs))]
    loads = [0.0] * len(batches)
    for w in work:  # longest first onto the least loaded worker
        i = loads.index(min(loads))
        batches[i].append(w)
        loads[i] += COST.get(w[1], 15) / concurrency
    t0 = time.monotonic()
    rows: list[Row] = []
    if jobs <= 1:
        rows = _worker(work, concurrency)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for rs in ex.map(_worker, [b for b in batches if b], [concurrency] * len(batches)):
                rows += rs
    roles = {r for r, _ in work}
    cases = {role: [c.id for c in universe(role)] for role in roles}
    order = {n: i for i, (_, n) in enumerate([("SECC", n) for n in all_secc] + [("EVCC", n) for n in all_evcc])}
    rows.sort(key=lambda r: (r.role != "SECC", order.get(r.defect, 999)))
    return Matrix(rows, cases, ZERO_PASS, time.monotonic() - t0)


_ = os
