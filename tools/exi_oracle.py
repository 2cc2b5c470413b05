"""The reference EXI oracle (EXIficient, driven by ``tools/oracle/RefExi.java``), for the tests and
``tools/make_fixtures.py``.

The oracle is a Java program; a JVM start costs about a second, so :class:`Oracle` runs many jobs
in ONE JVM through the driver's ``batch`` mode: every input is written to a temporary folder, one
``java ... RefExi batch`` subprocess reads one job a line on stdin and answers ``OK <job>`` or
``ERR <job> :: <exception>`` a line on stdout.

Where the oracle lives:

1. ``$ISO15118_ORACLE_DIR`` (``tools/test`` sets it to what ``tools/oracle/build`` printed): a folder
   with ``EXICodec.jar`` and ``RefExi.class``. When set it is the only place looked at, so pointing it
   at a bogus folder makes the oracle unavailable on purpose (strict mode must then fail);
2. otherwise ``tools/oracle/build`` is run (it downloads the wheel once and compiles the driver into
   ``.cache/oracle``) and the folder it prints is used.

    >>> o = Oracle.locate()
    >>> [r.data for r in o.run([Job.encode("common", xml_bytes)])]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

OK_HOOKS: list[Callable[[int], None]] = []
"""Called with the number of documents the oracle handled in each batch (the test suite counts its proofs)."""


def _record(n: int) -> None:
    for hook in OK_HOOKS:
        hook(n)
SCHEMA_KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")


class OracleUnavailable(RuntimeError):
    """The oracle cannot run here (no Java, no javac, no build script, build failed)."""


class OracleError(RuntimeError):
    """The oracle rejected one job (its message is the Java exception)."""


@dataclass(frozen=True)
class Job:
    """One oracle job: ``op`` is ``encode`` (XML -> EXI) or ``decode`` (EXI -> XML)."""

    op: str
    schema: str
    data: bytes
    fragment: bool = False

    @classmethod
    def encode(cls, schema: str, xml: bytes | str, fragment: bool = False) -> Job:
        """A job that encodes XML text to EXI."""
        return cls("encode", schema, xml.encode("utf-8") if isinstance(xml, str) else xml, fragment)

    @classmethod
    def decode(cls, schema: str, exi: bytes, fragment: bool = False) -> Job:
        """A job that decodes EXI bytes to XML text."""
        return cls("decode", schema, exi, fragment)


@dataclass(frozen=True)
class Result:
    """The outcome of one :class:`Job`: ``data`` (the output bytes) or ``error`` (a message)."""

    job: Job
    data: bytes | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the oracle produced output."""
        return self.error is None and self.data is not None

    def unwrap(self) -> bytes:
        """The output bytes, or :class:`OracleError` with the oracle's message."""
        if not self.ok:
            raise OracleError(f"oracle {self.job.op} {self.job.schema}: {self.error}")
        assert self.data is not None
        return self.data


BUILD_SCRIPT = REPO_ROOT / "tools" / "oracle" / "build"
MAIN_CLASS = "RefExi"


def _run_build(script: Path) -> Path:
    """Runs the oracle build script; returns the folder it prints or raises with its own message."""
    try:
        proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OracleUnavailable(f"{script} did not run: {exc}") from exc
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        why = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise OracleUnavailable(f"{script} failed: {why[0]}")
    return Path(lines[-1])


def _usable(directory: Path) -> bool:
    return (directory / "EXICodec.jar").is_file() and (directory / f"{MAIN_CLASS}.class").is_file()


def locate_oracle_dir() -> Path:
    """The folder holding ``EXICodec.jar`` and ``RefExi.class``; raises :class:`OracleUnavailable`."""
    if shutil.which("java") is None:
        raise OracleUnavailable("java is not installed (apt-get install -y openjdk-17-jdk-headless; tools/test does it)")
    env_dir = os.environ.get("ISO15118_ORACLE_DIR", "").strip()
    if env_dir:
        if _usable(Path(env_dir)):
            return Path(env_dir)
        raise OracleUnavailable(f"ISO15118_ORACLE_DIR={env_dir} holds no EXICodec.jar and {MAIN_CLASS}.class "
                                f"(tools/oracle/build prints the right folder)")
    found = _run_build(BUILD_SCRIPT)
    if not _usable(found):
        raise OracleUnavailable(f"{BUILD_SCRIPT} printed {found}, which holds no EXICodec.jar and {MAIN_CLASS}.class")
    return found


class Oracle:
    """Runs EXIficient jobs in batches, one JVM per :meth:`run` call."""

    def __init__(self, directory: Path, java: str = "java", timeout: float = 600.0) -> None:
        self.directory = Path(directory)
        self.java = java
        self.timeout = timeout
        self.classpath = f"{self.directory / 'EXICodec.jar'}{os.pathsep}{self.directory}"

    @classmethod
    def locate(cls) -> Oracle:
        """The oracle found by :func:`locate_oracle_dir`."""
        return cls(locate_oracle_dir())

    # -- batch ------------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> list[Result]:
        """Runs every job in one JVM (a new JVM only if one crashes) and returns results in order."""
        results: list[Result | None] = [None] * len(jobs)
        with tempfile.TemporaryDirectory(prefix="exi-oracle-") as tmp:
            tmpdir = Path(tmp)
            lines: list[str] = []
            outs: list[Path] = []
            for i, job in enumerate(jobs):
                if job.schema not in SCHEMA_KEYS:
                    raise ValueError(f"unknown schema key {job.schema!r}")
                if job.op not in ("encode", "decode"):
                    raise ValueError(f"unknown op {job.op!r}")
                src = tmpdir / f"{i}.in"
                dst = tmpdir / f"{i}.out"
                src.write_bytes(job.data)
                outs.append(dst)
                line = f"{job.op} {job.schema} {src} {dst}" + (" fragment" if job.fragment else "")
                lines.append(line)
            pending = list(range(len(jobs)))
            silent = 0
            while pending:
                answered, stderr = self._batch(pending, lines, outs, jobs, results)
                pending = [i for i in pending if results[i] is None]
                if not pending:
                    break
                silent = silent + 1 if answered == 0 else 0
                if silent >= 2:
                    raise OracleUnavailable(f"oracle JVM answers nothing: {stderr[-500:]}")
                # The JVM died on pending[0] (a java.lang.Error the driver does not catch):
                # record it and go on with the rest in a new JVM.
                first = pending.pop(0)
                results[first] = Result(jobs[first], error=f"oracle JVM died on this job: {stderr[-300:]}")
        done = [r for r in results if r is not None]
        _record(sum(r.ok for r in done))
        return done

    def _batch(self, idx: list[int], lines: list[str], outs: list[Path], jobs: Sequence[Job],
               results: list[Result | None]) -> tuple[int, str]:
        """One JVM over the jobs ``idx``; fills ``results``; returns (jobs answered, stderr)."""
        stdin = "\n".join(lines[i] for i in idx) + "\n"
        try:
            proc = subprocess.run(
                [self.java, "-Xss16m", "-cp", self.classpath, MAIN_CLASS, "batch"],
                input=stdin, capture_output=True, text=True, encoding="utf-8", errors="replace",
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired as exc:  # pragma: no cover - environment failure
            raise OracleUnavailable(f"oracle batch timed out after {self.timeout} s") from exc
        by_line: dict[str, str] = {}
        for out_line in proc.stdout.splitlines():
            if out_line.startswith("OK "):
                by_line[out_line[3:].strip()] = ""
            elif out_line.startswith("ERR "):
                job_line, _, message = out_line[4:].partition(" :: ")
                by_line[job_line.strip()] = message.strip() or "error"
        answered = 0
        for i in idx:
            if lines[i] not in by_line:
                continue
            answered += 1
            message = by_line[lines[i]]
            if message:
                results[i] = Result(jobs[i], error=message)
            elif outs[i].is_file():
                results[i] = Result(jobs[i], data=outs[i].read_bytes())
            else:
                results[i] = Result(jobs[i], error="oracle reported OK but wrote no output")
        return answered, proc.stderr or ""

    def encode_then_decode(self, items: Sequence[tuple[str, bytes | str, bool]]) -> list[tuple[Result, Result]]:
        """Encodes ``(schema, xml, fragment)`` items, then decodes the oracle's own bytes, in ONE JVM.

        Returns ``(encode result, decode result)`` per item; a failed encode gives a failed decode.
        """
        n = len(items)
        with tempfile.TemporaryDirectory(prefix="exi-oracle-") as tmp:
            tmpdir = Path(tmp)
            lines: list[str] = []
            for i, (schema, xml, fragment) in enumerate(items):
                if schema not in SCHEMA_KEYS:
                    raise ValueError(f"unknown schema key {schema!r}")
                (tmpdir / f"{i}.xml").write_bytes(xml.encode("utf-8") if isinstance(xml, str) else xml)
                frag = " fragment" if fragment else ""
                lines.append(f"encode {schema} {tmpdir / f'{i}.xml'} {tmpdir / f'{i}.exi'}{frag}")
            for i, (schema, _xml, fragment) in enumerate(items):
                frag = " fragment" if fragment else ""
                lines.append(f"decode {schema} {tmpdir / f'{i}.exi'} {tmpdir / f'{i}.back.xml'}{frag}")
            stdin = "\n".join(lines) + "\n"
            proc = subprocess.run(
                [self.java, "-Xss16m", "-cp", self.classpath, MAIN_CLASS, "batch"],
                input=stdin, capture_output=True, text=True, encoding="utf-8", errors="replace",
                timeout=self.timeout,
            )
            status: dict[str, str] = {}
            for out_line in proc.stdout.splitlines():
                if out_line.startswith("OK "):
                    status[out_line[3:].strip()] = ""
                elif out_line.startswith("ERR "):
                    job_line, _, message = out_line[4:].partition(" :: ")
                    status[job_line.strip()] = message.strip() or "error"
            if not status:
                raise OracleUnavailable(f"oracle JVM answers nothing: {proc.stderr[-500:]}")
            out: list[tuple[Result, Result]] = []
            for i, (schema, xml, fragment) in enumerate(items):
                data = xml.encode("utf-8") if isinstance(xml, str) else xml
                ej = Job.encode(schema, data, fragment)
                enc_msg = status.get(lines[i])
                if enc_msg is None:
                    er = Result(ej, error="no answer (oracle JVM died)")
                elif enc_msg:
                    er = Result(ej, error=enc_msg)
                else:
                    er = Result(ej, data=(tmpdir / f"{i}.exi").read_bytes())
                dj = Job.decode(schema, er.data or b"", fragment)
                dec_msg = status.get(lines[n + i])
                if not er.ok:
                    dr = Result(dj, error="not decoded: encode failed")
                elif dec_msg is None:
                    dr = Result(dj, error="no answer (oracle JVM died)")
                elif dec_msg:
                    dr = Result(dj, error=dec_msg)
                else:
                    dr = Result(dj, data=(tmpdir / f"{i}.back.xml").read_bytes())
                out.append((er, dr))
            _record(sum(er.ok for er, _ in out))
            return out

    # -- conveniences -----------------------------------------------------------------------
    def encode_many(self, items: Iterable[tuple[str, bytes | str, bool]]) -> list[Result]:
        """Encodes ``(schema, xml, fragment)`` items in one batch."""
        return self.run([Job.encode(s, x, f) for s, x, f in items])

    def decode_many(self, items: Iterable[tuple[str, bytes, bool]]) -> list[Result]:
        """Decodes ``(schema, exi, fragment)`` items in one batch."""
        return self.run([Job.decode(s, d, f) for s, d, f in items])

    def encode(self, schema: str, xml: bytes | str, fragment: bool = False) -> bytes:
        """Encodes one document (one JVM start: prefer :meth:`run` for many)."""
        return self.run([Job.encode(schema, xml, fragment)])[0].unwrap()

    def decode(self, schema: str, exi: bytes, fragment: bool = False) -> bytes:
        """Decodes one stream (one JVM start: prefer :meth:`run` for many)."""
        return self.run([Job.decode(schema, exi, fragment)])[0].unwrap()


_SESSION_ORACLE: Oracle | None = None
_SESSION_REASON: str | None = None


def session_oracle() -> Oracle:
    """The process-wide oracle; raises :class:`OracleUnavailable` with the reason."""
    global _SESSION_ORACLE, _SESSION_REASON
    if _SESSION_ORACLE is not None:
        return _SESSION_ORACLE
    if _SESSION_REASON is not None:
        raise OracleUnavailable(_SESSION_REASON)
    try:
        _SESSION_ORACLE = Oracle.locate()
    except OracleUnavailable as exc:
        _SESSION_REASON = str(exc)
        raise
    return _SESSION_ORACLE


