"""Compile the capture pipeline's hot modules with mypyc (iso15118/_native.py lists them), in place.

    tools/build_native [--force] [--quiet]

Rebuilds only when a compiled module's source changed since the last build (the stamp), unless
``--force``.  The extension modules land next to their ``.py`` sources (the editable install finds
them there), one shared library per group as ``iso15118/_native_<group>__mypyc<suffix>``, the C sources and
objects under ``build/native/``.  A failed build (no C compiler, a mypyc error) leaves no compiled
module behind: it prints one line and the pure-Python modules are used.  ``--quiet`` (how
``tools/_env.sh`` runs it) prints nothing when the build is fresh and one line otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import shutil
import sys
import time
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iso15118 import _native  # noqa: E402

BUILD = ROOT / "build" / "native"


def _clean() -> None:
    """Remove the build, and every extension module in the package: a module dropped from the
    list must not leave its old compiled copy behind (the import system prefers it to the .py)."""
    Path(_native.STAMP).unlink(missing_ok=True)  # first: a half-removed build is never "fresh"
    for suffix in EXTENSION_SUFFIXES:
        for p in (ROOT / "iso15118").rglob(f"*{suffix}"):
            p.unlink(missing_ok=True)


def _mypy_config() -> Path:
    """The type check mypyc compiles from: pyproject.toml's (strict), without its exclusion of the
    generated codecs."""
    p = BUILD / "mypy.ini"
    generated = [m for m in _native.MODULES if m.rsplit(".", 1)[-1].startswith("_fast_")]
    p.write_text("[mypy]\npython_version = 3.11\nstrict = True\nignore_missing_imports = True\n"
                 "warn_unused_ignores = False\n"
                 # the generated codecs reuse locals with other types and read ``Element | str``
                 # children as elements (a str there raises, as in Python, and the codec falls back)
                 f"[mypy-{','.join(generated) or 'iso15118.exi._fast_none'}]\nallow_redefinition = True\n"
                 "disable_error_code = union-attr, arg-type, operator, assignment\n", encoding="utf-8")
    return p


def _stage() -> Path:
    """A copy of the package's sources to compile from.  The generated codecs say
    ``# mypy: ignore-errors``: mypy then leaves their function bodies unchecked, and mypyc compiles
    an unchecked body to an abort; the copies drop that line (the codecs are strict-clean)."""
    src = BUILD / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(ROOT / "iso15118", src / "iso15118",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc", "*.stamp"))
    for m in _native.MODULES:
        p = src / Path(_native.source_path(m)).relative_to(ROOT)
        text = p.read_text(encoding="utf-8")
        p.write_text(text.replace("\n# mypy: ignore-errors\n", "\n"), encoding="utf-8")
    return src


def _build(log: io.TextIOBase) -> None:
    from mypyc.build import mypycify
    from setuptools import Distribution

    src = _stage()
    config = _mypy_config()
    os.chdir(src)
    paths = [os.path.relpath(_native.source_path(m), ROOT) for m in _native.MODULES]
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # type: ignore[type-var]
        exts = mypycify(
            [f"--config-file={config}", f"--cache-dir={BUILD / 'mypy_cache'}", *paths],
            opt_level="3",
            separate=[([os.path.relpath(_native.source_path(m), ROOT) for m in mods], name)
                      for name, mods in _native.GROUPS],
            target_dir=str(BUILD / "c"),
        )
        # setuptools' Distribution without setup(): setup() would read a pyproject.toml
        dist = Distribution({"name": "iso15118-native", "ext_modules": exts})
        dist.script_args = ["build_ext", "--inplace", "--build-temp", str(BUILD / "temp"),
                            "--build-lib", str(BUILD / "lib"), "--parallel", str(min(4, os.cpu_count() or 1))]
        dist.parse_command_line()
        dist.run_commands()
    os.chdir(ROOT)
    for m in _native.artefact_modules():
        built = src / Path(_native.extension_path(m)).relative_to(ROOT)
        if not built.exists():
            raise RuntimeError(f"the build did not produce {built.relative_to(src)}")
        tmp = Path(_native.extension_path(m) + ".tmp")
        shutil.copyfile(built, tmp)
        tmp.replace(_native.extension_path(m))  # a running process keeps its mapped copy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when the build is fresh")
    ap.add_argument("--quiet", action="store_true", help="nothing when fresh, one line otherwise")
    args = ap.parse_args()
    if not args.force and _native.build_state() is None:
        if not args.quiet:
            print("native build: fresh (nothing to do)")
        return 0
    failed = BUILD / "failed.stamp"  # the sources of a build that failed: not retried on every start
    if not args.force and failed.exists() and failed.read_text(encoding="utf-8") == "\n".join(_native.stamp_lines()) + "\n":
        print("note: the native build failed for these sources (build/native/build.log; tools/build_native --force "
              "retries): the pure-Python modules are used", file=sys.stderr)
        return 1
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two tools starting at once build once
        if not args.force and _native.build_state() is None:
            return 0
        stamp = _native.stamp_lines()  # the sources as they are when the build starts
        _clean()
        t = time.monotonic()
        log_path = BUILD / "build.log"
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                _build(log)
            except BaseException as exc:  # noqa: BLE001  (SystemExit from distutils too)
                _clean()
                lines = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                         if "error:" in ln.lower()]
                why = lines[-1].strip() if lines else f"{type(exc).__name__}: {exc}"
                failed.write_text("\n".join(stamp) + "\n", encoding="utf-8")
                print(f"note: the native (mypyc) build of the capture modules failed, the pure-Python modules are "
                      f"used: {why[:200]} (log: {log_path.relative_to(ROOT)})", file=sys.stderr)
                return 1
        Path(_native.STAMP).write_text("\n".join(stamp) + "\n", encoding="utf-8")
        failed.unlink(missing_ok=True)
    print(f"native build: {len(_native.MODULES)} modules compiled with mypyc in {time.monotonic() - t:.0f} s "
          f"(ISO15118_PURE=1 runs the pure-Python ones)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
