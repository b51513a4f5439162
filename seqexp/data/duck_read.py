"""The duckdb engine's reading: a DuckDB session with bounded memory, and the log as a table `raw`.

`raw` holds the mapped columns as the arrow readers give them (`u`, `i`, `t`, `b`: ids and behaviours as text,
empty fields as ''; parquet values as stored), in file order, so that `raw.rowid` is the index of a row in
the arrow engine's table. Malformed rows (wrong number of fields) are skipped and counted through DuckDB's
rejects table (`store_rejects`); blank lines, which DuckDB skips silently but pyarrow counts as malformed,
are found by a scan of the bytes: pyarrow reads a blank line as a row of empty fields (which missing_value
drops), so they count as rows that DuckDB never shows. A row's file line is computed from the lines DuckDB did
not return, only for the report's examples (`line_of`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqexp.data.columns import WHOLE_FLOAT_LIMIT
from seqexp.data.readers.raw_log import MalformedRow, check_columns, wanted_columns
from seqexp.data.readers.source import first_line, open_stream
from seqexp.errors import DataError

THREADS = 2  # this machine's cores; DuckDB's default would take every core of a bigger one
MEMORY_LIMIT_GB = 3.0  # DuckDB's buffer pool (spills beyond it): 100M events peak under 6 GB RSS with it
SHORT = {"user": "u", "item": "i", "timestamp": "t", "behavior": "b"}
FOUND = re.compile(r"Found:\s*(\d+)")


@dataclass
class RawSource:
    n_rows: int  # rows in `raw`
    columns: list[str]  # of u, i, t, b: the mapped ones
    first_data_line: int  # 1-based line of the first data row (parquet: row 1)
    malformed: list[MalformedRow] = field(default_factory=list)  # the first few, in file order
    malformed_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # every one, sorted
    blank_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows of '' (see above)
    t_type: str = "VARCHAR"  # DuckDB type of the raw timestamp column

    @property
    def n_malformed(self) -> int:
        return len(self.malformed_lines)

    def line_of(self, k: np.ndarray) -> np.ndarray:
        """File line of kept rows k (indices into `raw`), as pyarrow's reader numbers them."""
        s = np.sort(np.concatenate([self.malformed_lines, self.blank_lines]))
        at_kept_index = s - self.first_data_line - np.arange(len(s))
        return k + self.first_data_line + np.searchsorted(at_kept_index, k, side="right")


def connect(workdir: Path) -> Any:
    """A DuckDB database file in `workdir` (deleted with it): memory limited, spilling under workdir/spill."""
    import duckdb

    con = duckdb.connect(str(workdir / "prepare.duckdb"))
    limit = min(MEMORY_LIMIT_GB, 0.4 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    con.execute(f"SET memory_limit = '{limit:.2f}GB'")
    con.execute(f"SET temp_directory = '{workdir / 'spill'}'")
    con.execute(f"SET threads = {THREADS}")
    con.execute("SET preserve_insertion_order = true")  # row order = file order (ties keep it)
    con.execute("SET enable_progress_bar = false")  # DuckDB would draw its own bar on stdout, into logs
    return con


def load_raw(con: Any, path: Path, s: dict[str, Any]) -> RawSource:
    wanted = wanted_columns(s["columns"])
    if (s["format"] or "csv") == "parquet":
        return _load_parquet(con, path, wanted)
    return _load_delimited(con, path, wanted, s)


def _load_parquet(con: Any, path: Path, wanted: dict[str, str]) -> RawSource:
    from seqexp.data.readers.parquet import read_parquet_schema

    check_columns(path, wanted, read_parquet_schema(path))
    types = pq.read_schema(path)
    select = []
    for canon, col in wanted.items():
        ident = _ident(col)
        value = ident if canon == "timestamp" else _as_varchar(ident, types.field(col).type)
        select.append(f"{value} AS {SHORT[canon]}")
    try:
        con.execute(f"CREATE TABLE raw AS SELECT {', '.join(select)} FROM read_parquet({_lit(path)})")
    except Exception as e:  # duckdb raises its own exception types for damaged files
        raise DataError(f"{path}: the parquet data is damaged ({e}); rewrite or re-download the file") from e
    src = RawSource(_count(con), [SHORT[c] for c in wanted], 1)
    if "timestamp" in wanted:
        src.t_type = con.execute("SELECT typeof(t) FROM raw LIMIT 1").fetchall()[0][0]
    return src


def _as_varchar(ident: str, arrow_type: pa.DataType) -> str:
    """SQL writing a column as text as `columns.as_text` does: whole floats as their digits (DuckDB writes 12.0 as
    `12.0`, which the arrow engine read as `12` and 10000000013.0 as `1.0000000013e+10`)."""
    if not pa.types.is_floating(arrow_type):
        return f"CAST({ident} AS VARCHAR)"
    x = f"CAST({ident} AS DOUBLE)"
    whole = f"{x} = trunc({x}) AND abs({x}) <= {int(WHOLE_FLOAT_LIMIT)}"
    return f"CASE WHEN {whole} THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) ELSE CAST({x} AS VARCHAR) END"


def _load_delimited(con: Any, path: Path, wanted: dict[str, str], s: dict[str, Any]) -> RawSource:
    from seqexp.data.readers.delimited import file_columns, refuse_repeated_columns

    sep = "\t" if s["format"] == "tsv" else s["sep"] or ","
    sep = sep.encode().decode("unicode_escape") if "\\" in sep else sep
    header = s["header"] if s["header"] is not None else True
    encoding = s["encoding"] or "utf-8"
    first = first_line(path, encoding)
    columns = file_columns(path, first, sep, header, s["names"])
    check_columns(path, wanted, columns, first_line=first, sep=sep)
    refuse_repeated_columns(path, wanted, columns, header)
    first_data_line = 2 if header else 1
    names = {f"c{j}": "VARCHAR" for j in range(len(columns))}
    select = [f"coalesce(c{columns.index(col)}, '') AS {SHORT[canon]}" for canon, col in wanted.items()]
    latin = encoding.lower().replace("-", "").replace("_", "") in ("latin1", "iso88591")
    options = (
        f"columns = {names}, header = false, skip = {first_data_line - 1}, delim = {_lit(sep)}, quote = '\"', "
        f"escape = '\"', auto_detect = false, ignore_errors = true, store_rejects = true, "
        f"null_padding = false, encoding = '{'latin-1' if latin else 'utf-8'}'"
    )
    try:
        con.execute(f"CREATE TABLE raw AS SELECT {', '.join(select)} FROM read_csv({_lit(path)}, {options})")
    except Exception as e:
        raise DataError(f"{path}: {str(e).splitlines()[0]}; check data.sep={sep!r} and data.header") from e
    src = RawSource(_count(con), [SHORT[c] for c in wanted], first_data_line)
    _malformed(con, src, path, len(columns), first_data_line)
    return src


def _malformed(con: Any, src: RawSource, path: Path, n_columns: int, first_data_line: int) -> None:
    """Rows DuckDB rejected plus blank lines (pyarrow reads a blank line as a row of one empty field)."""
    query = "SELECT line, error_type, csv_line, error_message FROM reject_errors ORDER BY line"
    rejects = con.execute(query).fetchall()
    found: dict[int, MalformedRow] = {}
    for line, kind, text, message in rejects:
        if "QUOTE" in kind:  # formerly "...; check data.sep, data.encoding", which is not the cause
            shown = (text or "").split("\n")[-1].rstrip("\r")[:120]
            raise DataError(
                f"{path}: line {line} ({shown!r}) has a '\"' inside a field that is not quoted as a whole, which the "
                f"duckdb engine (data.engine=duckdb, or auto on a log over 256 MiB) cannot read; quote that field "
                f"('\"\"' for a quote inside it), or set data.engine=arrow, which reads such a field leniently"
            )
        if "COLUMNS" not in kind:
            raise DataError(f"{path}: line {line}: {message.splitlines()[0]}; check data.sep, data.encoding")
        n = FOUND.search(message)
        text = (text or "").split("\n")[-1].rstrip("\r")  # DuckDB's text may start with a skipped blank line
        found[int(line)] = MalformedRow(int(line), text, f"{n.group(1) if n else '?'} field(s), expected {n_columns}")
    lines_seen = src.n_rows + len(found) + first_data_line - 1
    blank = _blank_lines(path, first_data_line, lines_seen)
    src.blank_lines = np.asarray([b for b in blank if b not in found], np.int64)
    src.malformed_lines = np.asarray(sorted(found), dtype=np.int64)
    src.malformed = [found[line] for line in src.malformed_lines[:20]]


def _blank_lines(path: Path, first_data_line: int, lines_seen: int) -> list[int]:
    """Line numbers of blank lines from first_data_line on. A first pass only counts lines: when the count matches
    the rows DuckDB read and rejected there is no blank line, and the slower second pass is skipped."""
    n_lines, tail = 0, b""
    with open_stream(path) as f:
        while chunk := f.read(64 << 20):
            n_lines, tail = n_lines + chunk.count(b"\n"), chunk[-1:]
    n_lines += 1 if tail not in (b"\n", b"") else 0
    if n_lines == lines_seen:
        return []
    blanks, line, carry = [], 1, b""
    with open_stream(path) as f:
        while True:
            chunk = f.read(64 << 20)
            data = carry + chunk
            if not data:
                return blanks
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            whole, carry = data[:cut], data[cut:]
            parts = whole.split(b"\n")
            parts = parts[:-1] if whole.endswith(b"\n") else parts
            blanks += [line + j for j, part in enumerate(parts) if part in (b"", b"\r") and line + j >= first_data_line]
            line += len(parts)
            if not chunk:
                return blanks


def _count(con: Any) -> int:
    return int(con.execute("SELECT count(*) FROM raw").fetchall()[0][0])


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"
