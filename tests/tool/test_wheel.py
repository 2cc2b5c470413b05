"""It installs like a library: a wheel builds from the tracked sources (PEP 517, the backend
``python -m build`` uses), installs into a fresh venv, and its ``iso15118`` command works there with
the XSDs and the grammar cache coming from the installed package, not from this tree."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAP_REQ = "8000dbab9371d3234b71d1b981899189d191818991d26b9b3a232b30020000040040"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=REPO, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def test_wheel_installs_and_runs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in tracked("pyproject.toml", "README.md", "iso15118", "conformance"):
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((REPO / rel).read_bytes())
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("*.whl")
    assert wheel.name.startswith("iso15118_bpt-"), wheel.name  # the distribution name (import name: iso15118)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (lxml, cryptography, ...) come from this test's environment, appended after
    # the new venv's own site-packages; .pth files of that folder are not run, so this tree's
    # editable install stays out of reach
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stderr[-2000:]

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["ISO15118_CACHE"] = str(tmp_path / "grammar-cache")
    cli = str(env_dir / "bin" / "iso15118")

    where = subprocess.run([str(py), "-c", "import iso15118, iso15118.exi.schemas as s; print(iso15118.__file__); "
                            "print(s.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout

    helped = subprocess.run([cli, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "exi" in helped.stdout and "decode" in helped.stdout, helped.stderr

    decoded = subprocess.run([cli, "exi", "decode", "--schema", "sap", "--hex", SAP_REQ], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert decoded.returncode == 0, decoded.stderr
    assert "supportedAppProtocolReq" in decoded.stdout and "urn:din:70121:2012:MsgDef" in decoded.stdout
    assert list((tmp_path / "grammar-cache").glob("grammars-sap-*")), "the grammar cache was written"

    again = subprocess.run([cli, "exi", "decode", "--schema", "sap", "--hex", SAP_REQ], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout == decoded.stdout  # from the cache this time
