"""Parquet logs: already columnar, read without parsing (only the mapped columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from seqexp.data.readers.raw_log import RawLog, canonical_table, check_columns
from seqexp.errors import DataError


def read_parquet_schema(path: Path) -> list[str]:
    """The file's column names; a file that is not parquet is a DataError."""
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as e:  # pyarrow raises ArrowInvalid for anything that is not parquet
        raise DataError(f"{path} is not a readable parquet file ({e}); set data.format=csv if it is text") from e


def read_parquet(path: Path, wanted: dict[str, str]) -> RawLog:
    import pyarrow.parquet as pq

    check_columns(path, wanted, read_parquet_schema(path))
    try:
        table = pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: the parquet data is damaged ({e}); rewrite or re-download the file") from e
    return RawLog(canonical_table(table, wanted, pa.array(np.arange(1, table.num_rows + 1)), path))
