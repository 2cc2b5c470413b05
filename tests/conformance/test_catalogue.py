"""The catalogue itself: size, naming, required fields, coverage; the CLI's list/run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.cases import load, select

ROOT = Path(__file__).resolve().parents[2]
ID = re.compile(r"^TC_(SECC|EVCC)_[A-Za-z0-9_]+_\d{3}$")


def test_catalogue_size_and_fields() -> None:
    reg = load()
    assert len(reg) >= 60
    assert len([c for c in reg.values() if c.role == "SECC"]) >= 50
    assert len([c for c in reg.values() if c.role == "EVCC"]) >= 60
    for c in reg.values():
        assert ID.match(c.id), c.id
        assert c.title and c.purpose and c.requirement and c.steps and c.tags and c.preconditions, c.id
        assert "digest" in c.requirement or "rating" in c.requirement.lower() or "RFC" in c.requirement, c.id


def test_catalogue_covers_the_features() -> None:
    groups = {c.group for c in load().values()}
    for g in ("SAP", "SessionSetup", "Authorization", "ServiceDiscovery", "ServiceDetail", "ServiceSelection",
              "ChargeParameterDiscovery", "ScheduleExchange", "CableCheck", "PreCharge", "PowerDelivery", "ChargeLoop",
              "WeldingDetection", "SessionStop", "PauseResume", "Timing", "TLS", "V2GTP", "WallConnector", "Notification"):
        assert g in groups, g
    tags = {t for c in load().values() for t in c.tags}
    for t in ("derate", "thermal", "abort", "reserve", "v2h", "ac_bpt", "dc_bpt", "tls", "timing", "malformed", "oversized"):
        assert t in tags, t


def test_selection() -> None:
    assert [c.id for c in select(["TC_SECC_SAP_00[12]"])] == ["TC_SECC_SAP_001", "TC_SECC_SAP_002"]
    assert all("derate" in c.tags for c in select(tags=["derate"]))
    assert all(c.role == "EVCC" for c in select(role="EVCC"))


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iso15118", "conformance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_list() -> None:
    out = _cli("list", "--json", "--tag", "abort")
    assert out.returncode == 0, out.stderr
    cases = json.loads(out.stdout)
    assert cases and all("abort" in c["tags"] for c in cases)
    out = _cli("list", "--id", "TC_SECC_WC_*")
    assert out.returncode == 0 and "TC_SECC_WC_Derate_001" in out.stdout


def test_cli_run_outputs(tmp_path: Path) -> None:
    out = _cli("run", "--sut", "local:wall-connector", "--sut", "local:dc-bidi", "--id", "TC_SECC_SAP_00[12]",
               "--id", "TC_SECC_DC_CableCheck_001", "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json"),
               "--html", str(tmp_path / "r.html"), "--logs", str(tmp_path / "logs"))
    assert out.returncode == 0, out.stdout + out.stderr
    suites = ET.parse(tmp_path / "j.xml").getroot().findall("testsuite")
    assert {s.get("name") for s in suites} == {"local:wall-connector", "local:dc-bidi"}
    assert sum(int(s.get("tests")) for s in suites) == 6
    assert sum(int(s.get("skipped")) for s in suites) == 1  # CableCheck is not applicable to the AC charger
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["counts"] == {"pass": 5, "fail": 0, "inconclusive": 1, "error": 0}
    assert all(r["log"] for r in data["results"] if r["verdict"] == "pass")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert list((tmp_path / "logs").glob("*.jsonl")) and list((tmp_path / "logs").glob("*.pcap"))
