"""The import graph of the package: one direction, no circle.

Every module of ``iso15118/`` and ``conformance/`` belongs to one layer (the longest
matching prefix in ``LAYERS``).  A module may import its own layer group and any lower
layer, never a higher one, never a sibling group of the same rank; and no chain of imports
(module level or inside functions: a lazy import is still a dependency) comes back to
where it started.  The graph is read from the sources with ``ast``, so a dependency hidden
behind ``importlib`` would not be seen: the test also refuses ``importlib`` in the package.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first.  Groups on one rank are siblings: neither may import the other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("iso15118._native",),  # the import hook of the optional compiled modules (the root installs it; stdlib only)
    ("iso15118", "iso15118.exi"),  # the root package holds __version__ and installs the import hook
    ("iso15118.messages",),
    ("iso15118.facts",),  # the protocol's facts: timers, payload types, namespaces, response codes
    ("iso15118.transport", "iso15118.security", "iso15118.link"),  # link: sans-IO pilot and SLAC cores
    ("iso15118.session",),  # sans-IO cores and their rules
    ("iso15118.session.runner", "iso15118.session.tlsconf", "iso15118.link.driver"),  # asyncio / TLS / raw-socket drivers of the cores
    ("iso15118.sim",),  # simulators, and the secc / evcc / demo commands that choose them by name
    ("iso15118.capture",),
    ("iso15118.link.stack", "iso15118.link.sniff"),  # the whole stack on an interface; recording the link
    ("conformance",),
    # each package's sub-commands: they live with their package but sit above every library layer
    ("iso15118.exi.cli", "iso15118.capture.cli", "iso15118.security.cli", "iso15118.sim.cli", "conformance.cli"),
    ("iso15118.cli",),  # the dispatcher
    ("iso15118.__main__",),
)
EXACT = {"iso15118", "iso15118._native"}
"""Groups that own only themselves (a new ``iso15118.x`` package must be given a layer)."""
PACKAGES = ("iso15118", "conformance")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import of a module of ours: ``from pkg import sub`` is an
    import of ``pkg.sub`` when that is a module, of ``pkg`` otherwise."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    yield node.lineno, sub
                elif base in MODULES:
                    yield node.lineno, base


GRAPH: dict[str, list[tuple[int, str]]] = {
    name: [(line, t) for line, t in _imports(name, path) if t != name] for name, path in MODULES.items()
}


def layer_of(module: str) -> tuple[int, str]:
    """(rank, group) of the longest layer prefix that owns ``module``."""
    best: tuple[int, str] | None = None
    for rank, groups in enumerate(LAYERS):
        for group in groups:
            if (module == group or (group not in EXACT and module.startswith(group + "."))) and (best is None or len(group) > len(best[1])):
                best = (rank, group)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_no_import_goes_up_or_sideways() -> None:
    wrong = []
    for name, edges in GRAPH.items():
        rank, group = layer_of(name)
        for line, target in edges:
            t_rank, t_group = layer_of(target)
            if t_group == group:
                continue
            if t_rank > rank:
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{line}: {name} ({group}) imports {target} ({t_group}), a higher layer")
            elif t_rank == rank:
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{line}: {name} ({group}) imports its sibling {target} ({t_group})")
    assert not wrong, "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for _, w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    assert _cycles() == []


IMPORT_MACHINERY = {"iso15118._native"}
"""The import hook: it chooses the file (compiled or ``.py``) of modules that are imported by name
elsewhere, with importlib's loaders; it imports no module of its own accord."""


def test_no_hidden_imports() -> None:
    hidden = [
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in MODULES.items()
        if name not in IMPORT_MACHINERY
        for line, text in enumerate(path.read_text().splitlines(), 1)
        if "importlib" in text or "__import__(" in text
    ]
    assert not hidden, f"imports behind importlib: {hidden}"


@pytest.mark.parametrize(
    "edges, expect",
    [
        ({"iso15118.session.runner": [(1, "iso15118.sim")]}, "higher layer"),
        ({"iso15118.transport.v2gtp": [(1, "iso15118.security.pki")]}, "sibling"),
    ],
)
def test_the_layer_check_can_fail(monkeypatch: pytest.MonkeyPatch, edges: dict[str, list[tuple[int, str]]], expect: str) -> None:
    """An upward or sideways edge, added to a copy of the graph, is reported."""
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", {**GRAPH, **edges})
    with pytest.raises(AssertionError, match=expect):
        test_no_import_goes_up_or_sideways()


def test_the_circle_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"iso15118.exi.bits": [*GRAPH["iso15118.exi.bits"], (1, "iso15118.exi.codec")]}
    monkeypatch.setattr(sys.modules[__name__], "GRAPH", {**GRAPH, **extra})
    assert any("iso15118.exi.bits" in c for c in _cycles())


def test_tools_never_import_tests() -> None:
    """``tools/`` (generators, bench, the oracle driver) stands below the test suite: it never imports ``tests``."""
    offenders = []
    for path in sorted((ROOT / "tools").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert offenders == []


def test_the_command_line_loads_no_stack_before_a_command_needs_it() -> None:
    """``iso15118`` builds its parser from every package's ``cli`` module: importing them must not
    load the session stack, the simulators or the tester (a ``decode`` worker process imports the
    command again; the stack would cost it about half a second)."""
    import subprocess

    code = ("import sys, iso15118.cli; iso15118.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('iso15118.session', 'iso15118.sim.', "
            "'conformance.tester', 'conformance.catalogue', 'iso15118.messages')) and not m.endswith('.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout
