"""The canonical raw-log type every reader returns, and the column checks they share.

A `RawLog` table has the columns

    row        int64, 1-based line number in the file (header = line 1), or the row/line a record came from
    user_id    string
    item_id    string
    timestamp  the raw timestamp column (numbers or strings); absent when the log has order only
    behavior   string; absent when the log has no behaviour column

plus the malformed rows the reader skipped (wrong field count, a truncated last line), with their line numbers,
for the preparation report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from seqexp.data.columns import as_text
from seqexp.errors import DataError

CANONICAL = ("user", "item", "timestamp", "behavior")


@dataclass
class MalformedRow:
    line: int | None  # 1-based line number in the file
    text: str  # the row as it was read
    why: str  # e.g. "5 fields, expected 3"


@dataclass
class RawLog:
    table: pa.Table  # canonical columns, see the module docstring
    malformed: list[MalformedRow] = field(default_factory=list)  # examples of the rows the reader skipped
    n_malformed: int = 0  # how many rows the reader skipped
    fingerprint: str | None = None  # set by readers whose input is not one file (hf)


def canonical_table(source: pa.Table, wanted: Mapping[str, str], rows: pa.Array, path: Path | str = "") -> pa.Table:
    """Select and rename the mapped columns; ids and behaviours as strings."""
    out: dict[str, Any] = {"row": rows}
    for canon, col in wanted.items():
        name = f"{canon}_id" if canon in ("user", "item") else canon
        values = source.column(col)
        if canon != "timestamp" and not pa.types.is_string(values.type):
            try:
                values = as_text(values)
            except pa.ArrowException as e:  # a list or struct column: not one id per row
                raise DataError(
                    f"{path}: column {col!r} (data.columns.{canon}) has type {values.type}, not one value per row; "
                    f"map a column of plain ids"
                ) from e
        out[name] = values
    return pa.table(out)


def wanted_columns(columns: Mapping[str, str | None]) -> dict[str, str]:
    unknown = set(columns) - set(CANONICAL)
    if unknown:
        raise DataError(f"data.columns has unknown keys {sorted(unknown)}; allowed: {list(CANONICAL)}")
    for key in ("user", "item"):
        if not columns.get(key):
            raise DataError(f"data.columns.{key} is not set: name the column that holds the {key} id")
    return {k: str(v) for k, v in columns.items() if v}


def check_columns(
    path: Path | str, wanted: Mapping[str, str], file_columns: list[str], first_line: str | None = None, sep: str = ""
) -> None:
    missing = [(canon, col) for canon, col in wanted.items() if col not in file_columns]
    if not missing:
        return
    canon, col = missing[0]
    msg = (
        f"{path}: column {col!r} (data.columns.{canon}) is not in the file, whose columns are {file_columns}; "
        f"set data.columns.{canon}=<one of them>"
    )
    if first_line is not None:
        guesses = [s for s in (",", "\t", ";", "|", " ") if s != sep and s in first_line]
        if len(file_columns) == 1 and guesses:
            looks = f". The header has one field: the file looks {_sep_name(guesses[0])}-separated"
            if sep == "\t":  # data.format=tsv reads tabs whatever data.sep says
                msg += f"{looks}, but it is read with tabs (data.format=tsv always reads tabs, as data.sep='\\t' does)"
                msg += f": use data.format=csv with data.sep={guesses[0]!r}"
            else:
                msg += f"{looks}, so set data.sep={guesses[0]!r}"
    raise DataError(msg)


def _sep_name(sep: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", " ": "space"}[sep]
