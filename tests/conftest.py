"""Suite-wide hooks: strict mode and the proof counts.

Strict mode (``tools/test --strict``, or ``ISO15118_STRICT=1``; ``.ci/run`` uses it): a test that
would be skipped FAILS instead, with the skip's reason, because every skip in this suite means that a
proof could not run (no Java for the reference oracle, the Josev peer not set up, no tcpdump / dumpcap,
no Chromium, ...). The only exception is a test marked ``@pytest.mark.optional("why")``: its skip is
allowed, the reason stays in the summary. Outside strict mode skips stay skips, reason shown (``-ra``).

At the end of every run the proof counts recorded through :func:`tests.proofs.record` are printed
(documents compared with the oracle, peer sessions, captures checked, ...).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from tests import proofs
from tests.peer import josev_pki, peer_env  # noqa: F401  (session fixtures for every test package)


class _ProofsFromWorkers:
    """With pytest-xdist (``tools/test`` runs the suite on several workers) each worker counts its
    own proofs; they travel to the controller in ``workeroutput`` and are added up there."""

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        for kind, n in json.loads(getattr(node, "workeroutput", {}).get("iso15118_proofs", "{}")).items():
            proofs.record(kind, n)


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: hand the counts to the controller
        output["iso15118_proofs"] = json.dumps(proofs.counts())


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_ProofsFromWorkers(), "iso15118-proofs-from-workers")
    for line in (
        "oracle: needs the reference EXI oracle (Java; tools/oracle/build)",
        "peer: needs the independent Josev peer (its own venv; tools/peer/setup)",
        "optional(reason): this test may skip even in strict mode (not a proof)",
    ):
        config.addinivalue_line("markers", line)


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _strict_failure(reason: str) -> str:
    return (f"strict mode (ISO15118_STRICT=1): this proof could not run, and a proof that cannot run fails "
            f"instead of skipping. Skip reason: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    if not (rep.skipped and proofs.strict()) or hasattr(rep, "wasxfail"):
        return
    if item.get_closest_marker("optional") is not None:
        return
    rep.outcome = "failed"
    rep.longrepr = _strict_failure(_skip_reason(rep.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and proofs.strict():  # a whole module skipped at import time
        rep.outcome = "failed"
        rep.longrepr = _strict_failure(_skip_reason(rep.longrepr))


def pytest_report_header(config: pytest.Config) -> str:
    if proofs.strict():
        return "strict mode: a test that cannot run its proof fails instead of skipping"
    return "not strict: a test whose tool is missing skips with the reason (tools/test --strict makes it fail)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return
    counts = proofs.counts()
    terminalreporter.section("proofs run")
    width = max(len(str(v)) for v in counts.values()) if counts else 1
    for kind, n in counts.items():
        terminalreporter.write_line(f"{n:>{width}}  {kind}")
