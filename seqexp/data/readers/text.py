"""Delimited text logs on pyarrow's CSV reader: one row per event, or one user per line (S3Rec).

Rows with the wrong number of fields (a truncated last line, a stray delimiter) are skipped by the
reader and returned as `MalformedRow`s with their line numbers, so that `prepare` counts them in the
report instead of failing on the first one or dropping them silently.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from seqexp.data.readers.raw_log import MalformedRow, RawLog, canonical_table, check_columns
from seqexp.errors import DataError

MAX_EXAMPLES = 20  # malformed rows kept as examples; all of them are counted
LINE_SPLITTER = "\x1f"  # ASCII unit separator: reading whole lines, split on a character no log holds


class _Skipped:
    """pyarrow's invalid_row_handler: count every bad row, keep a few, skip them all."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.examples: list[MalformedRow] = []

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.lines.append(row.number if row.number is not None else -1)
        if len(self.examples) < MAX_EXAMPLES:
            why = f"{row.actual_columns} field(s), expected {row.expected_columns}"
            self.examples.append(MalformedRow(row.number, row.text, why))
        return "skip"


def read_delimited(
    path: Path, wanted: dict[str, str], sep: str, header: bool, names: list[str] | None, encoding: str
) -> RawLog:
    first = first_line(path, encoding)
    if header:
        file_columns = next(csv.reader([first], delimiter=sep)) if len(sep) == 1 else first.split(sep)
        file_columns = [c.strip() for c in file_columns]
    else:
        if not names:
            raise DataError(f"{path}: data.header=false needs data.names, the list of column names in order")
        file_columns = [str(n) for n in names]
        n_fields = len(first.split(sep))
        if n_fields != len(file_columns):
            raise DataError(
                f"{path}: line 1 has {n_fields} field(s) split on data.sep={sep!r} but data.names lists "
                f"{len(file_columns)}; fix data.sep or data.names"
            )
    check_columns(path, wanted, file_columns, first_line=first, sep=sep)
    first_data_line = 2 if header else 1
    if len(sep) == 1:
        table, skipped = _read_single_char(path, wanted, sep, file_columns, first_data_line, encoding)
    else:
        table, skipped = _read_multi_char(path, wanted, sep, file_columns, first_data_line, encoding)
    rows = line_numbers(table.num_rows, first_data_line, skipped.lines)
    return RawLog(canonical_table(table, wanted, rows), skipped.examples, n_malformed=len(skipped.lines))


def read_user_lines(path: Path, sep: str, encoding: str) -> RawLog:
    """One user per line, `uid item item ...`, items in time order (the S3Rec data format)."""
    lines = _read_lines(path, encoding)
    parts = pc.split_pattern(pc.utf8_trim_whitespace(lines), sep)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    skipped = _Skipped()
    bad = np.flatnonzero(counts < 2)
    for i in bad:
        skipped.lines.append(int(i) + 1)
        if len(skipped.examples) < MAX_EXAMPLES:
            skipped.examples.append(MalformedRow(int(i) + 1, str(lines[int(i)]), "a user with no items"))
    good = np.flatnonzero(counts >= 2)
    parts = parts.take(pa.array(good))
    items = pc.list_slice(parts, 1)
    parent = pc.list_parent_indices(items).to_numpy()
    table = pa.table(
        {
            "row": pa.array(good[parent] + 1),
            "user_id": pc.list_element(parts, 0).take(pa.array(parent)),
            "item_id": pc.list_flatten(items),
        }
    )
    return RawLog(table, skipped.examples, n_malformed=len(bad))


def line_numbers(n_rows: int, first_data_line: int, skipped_lines: list[int]) -> pa.Array:
    """File line of each kept row: rows are consecutive lines except where the reader skipped one."""
    kept = np.arange(n_rows, dtype=np.int64)
    s = np.sort(np.asarray([x for x in skipped_lines if x > 0], dtype=np.int64))
    if len(s):
        at_kept_index = s - first_data_line - np.arange(len(s))  # kept index a skipped line comes before
        kept = kept + np.searchsorted(at_kept_index, kept, side="right")
    return pa.array(kept + first_data_line)


def first_line(path: Path, encoding: str) -> str:
    try:
        with open(path, encoding=encoding, newline="") as f:
            line = f.readline()
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: line 1 is not valid {encoding} ({e.reason}); re-encode the file as UTF-8 or set data.encoding"
        ) from e
    line = line.rstrip("\r\n")
    if not line.strip():
        raise DataError(f"{path}: line 1 is blank; the log must start with a header or a data row")
    return line


def _read_single_char(
    path: Path, wanted: dict[str, str], sep: str, file_columns: list[str], first_data_line: int, encoding: str
) -> tuple[pa.Table, _Skipped]:
    skipped = _Skipped()
    used = list(dict.fromkeys(wanted.values()))
    table = _arrow_csv(
        path,
        pacsv.ReadOptions(
            column_names=file_columns,
            skip_rows=first_data_line - 1,
            use_threads=False,
            encoding=_arrow_encoding(encoding),
        ),
        pacsv.ParseOptions(delimiter=sep, invalid_row_handler=skipped, ignore_empty_lines=False),
        # every mapped column as text: a type inferred from the first block would fail on a later odd value
        pacsv.ConvertOptions(include_columns=used, column_types={c: pa.string() for c in used}),
        encoding,
        sep,
    )
    return table, skipped


def _read_multi_char(
    path: Path, wanted: dict[str, str], sep: str, file_columns: list[str], first_data_line: int, encoding: str
) -> tuple[pa.Table, _Skipped]:
    """Multi-character delimiters (MovieLens-1M's `::`): read whole lines, split them on Arrow."""
    lines = _read_lines(path, encoding).slice(first_data_line - 1)
    parts = pc.split_pattern(lines, sep)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    skipped = _Skipped()
    bad = np.flatnonzero(counts != len(file_columns))
    for i in bad:
        skipped.lines.append(int(i) + first_data_line)
        if len(skipped.examples) < MAX_EXAMPLES:
            why = "blank line" if not str(lines[int(i)]) else f"{counts[i]} field(s), expected {len(file_columns)}"
            skipped.examples.append(MalformedRow(int(i) + first_data_line, str(lines[int(i)]), why))
    keep = np.setdiff1d(np.arange(len(lines)), np.asarray(skipped.lines, dtype=np.int64) - first_data_line)
    parts = parts.take(pa.array(keep))
    columns = {}
    for col in dict.fromkeys(wanted.values()):
        j = file_columns.index(col)
        columns[col] = pc.utf8_trim_whitespace(pc.list_element(parts, j)).fill_null("")
    return pa.table(columns), skipped


def _read_lines(path: Path, encoding: str) -> pa.Array:
    """Every line of the file as one string (blank lines kept, so that indices are line numbers - 1)."""
    odd: list[int | None] = []

    def unit_separator_inside(row: pacsv.InvalidRow) -> str:
        odd.append(row.number)
        return "skip"

    table = _arrow_csv(
        path,
        pacsv.ReadOptions(column_names=["line"], use_threads=False, encoding=_arrow_encoding(encoding)),
        pacsv.ParseOptions(
            delimiter=LINE_SPLITTER,
            quote_char=False,
            escape_char=False,
            ignore_empty_lines=False,
            invalid_row_handler=unit_separator_inside,
        ),
        pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False),
        encoding,
        None,
    )
    if odd:
        raise DataError(
            f"{path}: line {odd[0]} holds the control character \\x1f; remove it (it is never valid in a log)"
        )
    return table.column("line").combine_chunks()


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if encoding.lower().replace("-", "") in ("utf8",) else encoding


def _arrow_csv(
    path: Path,
    read: pacsv.ReadOptions,
    parse: pacsv.ParseOptions,
    convert: pacsv.ConvertOptions,
    encoding: str,
    sep: str | None,
) -> pa.Table:
    try:
        return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as e:
        msg = str(e)
        if "UTF8" in msg or "utf8" in msg.lower() or "decode" in msg.lower():
            raise DataError(
                f"{path}: some bytes are not valid {encoding} ({msg.splitlines()[0]}); re-encode the file as UTF-8 "
                f"or set data.encoding (e.g. latin-1)"
            ) from e
        if "Empty CSV file" in msg:
            raise DataError(f"{path} has no rows") from e
        raise DataError(f"{path}: {msg.splitlines()[0]}; check data.sep={sep!r} and data.header") from e
