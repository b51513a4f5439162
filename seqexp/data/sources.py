"""Read a behaviour log into the canonical table.

Every reader returns a pandas DataFrame with the columns

    row        1-based line number in the file (the header is line 1 when there is one)
    user_id    str
    item_id    str
    timestamp  the raw timestamp column (any dtype) or absent when the log has order only
    behavior   str, absent when the log has no behaviour column

Ids are read as strings so that "007" stays "007" and a stray value never turns a whole integer
column into floats. Parsing and validating values is `prepare`'s job; this module only reads, and
turns every reading failure into a `DataError` that names the file and the fix.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from seqexp.errors import DataError

CANONICAL = ("user", "item", "timestamp", "behavior")


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
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes): point data.path at a behaviour log with at least one row")
    return p


def file_fingerprint(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of the file's bytes: the identity of the input in cache keys and results.json."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_log(
    path: Path,
    columns: Mapping[str, str | None],
    fmt: str = "csv",
    sep: str = ",",
    header: bool = True,
    names: list[str] | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a delimited text file or a parquet file and map its columns to the canonical names.

    columns: {"user": <column>, "item": <column>, "timestamp": <column or None>, "behavior": <column or None>}
    """
    wanted = _wanted_columns(columns)
    if "\\" in sep:  # `data.sep='\t'` on a command line arrives as backslash + t
        sep = sep.encode().decode("unicode_escape")
    if fmt == "parquet":
        raw = _read_parquet(path, wanted)
        raw.insert(0, "row", range(1, len(raw) + 1))
    elif fmt in ("csv", "tsv"):
        raw = _read_delimited(
            path, wanted, sep="\t" if fmt == "tsv" else sep, header=header, names=names, encoding=encoding
        )
    else:
        raise DataError(f"data.format={fmt!r} is not supported; use csv, tsv or parquet")
    if raw.empty:
        raise DataError(f"{path} has a header but no data rows")
    out = pd.DataFrame({"row": raw["row"].to_numpy()})
    for canon, col in wanted.items():
        out[f"{canon}_id" if canon in ("user", "item") else canon] = raw[col].to_numpy()
    return out


def _wanted_columns(columns: Mapping[str, str | None]) -> dict[str, str]:
    unknown = set(columns) - set(CANONICAL)
    if unknown:
        raise DataError(f"data.columns has unknown keys {sorted(unknown)}; allowed: {list(CANONICAL)}")
    for key in ("user", "item"):
        if not columns.get(key):
            raise DataError(f"data.columns.{key} is not set: name the column that holds the {key} id")
    return {k: str(v) for k, v in columns.items() if v}


def _read_parquet(path: Path, wanted: dict[str, str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises ArrowInvalid for anything that is not parquet
        raise DataError(f"{path} is not a readable parquet file ({e}); set data.format=csv if it is text") from e
    _check_columns(path, wanted, list(schema.names), sep_hint=None)
    table = pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    df = table.to_pandas()
    for canon in ("user", "item", "behavior"):
        if canon in wanted:
            col = wanted[canon]
            df[col] = df[col].astype("string").astype(object).where(df[col].notna(), None)
    return df


def _read_delimited(
    path: Path, wanted: dict[str, str], sep: str, header: bool, names: list[str] | None, encoding: str
) -> pd.DataFrame:
    first = _first_line(path, encoding)
    if header:
        file_columns = next(csv.reader([first], delimiter=sep)) if len(sep) == 1 else first.split(sep)
        file_columns = [c.strip() for c in file_columns]
    else:
        if not names:
            raise DataError(f"{path}: data.header=false needs data.names, the list of column names in order")
        file_columns = list(names)
        n_fields = len(first.split(sep))
        if n_fields != len(file_columns):
            raise DataError(
                f"{path}: line 1 has {n_fields} field(s) split on data.sep={sep!r} but data.names lists "
                f"{len(file_columns)}; fix data.sep or data.names"
            )
    _check_columns(path, wanted, file_columns, sep_hint=(sep, first))
    str_cols = {wanted[c]: str for c in ("user", "item", "behavior") if c in wanted}
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            names=None if header else file_columns,
            # no usecols: with it pandas silently ignores extra fields in a malformed row
            dtype=str_cols,
            encoding=encoding,
            skipinitialspace=True,
            skip_blank_lines=False,  # keep `row` equal to the file's line number; blank rows are dropped and counted
            engine="c" if len(sep) == 1 else "python",
        )
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: byte {e.start} is not valid {encoding} ({e.reason}); re-encode the file as UTF-8 "
            f"or set data.encoding (e.g. latin-1)"
        ) from e
    except pd.errors.ParserError as e:
        raise DataError(
            f"{path}: {str(e).strip()}; check data.sep={sep!r} and that every row has the same fields"
        ) from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path} has no rows") from e
    df.columns = [str(c).strip() for c in df.columns]
    df.insert(0, "row", range(2 if header else 1, len(df) + (2 if header else 1)))
    return df


def _first_line(path: Path, encoding: str) -> str:
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


def _check_columns(
    path: Path, wanted: dict[str, str], file_columns: list[str], sep_hint: tuple[str, str] | None
) -> None:
    missing = [(canon, col) for canon, col in wanted.items() if col not in file_columns]
    if not missing:
        return
    canon, col = missing[0]
    msg = (
        f"{path}: column {col!r} (data.columns.{canon}) is not in the file, whose columns are {file_columns}; "
        f"set data.columns.{canon}=<one of them>"
    )
    if sep_hint is not None:
        sep, first = sep_hint
        guesses = [s for s in (",", "\t", ";", "|", " ") if s != sep and s in first]
        if len(file_columns) == 1 and guesses:
            msg += f". The header has one field: the file looks {_sep_name(guesses[0])}-separated, so set data.sep"
    raise DataError(msg)


def _sep_name(sep: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", " ": "space"}[sep]
