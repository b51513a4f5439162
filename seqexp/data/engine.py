"""Which engine prepares a log: `data.engine = auto | arrow | duckdb`.

arrow   the in-memory engine (`clean` on Arrow and numpy): every format, fastest on small logs, but it holds
        the whole log in memory (10M events -> 2.4 GB peak RSS, so ~24 GB for Taobao's 100M).
duckdb  the out-of-core engine (`duck_prepare`): the same rules in SQL on DuckDB, with a memory limit and
        spilling to disk under the cache dir; its cache entry holds .npy arrays that training memory-maps.
        It reads csv / tsv with a one-character delimiter (plain or gzip text, UTF-8 or latin-1) and parquet.
auto    duckdb for a log it reads that is larger than AUTO_BYTES, arrow otherwise. Both engines give the same
        PreparedData and report (tests/test_out_of_core.py), so the engine is not part of the cache key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqexp.errors import ConfigError

ENGINES = ("auto", "arrow", "duckdb")
# Above this size auto picks duckdb: the arrow engine needs ~10x the CSV's size in RSS (a 245 MB, 10M-event
# CSV peaks at 2.4 GB), so 256 MiB of text keeps it under ~3 GB; below it arrow is faster
# (benchmarks/results/prepare_scale.md).
AUTO_BYTES = 256 << 20
DUCKDB_ENCODINGS = ("utf8", "utf8sig", "latin1", "iso88591")


def choose_engine(requested: Any, settings: dict[str, Any], path: Path | str) -> str:
    """'arrow' or 'duckdb' for this log; data.engine=duckdb on a log DuckDB cannot read is a ConfigError."""
    engine = str(requested or "auto")
    if engine not in ENGINES:
        raise ConfigError(f"data.engine={engine!r} is not one of {list(ENGINES)}; set data.engine=auto")
    if engine == "arrow":
        return "arrow"
    why_not = duckdb_cannot_read(settings, path)
    if engine == "duckdb":
        if why_not:
            raise ConfigError(f"data.engine=duckdb cannot read this log: {why_not}; set data.engine=arrow (or auto)")
        return "duckdb"
    if why_not or Path(path).stat().st_size <= AUTO_BYTES:
        return "arrow"
    return "duckdb"


def duckdb_cannot_read(settings: dict[str, Any], path: Path | str) -> str | None:
    """Why the duckdb engine cannot read this log (None when it can)."""
    fmt = settings["format"] or "csv"
    if fmt not in ("csv", "tsv", "parquet"):
        return f"data.format={fmt} is read by the arrow engine only"
    if fmt == "parquet":
        return None
    sep = "\t" if fmt == "tsv" else _unescape(settings["sep"] or ",")
    if len(sep) != 1:
        return f"data.sep={sep!r} has several characters"
    encoding = (settings["encoding"] or "utf-8").lower().replace("-", "").replace("_", "")
    if encoding not in DUCKDB_ENCODINGS:
        return f"data.encoding={settings['encoding']} is not utf-8 or latin-1"
    from seqexp.data.readers.source import compression_of

    codec = compression_of(Path(path))
    if codec not in (None, "gzip"):
        return f"the file is {codec}-compressed (duckdb reads plain or gzip text)"
    return None


def _unescape(sep: str) -> str:
    return sep.encode().decode("unicode_escape") if "\\" in sep else sep
