"""The optional compiled (mypyc) build of the capture pipeline's hot modules: which modules, and
the import hook that runs them compiled only while they are fresh.

``tools/build_native`` (run by ``tools/_env.sh``) compiles :data:`MODULES` with mypyc into
extension modules next to their sources, plus one shared library per group (:data:`GROUPS`), and
writes :data:`STAMP`: the sha256 of each compiled module's source and of this module.  :func:`install` (called by
``iso15118/__init__.py``) puts :class:`_Finder` first on ``sys.meta_path``: for each of
:data:`MODULES` it loads the extension module when every stamped source still matches (the
modules of a build share their classes, so they run compiled all together or not at all), and
the ``.py`` source otherwise, with one warning on stderr when a build exists but is stale (a
source was edited after the build).  ``ISO15118_PURE=1`` forces the ``.py`` sources everywhere.
The pure-Python modules are the reference: the compiled ones give byte-identical output
(tests/capture/test_native.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec, SourceFileLoader
from importlib.util import spec_from_file_location
from types import ModuleType

__all__ = ["GROUPS", "MODULES", "PURE_ENV", "STAMP", "install", "native_in_use", "status"]

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the capture pipeline: file -> frames -> TCP -> V2GTP -> events
    ("iso15118._native_capture", (
        "iso15118.capture.pcapio",
        "iso15118.capture.packets",
        "iso15118.capture.reassembly",
        "iso15118.capture.framing",
        "iso15118.capture.limits",
        "iso15118.capture.physical",
        "iso15118.capture.events",
        "iso15118.capture.analyzer",
    )),
    # the generated codecs' runtime helpers (functions only).  Not exi.tree: its Element, compiled,
    # is made ~15 % faster by the codecs but read ~3x slower (a getset descriptor instead of a slot)
    # by every interpreted reader (encoders, the typed messages, the leaf walk of the dataset)
    ("iso15118._native_exi", ("iso15118.exi.fastrt",)),
)
"""mypyc groups: (shared library, modules).  Calls inside a group are C calls; the groups are
compiled in parallel (``build_ext --parallel``).  Each group's shared library is ``<name>__mypyc<suffix>`` in ``iso15118/``."""

MODULES: tuple[str, ...] = tuple(m for _g, mods in GROUPS for m in mods)
"""Every compiled module."""

PURE_ENV = "ISO15118_PURE"
"""Set (to anything but ``""`` / ``0``): the pure-Python modules everywhere."""

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_PKG_DIR)
STAMP = os.path.join(_PKG_DIR, "_native.stamp")
"""``sha256sum`` format (``<hex>  <path relative to the repository root>``), one line a module."""


def source_path(module: str) -> str:
    return os.path.join(_ROOT, *module.split(".")) + ".py"


def extension_path(module: str) -> str:
    """The compiled module's file (this interpreter's extension suffix)."""
    return os.path.join(_ROOT, *module.split(".")) + EXTENSION_SUFFIXES[0]


def artefact_modules() -> list[str]:
    """The extension modules a build makes: one per compiled module, one shared library per group."""
    return [*MODULES, *(g + "__mypyc" for g, _m in GROUPS)]


def stamp_lines() -> list[str]:
    """The stamp the current sources call for (what the build writes)."""
    import hashlib

    lines = []
    for path in (*(source_path(m) for m in MODULES), os.path.abspath(__file__)):  # this module: the groups
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        lines.append(f"{digest}  {os.path.relpath(path, _ROOT)}")
    return lines


def _pure_forced() -> bool:
    return os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "no", "false")


def build_state() -> str | None:
    """None when the native build is there and matches the current sources; else why not."""
    if not os.path.exists(STAMP):
        return "no native build (tools/build_native)"
    missing = [m for m in artefact_modules() if not os.path.exists(extension_path(m))]
    if missing:
        return f"native build incomplete ({', '.join(missing)} not built for this interpreter)"
    try:
        with open(STAMP, encoding="utf-8") as f:
            built = f.read().splitlines()
        want = stamp_lines()
    except OSError as exc:
        return f"native build unreadable ({exc})"
    if built != want:
        changed = sorted({line.split()[-1] for line in set(want) ^ set(built)})
        return f"stale: {', '.join(changed)} changed since the native build (tools/build_native)"
    return None


def status() -> str:
    """``native``, or why the pure-Python modules are used (``pure: ...`` / ``stale: ...``)."""
    if _pure_forced():
        return f"pure: {PURE_ENV} set"
    why = build_state()
    if why is None:
        return "native"
    return why if why.startswith("stale") else f"pure: {why}"


class _Finder:
    """Loads :data:`MODULES` compiled or pure, as :func:`status` decides once per process (a meta path
    finder: only ``find_spec``; ``importlib.abc`` is not imported, it costs ~10 ms at start-up)."""

    def __init__(self) -> None:
        self._status: str | None = None

    def decision(self) -> str:
        if self._status is None:
            self._status = status()
            if self._status.startswith("stale"):
                print(f"iso15118: {self._status}; using the pure-Python modules", file=sys.stderr)
        return self._status

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in _MODULE_SET:
            return None
        if self.decision() == "native":
            so = extension_path(fullname)
            return spec_from_file_location(fullname, so, loader=ExtensionFileLoader(fullname, so))
        py = source_path(fullname)
        return spec_from_file_location(fullname, py, loader=SourceFileLoader(fullname, py))


_MODULE_SET = frozenset(MODULES)
_finder = _Finder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def native_in_use() -> bool:
    """True when this process loads (or loaded) the compiled modules."""
    return _finder.decision() == "native"
