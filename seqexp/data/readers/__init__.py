"""Read a behaviour log into the canonical Arrow table.

Every reader returns a `RawLog` whose table has the columns

    row        int64, 1-based line number in the file (header = line 1), or the row/line a record came from
    user_id    string
    item_id    string
    timestamp  the raw timestamp column (numbers or strings); absent when the log has order only
    behavior   string; absent when the log has no behaviour column

plus the malformed rows it skipped (wrong field count, a truncated last line), with their line numbers,
for the preparation report. Ids are read as strings so that "007" stays "007". Parsing and validating
values is `prepare`'s job; readers only read, on Arrow (no per-row Python), and turn every reading
failure into a `DataError` that names the file and the fix.

Formats (`data.format`): csv | tsv (any delimiter, also multi-character ones such as MovieLens `::`),
lines (one user per line, `uid i1 i2 ...`: the S3Rec format), parquet, hf (HuggingFace `datasets`).
Text may be gzip-, zstd- or bz2-compressed (recognised by its magic bytes, not its name); a UTF-8
byte-order mark is skipped; a parquet file or zip archive given as text is named as such.

One module per format (delimited, lines, parquet, hf); `source` sniffs what a file is and opens it,
`arrow_csv` holds the pyarrow CSV helpers the text formats share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from seqexp.data.readers.raw_log import RawLog, wanted_columns
from seqexp.data.readers.source import refuse_non_text
from seqexp.errors import DataError

FORMATS = ("csv", "tsv", "lines", "parquet", "hf")


def resolve_log_path(path: str | Path, filename: str | None = None) -> Path:
    """`data.path` may be the log file itself or a folder holding `data.filename`."""
    p = Path(path).expanduser()
    if p.is_dir():
        if filename:
            p = p / filename
        else:
            listing = ", ".join(sorted(x.name for x in p.iterdir())[:10])
            raise DataError(
                f"data.path={path} is a folder; set data.filename to the log inside it (it holds: {listing})"
            )
    if not p.exists():
        raise DataError(f"data.path: the behaviour log {p} does not exist; set data.path=<file or folder>")
    if p.is_dir():  # data.filename names a folder inside data.path
        listing = ", ".join(sorted(x.name for x in p.iterdir())[:10]) or "nothing"
        raise DataError(
            f"data.filename={filename} is a folder in data.path={path}; name the log file inside it "
            f"(data.filename={filename}/<file>; it holds: {listing})"
        )
    if not os.access(p, os.R_OK):
        raise DataError(f"data.path: the behaviour log {p} is not readable by this user; fix its permissions")
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes): point data.path at a behaviour log with at least one row")
    return p


def read_log(
    path: Path | str,
    columns: Mapping[str, str | None],
    fmt: str = "csv",
    sep: str = ",",
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    hf_split: str = "train",
) -> RawLog:
    """Read a log in any supported format and map its columns to the canonical names.

    columns: {"user": <column>, "item": <column>, "timestamp": <column or None>, "behavior": <column or None>}
    """
    wanted = wanted_columns(columns)
    if sep and "\\" in sep:  # `data.sep='\t'` on a command line arrives as backslash + t
        sep = sep.encode().decode("unicode_escape")
    if fmt in ("csv", "tsv", "lines"):
        refuse_non_text(Path(path), fmt)
    if fmt in ("csv", "tsv"):
        from seqexp.data.readers.delimited import read_delimited

        raw = read_delimited(Path(path), wanted, "\t" if fmt == "tsv" else sep, header, names, encoding)
    elif fmt == "lines":
        from seqexp.data.readers.lines import read_user_lines

        raw = read_user_lines(Path(path), sep or " ", encoding)
    elif fmt == "parquet":
        from seqexp.data.readers.parquet import read_parquet

        raw = read_parquet(Path(path), wanted)
    elif fmt == "hf":
        from seqexp.data.readers.hf import read_hf_dataset

        raw = read_hf_dataset(str(path), wanted, hf_split)
    else:
        raise DataError(f"data.format={fmt!r} is not supported; use one of {list(FORMATS)}")
    if raw.table.num_rows == 0:
        if raw.malformed:
            bad = raw.malformed[0]
            raise DataError(
                f"{path} has no readable rows: all {raw.n_malformed} are malformed, e.g. line {bad.line} "
                f"({bad.why}): {bad.text!r}; check data.sep, data.header and data.names"
            )
        raise DataError(f"{path} has a header but no data rows")
    return raw
