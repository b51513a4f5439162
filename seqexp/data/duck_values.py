"""The duckdb engine's value coding: what `columns.py` decides per distinct value, decided the same way.

The arrow engine dictionary-encodes each column and checks its distinct values (blank? an integer written as
`12.0`? negative?) weighted by how many rows hold them. Here DuckDB groups the raw values with their counts and
first row, and the very same checks (`columns.py`'s patterns, on Arrow) run on those distinct values in
Python; the answer goes back to DuckDB as a small mapping table `map_<col>(raw, code, invalid)`. Codes index
the sorted distinct (normalised) values, so that ordering by code is ordering users by their id's text.
Numeric timestamps are parsed in SQL; date-time text is parsed per distinct value with pandas, as
`columns.parse_timestamps` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.data import rule_text as text
from seqexp.data.columns import (
    FLOAT_WRITTEN,
    INTEGER,
    NUMBER,
    format_on_date_times,
    format_on_numbers,
    formatted_seconds,
)
from seqexp.data.dates import refuse_unordered, to_seconds
from seqexp.data.prep_report import PrepReport

DATE_TIME_TYPES = ("TIMESTAMP", "DATE")  # typed by the file itself (parquet), as columns.is_date_time
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "UTINYINT", "USMALLINT")
NUMERIC_TYPES += ("UINTEGER", "UBIGINT", "DECIMAL")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
# what pyarrow's utf8_trim_whitespace trims (Unicode White_Space), so that both engines strip the same: formerly a
# time ending in a no-break space (U+00A0) was a number to the arrow engine and a bad_timestamp to this one
WHITESPACE = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def _distinct(con: Any, col: str) -> tuple[pa.Array, pd.DataFrame]:
    """(raw distinct values, per stripped non-blank value: n rows and first row, in first-appearance order)."""
    query = f"SELECT {col} AS raw, count(*) AS n, min(rowid) AS first FROM raw GROUP BY 1 ORDER BY 3"
    t = con.sql(query).to_arrow_table()
    raw = t.column("raw").combine_chunks()
    stripped = pc.utf8_trim_whitespace(raw).to_numpy(zero_copy_only=False)
    df = pd.DataFrame({"v": stripped, "n": t.column("n").to_numpy(), "first": t.column("first").to_numpy()})
    present = df[df["v"].notna() & (df["v"] != "")]
    per_value = present.groupby("v", sort=False).agg(n=("n", "sum"), first=("first", "min")).sort_values("first")
    return raw, per_value


def _matches(values: np.ndarray, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(pa.array(values, pa.string()), pattern).to_numpy(zero_copy_only=False)


def code_ids(con: Any, col: str, name: str, report: PrepReport) -> np.ndarray:
    """Table map_<col>(raw, code, invalid) for an id column; returns the sorted distinct normalised ids.
    `12.0` -> `12` and invalid ids exactly as `columns.normalise_float_integers` and `invalid_id_mask`."""
    raw, per_value = _distinct(con, col)
    values = per_value.index.to_numpy(dtype=object)
    counts = per_value["n"].to_numpy()
    integer = _matches(values, INTEGER)
    mostly = bool(counts.sum() > 0 and counts[integer].sum() >= 0.9 * counts.sum())
    floats = _matches(values, FLOAT_WRITTEN)
    normalised = values.copy()
    if floats.any() and mostly:
        normalised[floats] = [str(v).split(".")[0] for v in values[floats]]
        report.note("float_id", text.float_id(name), int(counts[floats].sum()), list(values[floats][:3]))
    negative = np.array([str(v).startswith("-") for v in normalised], dtype=bool) & _matches(normalised, NUMBER)
    invalid = negative | (~integer if mostly else np.zeros(len(values), dtype=bool))
    uniq, code = np.unique(normalised.astype(str), return_inverse=True)
    _register_map(con, col, raw, values, code, invalid)
    return uniq.astype(object)


def code_behaviors(con: Any) -> np.ndarray:
    """Table map_b(raw, code, invalid=false); returns the sorted distinct behaviours."""
    raw, per_value = _distinct(con, "b")
    values = per_value.index.to_numpy(dtype=object)
    uniq, code = np.unique(values.astype(str), return_inverse=True)
    _register_map(con, "b", raw, values, code, np.zeros(len(values), dtype=bool))
    return uniq.astype(object)


def _register_map(con: Any, col: str, raw: pa.Array, values: np.ndarray, code: np.ndarray, invalid: np.ndarray) -> None:
    """raw value -> (code, invalid) through its stripped value; blank and null raw values get no row (missing)."""
    position = pd.Index(values).get_indexer(pc.utf8_trim_whitespace(raw).to_numpy(zero_copy_only=False))
    keep = position >= 0
    table = pa.table(
        {
            "raw": raw.filter(pa.array(keep)),
            "code": pa.array(code[position[keep]].astype(np.int64)),
            "invalid": pa.array(invalid[position[keep]]),
        }
    )
    con.register(f"map_{col}_arrow", table)
    con.execute(f"CREATE TABLE map_{col} AS SELECT * FROM map_{col}_arrow")
    con.unregister(f"map_{col}_arrow")


def timestamp_sql(con: Any, t_type: str, fmt: str | None = None, where: str | None = None) -> tuple[str, bool, str]:
    """(SQL expression of raw.t (alias r) as a float with NULL where unparsable, whether it is a plain number, a
    join clause it needs).
    Mirrors `columns.parse_timestamps`: numbers as they are; text that is mostly not numbers is parsed as
    date-times (UTC) when that parses more rows than reading numbers does; `fmt` (data.timestamp_format) reads
    all of it as date-times in that format. Timestamps in seconds from the epoch, whatever their zone."""
    if t_type.startswith(DATE_TIME_TYPES) and fmt is not None:
        raise format_on_date_times(where or "timestamps", fmt, t_type)
    if t_type == "DATE":  # its midnight, UTC (as the arrow engine)
        return "epoch(r.t)", False, ""
    if t_type.startswith("TIMESTAMP"):  # epoch_ns: no cast through the session's time zone; ns cut to whole us
        return "(epoch_ns(r.t) // 1000) / 1e6" if t_type.endswith("_NS") else "epoch_us(r.t) / 1e6", False, ""
    if fmt is not None:
        if t_type.startswith(INTEGER_TYPES):  # whole numbers are read as their digits, as columns.formatted_seconds
            con.execute("ALTER TABLE raw ALTER COLUMN t SET DATA TYPE VARCHAR")
        elif t_type.startswith(NUMERIC_TYPES):
            raise format_on_numbers(where or "timestamps", fmt, t_type)
        raw, per_value = _distinct(con, "t")
        seconds = formatted_seconds(pa.array(per_value.index.to_numpy(dtype=object), pa.string()), fmt, where or "")
        return _date_table(con, raw, per_value, seconds)
    if t_type.startswith(NUMERIC_TYPES):
        return "CAST(r.t AS DOUBLE)", True, ""
    text = f"trim(r.t, '{WHITESPACE}')"
    number = f"CASE WHEN regexp_matches({text}, '{NUMBER}') THEN TRY_CAST({text} AS DOUBLE) END"
    n_numbers, present = con.execute(
        f"SELECT count(*) FILTER (WHERE isfinite({number})), count(*) FILTER (WHERE {text} <> '') FROM raw r"
    ).fetchall()[0]
    if not present or n_numbers >= 0.5 * present:
        return number, True, ""
    raw, per_value = _distinct(con, "t")
    refuse_unordered(per_value.index.to_numpy(dtype=object), where)
    seconds = to_seconds(per_value.index.to_numpy(dtype=object))
    if int(per_value["n"].to_numpy()[np.isfinite(seconds)].sum()) <= n_numbers:
        return number, True, ""
    return _date_table(con, raw, per_value, seconds)


def _date_table(con: Any, raw: pa.Array, per_value: pd.DataFrame, seconds: np.ndarray) -> tuple[str, bool, str]:
    """Table t_seconds(raw, s): each raw value's unix seconds, joined to raw by value."""
    values = per_value.index.to_numpy(dtype=object)
    _register_map(con, "t", raw, values, np.arange(len(values)), np.zeros(len(values), dtype=bool))
    con.register("t_seconds_arrow", pa.table({"code": np.arange(len(values)), "s": seconds}))
    con.execute("CREATE TABLE t_seconds AS SELECT m.raw, x.s FROM map_t m JOIN t_seconds_arrow x USING (code)")
    return "mt.s", False, "LEFT JOIN t_seconds mt ON mt.raw = r.t"
