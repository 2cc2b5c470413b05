"""The pytest plugin, driven from a separate pytest run against our SECC."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_runs_cases_from_a_foreign_suite(tmp_path: Path) -> None:
    from conformance.local import start_local_secc

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def up() -> None:
            holder["loc"] = await start_local_secc("wall-connector")
            started.set()

        loop.run_until_complete(up())
        loop.run_forever()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    assert started.wait(10)
    port = holder["loc"].server.port
    (tmp_path / "test_firmware.py").write_text(
        "import pytest\n"
        "from conformance.pytest_plugin import assert_conformance, test_conformance  # noqa: F401\n\n"
        "@pytest.mark.conformance(ids=['TC_SECC_DC_CableCheck_001'])\n"
        "def test_dc_only(conformance_result):\n"
        "    assert_conformance(conformance_result)\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "conformance.pytest_plugin", "-q", "-p", "no:cacheprovider",
             f"--conformance-sut=tcp://[::1]:{port}", "--conformance-id=TC_SECC_SAP_00[12]",
             "--conformance-id=TC_SECC_SessionSetup_001", f"--conformance-html={tmp_path / 'r.html'}",
             f"--conformance-junit={tmp_path / 'j.xml'}", "--rootdir", str(tmp_path), str(tmp_path / "test_firmware.py")],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    finally:
        loop.call_soon_threadsafe(holder["loc"].close)
        loop.call_soon_threadsafe(loop.stop)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed, 1 skipped" in out.stdout, out.stdout
    assert (tmp_path / "r.html").exists() and (tmp_path / "j.xml").exists()
