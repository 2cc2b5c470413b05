"""SQL over a capture dataset with DuckDB (embedded, in this process).

:func:`connect` opens an in-memory DuckDB database whose views ``captures``, ``messages``,
``sessions`` and ``events`` read the dataset's Parquet files; :meth:`Dataset.run` runs one
statement.  duckdb is imported lazily: nothing else in the decoder needs it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
from decimal import Decimal
from typing import IO, Any

from iso15118.capture.dataset import TABLES, table_files

__all__ = ["Dataset", "QueryError", "connect", "write_result"]


class QueryError(Exception):
    """A dataset that cannot be opened, or a statement DuckDB refused (its message)."""


class Dataset:
    def __init__(self, con: Any, directory: str) -> None:
        self.con = con
        self.directory = directory

    def run(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """(column names, rows) of one statement."""
        import duckdb

        try:
            cur = self.con.execute(sql, params or [])
            if cur.description is None:
                return [], []
            cols = [d[0] for d in cur.description]
            return cols, cur.fetchall()
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip().splitlines()[0]) from None

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cols, rows = self.run(sql, params)
        return [dict(zip(cols, r)) for r in rows]


def connect(directory: str | os.PathLike[str]) -> Dataset:
    """The dataset in ``directory`` (written by ``iso15118 decode --format parquet -o DIR``)."""
    import duckdb

    d = os.fspath(directory)
    files = table_files(d)
    if not os.path.isdir(d) or not all(os.path.isfile(p) for p in files.values()):
        raise QueryError(f"{d}: not a capture dataset (expected {', '.join(t + '.parquet' for t in TABLES)})")
    con = duckdb.connect(":memory:")
    for table, path in files.items():
        quoted = path.replace("'", "''")
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet(\'{quoted}\')')
    return Dataset(con, d)


def _plain(v: Any) -> Any:
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex().upper()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def write_result(cols: list[str], rows: list[tuple[Any, ...]], fmt: str, out: IO[str]) -> None:
    """``table`` (rich), ``json`` (a list of objects) or ``csv`` (header line first)."""
    if fmt == "json":
        json.dump([{c: _plain(v) for c, v in zip(cols, r)} for r in rows], out, indent=1, default=str)
        out.write("\n")
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if v is None else _plain(v) for v in r])
    else:
        from rich.console import Console
        from rich.table import Table

        is_tty = bool(getattr(out, "isatty", lambda: False)())
        console = Console(file=out, highlight=False, width=None if is_tty else 200, no_color=not is_tty)
        t = Table(show_lines=False)
        for c in cols:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*("" if v is None else str(_plain(v)) for v in r))
        console.print(t)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
