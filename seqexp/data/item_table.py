"""Reading the item table (data.item_side.file): delimited text with standard CSV quoting, or parquet.

Only the id column and data.item_side.columns are read, all as text: `0002` stays `0002`, as the log reader keeps
it. A quoted field (`3,"Item 3, deluxe",cat3`, as csv.writer and pandas write it) is one value without its
quotes. Rows that still cannot be split into the table's columns are skipped and reported with their line numbers
(a warning), and when more than data.max_invalid_fraction of the rows are, the run stops: the separator or the
quoting is wrong, and the side data would be mostly missing.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from seqexp.data.columns import as_text
from seqexp.data.readers.arrow_csv import Skipped, line_numbers, locate, quiet_row_handler
from seqexp.data.readers.raw_log import MalformedRow
from seqexp.data.readers.source import first_line, open_stream, unreadable
from seqexp.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ItemTable:
    table: pa.Table  # the id column and data.item_side.columns, as text
    rows: pa.Array  # (R,) int64: each row's line in the file (header = line 1), or its row number in a parquet file
    row_word: str  # "line" or "row", for messages


def read_item_table(
    path: Path, data_cfg: Mapping[str, Any], id_col: str, columns: list[str], names: list[str] | None
) -> ItemTable:
    """The id column and `columns` of the item table at `path`; a column it does not have is a DataError."""
    sep = str(data_cfg["item_side"].get("sep") or "\t")
    sep = sep.encode().decode("unicode_escape") if "\\" in sep else sep  # '\t' as data.sep reads it
    wanted = list(dict.fromkeys([id_col, *columns]))
    if path.suffix == ".parquet" or _is_parquet(path):
        return _read_parquet(path, wanted)
    if len(sep) != 1:
        raise DataError(f"data.item_side.sep={sep!r}: the item table's delimiter must be one character")
    header = _header(path, sep, names)
    _check_columns(path, wanted, header)
    table, skipped = _read_csv(path, sep, header, not names, wanted)
    first_data_line = 1 if names else 2
    _report_malformed(path, skipped, table.num_rows, sep, data_cfg.get("max_invalid_fraction"))
    return ItemTable(table, line_numbers(table.num_rows, first_data_line, skipped.lines), "line")


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def _header(path: Path, sep: str, names: list[str] | None) -> list[str]:
    if names:
        return names
    return [c.strip() for c in next(csv.reader([first_line(path, "utf-8")], delimiter=sep))]


def _check_columns(path: Path, wanted: list[str], have: list[str]) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} (data.item_side.id / .columns) are not in the file, whose columns are {have}"
        )


def _read_csv(
    path: Path, sep: str, header: list[str], skip_header: bool, wanted: list[str]
) -> tuple[pa.Table, Skipped]:
    """Standard CSV quoting (`"a, b"`, `""` for a quote, line breaks inside quotes); bad rows skipped and counted.
    One thread, so that pyarrow numbers the rows it skips. The columns are named by `header` (the file's names,
    stripped: `item_id, category` has a column `category`, which pyarrow alone could not find)."""
    skipped = Skipped()
    read = pacsv.ReadOptions(encoding="utf8", column_names=header, skip_rows=int(skip_header), use_threads=False)
    try:
        with open_stream(path) as stream, quiet_row_handler():
            table = pacsv.read_csv(
                stream,
                read_options=read,
                parse_options=pacsv.ParseOptions(
                    delimiter=sep,
                    quote_char='"',
                    double_quote=True,
                    newlines_in_values=True,
                    invalid_row_handler=skipped,
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=wanted,
                    column_types={c: pa.string() for c in wanted},
                    strings_can_be_null=False,
                    auto_dict_encode=False,
                ),
            )
    except pa.ArrowInvalid as e:
        msg = str(e).splitlines()[0]
        # a bad byte in a malformed row fails the read as a parse error: the byte is the cause, so look for it first
        where = locate(path, "utf-8")
        if where or "utf8" in msg.lower():
            at = f"line {where[0]} (byte {where[1]}: {where[2]!r}) is" if where else "some bytes are"
            raise DataError(f"{path}: {at} not valid UTF-8 ({msg}); re-encode the item table as UTF-8") from e
        raise DataError(f"{path}: {msg}; check data.item_side.sep={sep!r}") from e
    except (pa.ArrowException, OSError) as e:
        raise unreadable(path, e) from e
    return table, skipped


def _report_malformed(path: Path, skipped: Skipped, n_kept: int, sep: str, max_fraction: object) -> None:
    """A warning naming the skipped rows' lines, or an error when more than data.max_invalid_fraction are (lines
    an unclosed quote joined into a skipped row count as skipped)."""
    if not skipped.lines:
        return
    joined = sum(m.text.count("\n") for m in skipped.examples)
    n_bad, limit = len(skipped.lines) + joined, 0.05 if max_fraction is None else float(max_fraction)
    lines = ("lines " if len(skipped.lines) > 1 else "line ") + ", ".join(str(n) for n in skipped.lines[:10])
    lines += ", ..." if len(skipped.lines) > 10 else ""
    what = (
        f"{path}: {n_bad} of {n_bad + n_kept} rows of the item table (data.item_side.file) cannot be split into its "
        f"columns on data.item_side.sep={sep!r} ({lines}; e.g. {_example(skipped.examples[0])})"
    )
    if n_bad > limit * (n_bad + n_kept):
        raise DataError(
            f"{what}, more than data.max_invalid_fraction={limit}; check data.item_side.sep and the file's quoting "
            f'(a field holding the delimiter must be quoted: "a, b")'
        )
    log.warning("%s; those rows are skipped: their items have no side data", what)


def _example(row: MalformedRow) -> str:
    """One skipped row, and the unclosed quote that made it when there is one."""
    text = f"line {row.line}: {row.text[:120]!r}, {row.why}"
    if row.text.count('"') % 2:
        joined = row.text.count("\n")
        after = f", which joins the {joined} line(s) after it into that row" if joined else ""
        text += f"; its '\"' is never closed{after}"
    return text


def _read_parquet(path: Path, wanted: list[str]) -> ItemTable:
    import numpy as np
    import pyarrow.parquet as pq

    try:
        have = list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path} is not a readable parquet file ({e}); check data.item_side.file") from e
    _check_columns(path, wanted, have)
    try:
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: the parquet data is damaged ({e}); rewrite or re-download the file") from e
    return ItemTable(_as_text(table, path), pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)), "row")


def _as_text(table: pa.Table, path: Path) -> pa.Table:
    """Every column as text (integer ids as their digits); a list or struct column is a DataError."""
    columns = {}
    for name in table.column_names:
        try:
            columns[name] = as_text(table.column(name))
        except pa.ArrowException as e:
            raise DataError(
                f"{path}: column {name!r} (data.item_side.id / .columns) has type {table.column(name).type}, not one "
                f"value per row; map a column of plain values"
            ) from e
    return pa.table(columns)
