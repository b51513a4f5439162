"""Delimited text logs (csv, tsv, any single- or multi-character delimiter): one row per event."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from seqexp.data.readers.arrow_csv import Skipped, line_numbers, read_csv, read_lines
from seqexp.data.readers.raw_log import RawLog, canonical_table, check_columns
from seqexp.data.readers.source import arrow_encoding, first_line
from seqexp.errors import DataError


def read_delimited(
    path: Path, wanted: dict[str, str], sep: str, header: bool, names: list[str] | None, encoding: str
) -> RawLog:
    first = first_line(path, encoding)
    columns = file_columns(path, first, sep, header, names)
    check_columns(path, wanted, columns, first_line=first, sep=sep)
    refuse_repeated_columns(path, wanted, columns, header)
    first_data_line = 2 if header else 1
    if len(sep) == 1:
        table, skipped = _read_single_char(path, wanted, sep, columns, first_data_line, encoding)
    else:
        table, skipped = _read_multi_char(path, wanted, sep, columns, first_data_line, encoding)
    rows = line_numbers(table.num_rows, first_data_line, skipped.lines)
    return RawLog(canonical_table(table, wanted, rows), skipped.examples, n_malformed=len(skipped.lines))


def refuse_repeated_columns(path: Path, wanted: dict[str, str], columns: list[str], header: bool = True) -> None:
    twice = sorted({c for c in wanted.values() if columns.count(c) > 1})
    if twice and not header:
        raise DataError(
            f"{path}: data.names lists {twice[0]!r} more than once ({columns}); rename the repeat in data.names "
            f"(one name per column, in order) and map the one you mean with data.columns"
        )
    if twice:
        raise DataError(
            f"{path}: the header names column(s) {twice} more than once ({columns}); rename them in the file, "
            f"or set data.header=false and data.names"
        )


def file_columns(path: Path, first: str, sep: str, header: bool, names: list[str] | None) -> list[str]:
    """The column names: the header's, or data.names (checked against line 1's field count)."""
    if header:
        columns = next(csv.reader([first], delimiter=sep)) if len(sep) == 1 else first.split(sep)
        return [c.strip() for c in columns]
    if not names:
        raise DataError(f"{path}: data.header=false needs data.names, the list of column names in order")
    columns = [str(n) for n in names]
    n_fields = len(first.split(sep))
    if n_fields != len(columns):
        raise DataError(
            f"{path}: line 1 has {n_fields} field(s) split on data.sep={sep!r} but data.names lists "
            f"{len(columns)}; fix data.sep or data.names"
        )
    return columns


def _read_single_char(
    path: Path, wanted: dict[str, str], sep: str, file_columns: list[str], first_data_line: int, encoding: str
) -> tuple[pa.Table, Skipped]:
    skipped = Skipped()
    used = list(dict.fromkeys(wanted.values()))
    table = read_csv(
        path,
        pacsv.ReadOptions(
            column_names=file_columns,
            skip_rows=first_data_line - 1,
            use_threads=False,
            encoding=arrow_encoding(encoding),
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
) -> tuple[pa.Table, Skipped]:
    """Multi-character delimiters (MovieLens-1M's `::`): read whole lines, split them on Arrow."""
    lines = read_lines(path, encoding).slice(first_data_line - 1)
    parts = pc.split_pattern(lines, sep)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    skipped = Skipped()
    bad = np.flatnonzero(counts != len(file_columns))
    for i in bad:
        why = "blank line" if not str(lines[int(i)]) else f"{counts[i]} field(s), expected {len(file_columns)}"
        skipped.add(int(i) + first_data_line, str(lines[int(i)]), why)
    keep = np.setdiff1d(np.arange(len(lines)), np.asarray(skipped.lines, dtype=np.int64) - first_data_line)
    parts = parts.take(pa.array(keep))
    columns = {}
    for col in dict.fromkeys(wanted.values()):
        j = file_columns.index(col)
        columns[col] = pc.utf8_trim_whitespace(pc.list_element(parts, j)).fill_null("")
    return pa.table(columns), skipped
