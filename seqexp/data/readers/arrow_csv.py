"""The pyarrow CSV reader, shared by the text formats: bad rows counted (not fatal), errors in words.

Rows with the wrong number of fields (a truncated last line, a stray delimiter) are skipped by the
reader and returned as `MalformedRow`s with their line numbers, so that `prepare` counts them in the
report instead of failing on the first one or dropping them silently.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from seqexp.data.readers.raw_log import MalformedRow
from seqexp.data.readers.source import arrow_encoding, compression_of, locate_undecodable, open_stream, unreadable
from seqexp.errors import DataError

MAX_EXAMPLES = 20  # malformed rows kept as examples; all of them are counted
LINE_SPLITTER = "\x1f"  # ASCII unit separator: reading whole lines, split on a character no log holds


class Skipped:
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

    def add(self, line: int, text: str, why: str) -> None:
        self.lines.append(line)
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(MalformedRow(line, text, why))


def line_numbers(n_rows: int, first_data_line: int, skipped_lines: list[int]) -> pa.Array:
    """File line of each kept row: rows are consecutive lines except where the reader skipped one."""
    kept = np.arange(n_rows, dtype=np.int64)
    s = np.sort(np.asarray([x for x in skipped_lines if x > 0], dtype=np.int64))
    if len(s):
        at_kept_index = s - first_data_line - np.arange(len(s))  # kept index a skipped line comes before
        kept = kept + np.searchsorted(at_kept_index, kept, side="right")
    return pa.array(kept + first_data_line)


def read_lines(path: Path, encoding: str) -> pa.Array:
    """Every line of the file as one string (blank lines kept, so that indices are line numbers - 1)."""
    odd: list[int | None] = []

    def unit_separator_inside(row: pacsv.InvalidRow) -> str:
        odd.append(row.number)
        return "skip"

    table = read_csv(
        path,
        pacsv.ReadOptions(column_names=["line"], use_threads=False, encoding=arrow_encoding(encoding)),
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


def read_csv(
    path: Path,
    read: pacsv.ReadOptions,
    parse: pacsv.ParseOptions,
    convert: pacsv.ConvertOptions,
    encoding: str,
    sep: str | None,
) -> pa.Table:
    """pacsv.read_csv on the (decompressed) file; every failure becomes one DataError naming the file and fix."""
    try:
        with open_stream(path) as stream, quiet_row_handler():
            return pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, OSError) as e:
        raise _explain(path, e, encoding, sep) from e


@contextlib.contextmanager
def quiet_row_handler() -> Iterator[None]:
    """pyarrow decodes a malformed row's text before it calls the invalid-row handler; undecodable bytes raise
    inside its callback, which Python reports as "Exception ignored ... Traceback" on stderr. The read then
    fails with a parse error that `_explain` turns into one line naming the line and the byte, so the
    callback's own report is noise: swallow exactly those (any other unraisable error is still printed)."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not (isinstance(unraisable.exc_value, UnicodeDecodeError) and isinstance(unraisable.object, Skipped)):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _explain(path: Path, e: Exception, encoding: str, sep: str | None) -> DataError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    low = msg.lower()
    # a bad byte in a malformed row fails the whole read as a parse error (pyarrow cannot hand the row to the
    # invalid-row handler): look for undecodable bytes first, they are the cause
    where = locate(path, encoding) if isinstance(e, pa.ArrowInvalid) and "16" not in encoding else None
    if where or "utf8" in low or "decode" in low or "codec" in low:
        at = f"line {where[0]} (byte {where[1]}: {where[2]!r}) is" if where else "some bytes are"
        return DataError(
            f"{path}: {at} not valid {encoding} ({msg}); re-encode the file as UTF-8 or set data.encoding "
            f"(e.g. data.encoding=latin-1)"
        )
    if "Empty CSV file" in msg:
        return DataError(f"{path} has no rows")
    if isinstance(e, OSError) or compression_of(path) is not None:
        return unreadable(path, e)
    if "straddling" in low or "block" in low:
        return DataError(
            f"{path}: a quoted field is never closed, or a row is longer than the reader's block ({msg}); "
            f"look for an unbalanced '\"' in the file, or check data.sep={sep!r}"
        )
    return DataError(f"{path}: {msg}; check data.sep={sep!r} and data.header")


def locate(path: Path, encoding: str) -> tuple[int, int, bytes] | None:
    try:
        return locate_undecodable(path, encoding)
    except (OSError, pa.ArrowException, LookupError):  # a damaged stream: say what was said without a line
        return None
