"""Arrow string columns -> numpy codes and values, vectorised (no per-row Python).

Cleaning works on integer codes: a string column is dictionary-encoded once, and checks that look at
the text (blank? an integer? negative?) run on the dictionary's unique values and are mapped back
through the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.data.dates import refuse_unordered, to_seconds
from seqexp.errors import DataError

NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
INTEGER = r"^\s*[-+]?\d+(\.0*)?\s*$"
FLOAT_WRITTEN = r"^[-+]?\d+\.0*$"  # an integer as a float export writes it: `12.0`, `12.` (values are stripped)
WHOLE_FLOAT_LIMIT = 1e16  # whole floats up to it are written as their digits (as_text); above, both engines write 3e+16
UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}  # data.timestamp_unit -> units per second


@dataclass
class CodedColumn:
    """A string column as codes into `values`; code -1 where the value is missing or blank."""

    codes: np.ndarray  # (E,) int64
    values: np.ndarray  # (V,) object array of str, the distinct stripped values

    @classmethod
    def encode(cls, column: pa.ChunkedArray | pa.Array) -> CodedColumn:
        stripped = pc.utf8_trim_whitespace(column.cast(pa.string()))
        encoded = pc.dictionary_encode(stripped)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks else pa.array([], pa.string())
            encoded = encoded if isinstance(encoded, pa.DictionaryArray) else pc.dictionary_encode(encoded)
        values = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        blank = np.flatnonzero(values == "")
        if len(blank):
            codes[np.isin(codes, blank)] = -1
        return cls(codes, values)

    @property
    def missing(self) -> np.ndarray:
        return self.codes < 0

    def value_mask(self, per_value: np.ndarray) -> np.ndarray:
        """(E,) bool from a (V,) bool computed on the distinct values; False where missing."""
        return np.where(self.codes >= 0, np.append(per_value, False)[self.codes], False)

    def per_row(self, per_value: np.ndarray) -> np.ndarray:
        """(E,) float64 from a (V,) float64 computed on the distinct values; NaN where missing."""
        return np.where(self.codes >= 0, np.append(per_value, np.nan)[self.codes], np.nan)

    def counts(self) -> np.ndarray:
        """(V,) how many rows hold each value."""
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.values))


def _matches(col: CodedColumn, pattern: str) -> np.ndarray:
    """(V,) bool: which distinct values match `pattern`."""
    return pc.match_substring_regex(pa.array(col.values, pa.string()), pattern).to_numpy(zero_copy_only=False)


def _mostly(col: CodedColumn, per_value: np.ndarray) -> bool:
    """Whether at least 90% of the rows hold a value with the property."""
    counts = col.counts()
    return bool(counts.sum() > 0 and counts[per_value].sum() >= 0.9 * counts.sum())


def invalid_id_mask(col: CodedColumn) -> np.ndarray:
    """True for ids that are negative numbers, or non-integers in a column whose ids are (>= 90%) integers:
    such a mix is a shifted column or a corrupt row far more often than a real id."""
    values = pa.array(col.values, pa.string())
    integer = _matches(col, INTEGER)
    negative = pc.starts_with(pc.utf8_trim_whitespace(values), "-").to_numpy(zero_copy_only=False)
    negative &= _matches(col, NUMBER)
    bad = negative | (~integer if _mostly(col, integer) else np.zeros(len(values), dtype=bool))
    return col.value_mask(bad)


def normalise_float_integers(col: CodedColumn) -> tuple[CodedColumn, int, list[str]]:
    """`12.0` -> `12` in a column of integer ids (>= 90% of rows), so that one item is never split in two by a
    pandas float export. Returns the column, how many rows changed, and up to 3 of the values rewritten.
    Other text is kept as it is ("007" stays "007"); a column with no such value is returned unchanged."""
    floats = _matches(col, FLOAT_WRITTEN)
    if not floats.any() or not _mostly(col, _matches(col, INTEGER)):
        return col, 0, []
    rewritten = col.values.copy()
    rewritten[floats] = [str(v).split(".")[0] for v in col.values[floats]]  # distinct values, not rows
    values, inverse = np.unique(rewritten.astype(str), return_inverse=True)
    codes = np.where(col.codes >= 0, inverse[np.maximum(col.codes, 0)], -1).astype(np.int64)
    return CodedColumn(codes, values.astype(object)), int(col.counts()[floats].sum()), list(col.values[floats][:3])


def as_text(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column of ids (or other values) as text. Whole floats are written as their digits: a float64 id column
    (pandas stores any id column with a gap as float64) holds 10000000013.0, which Arrow's cast writes as
    `1.0000000013e+10`, so the same item read by the duckdb engine (`10000000013`) or named in an item table
    came out as another id. Whole floats above 1e16 and fractions are cast as they are."""
    if not pa.types.is_floating(values.type):
        return values.cast(pa.string())
    values = values.cast(pa.float64())
    whole = pc.and_(pc.equal(pc.floor(values), values), pc.less_equal(pc.abs(values), WHOLE_FLOAT_LIMIT))
    digits = pc.if_else(whole, values, 0.0).cast(pa.int64()).cast(pa.string())
    return pc.if_else(whole, digits, values.cast(pa.string()))


def parse_timestamps(
    column: pa.ChunkedArray | pa.Array, fmt: str | None = None, where: str | None = None
) -> tuple[np.ndarray, bool]:
    """(values as float64 with NaN where unparsable, whether they are plain numbers). Numbers are taken as
    they are (their unit is `timestamp_unit`'s business); when most values are not numbers, the column is
    parsed as date-times (ISO 8601 and similar), in UTC, into unix seconds (`dates`: day/month dates that
    would be read in mixed orders are refused, naming `where`). `fmt` (data.timestamp_format) reads every
    value as a date-time in that strftime format."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if is_date_time(column.type):
        if fmt is not None:
            raise format_on_date_times(where or "timestamps", fmt, str(column.type))
        if pa.types.is_date(column.type):
            column = column.cast(pa.timestamp("s"))  # a date: its midnight, UTC
        return timestamp_seconds(column), False
    if fmt is not None:
        return formatted_seconds(column, fmt, where or "timestamps"), False
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False), True
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    is_number = pc.match_substring_regex(text, NUMBER).fill_null(False)
    numeric = pc.if_else(is_number, text, pa.scalar(None, pa.string())).cast(pa.float64())
    numeric = numeric.fill_null(np.nan).to_numpy(zero_copy_only=False)
    n_numbers = int(np.isfinite(numeric).sum())
    present = int(pc.sum(pc.not_equal(text, "").fill_null(False)).as_py() or 0)
    if present and n_numbers < 0.5 * present:
        coded = CodedColumn.encode(text)
        refuse_unordered(coded.values[coded.values != ""], where)
        as_dates = coded.per_row(to_seconds(coded.values))
        if np.isfinite(as_dates).sum() > n_numbers:
            return as_dates, False
    return numeric, True


def is_date_time(arrow_type: pa.DataType) -> bool:
    """A column the file itself types as date-times (parquet/arrow timestamp or date), not text or numbers."""
    return pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)


def timestamp_seconds(column: pa.Array) -> np.ndarray:
    """(E,) unix seconds of an Arrow timestamp column (any unit or zone), NaN where null. Nanoseconds are cut to
    whole microseconds (toward zero), as the duckdb engine's epoch_ns(t) // 1000 does."""
    if column.type.unit == "ns":
        micros = pc.divide(column.cast(pa.int64()), 1000)  # integer division truncates; a safe cast would refuse
    else:
        micros = column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64())
    seconds = micros.fill_null(0).to_numpy(zero_copy_only=False) / 1e6
    return np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan, seconds)


def formatted_seconds(column: pa.Array, fmt: str, where: str) -> np.ndarray:
    """(E,) unix seconds of a text column read with the strftime format `fmt`; NaN where a value does not fit. A
    column of whole numbers is read as their digits (an int64 column of 20231105 with '%Y%m%d': formerly refused,
    so a parquet log of such dates could not be read as dates at all); unix times there fit no date format and
    are refused below."""
    if pa.types.is_integer(column.type):
        column = column.cast(pa.string())
    if pa.types.is_floating(column.type) or pa.types.is_decimal(column.type):
        raise format_on_numbers(where, fmt, str(column.type))
    coded = CodedColumn.encode(column)
    seconds = to_seconds(coded.values, fmt)
    present = coded.values != ""
    if present.any() and not np.isfinite(seconds[present]).any():
        raise DataError(
            f"{where}: no value fits data.timestamp_format={fmt!r} (e.g. {coded.values[present][0]!r}); "
            f"write the format of these values (strftime codes: %d/%m/%Y %H:%M:%S), or set data.timestamp_format=null"
        )
    return coded.per_row(seconds)


def format_on_date_times(where: str, fmt: str, type_name: str) -> DataError:
    return DataError(
        f"{where}: data.timestamp_format={fmt!r} is set but the column already holds date-times ({type_name}), not "
        f"text; set data.timestamp_format=null (they are read as they are, in UTC)"
    )


def format_on_numbers(where: str, fmt: str, type_name: str) -> DataError:
    return DataError(
        f"{where}: data.timestamp_format={fmt!r} is set but the column holds numbers ({type_name}), not text; "
        f"set data.timestamp_format=null (numbers are unix times in data.timestamp_unit)"
    )


def timestamp_unit(ts: np.ndarray, unit: str) -> tuple[str, str]:
    """(unit, why) for numeric timestamps: data.timestamp_unit, or with `auto` the unit the median's size says
    (unix seconds are ~1.7e9 today; 1e11 s is the year 5138, so a median above it is milliseconds, ...)."""
    if unit != "auto":
        return unit, f"data.timestamp_unit={unit}"
    finite = ts[np.isfinite(ts)]
    median = float(np.median(finite)) if len(finite) else 0.0
    guessed = "ns" if median > 1e17 else "us" if median > 1e14 else "ms" if median > 1e11 else "s"
    return guessed, f"data.timestamp_unit=auto, median {median:.3g}"


def dates_as_numbers(median: float | None, unit_setting: str, where: str) -> str | None:
    """A warning when numbers read as unix seconds look like dates written as YYYYMMDD (20231105): they would be
    read as August 1970, one day apart counted as one second, with only the report's median to show it."""
    if median is None or unit_setting != "auto" or not 19_000_101 <= median <= 21_001_231:
        return None
    month, day = int(median) // 100 % 100, int(median) % 100
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return (
        f"{where}: the times are read as unix seconds, but their median {median:.0f} looks like a date written as "
        f"YYYYMMDD (as seconds it is August 1970, and a day apart reads as a second apart); if they are dates, set "
        f"data.timestamp_format='%Y%m%d'"
    )


def implausibly_small(ts: np.ndarray) -> np.ndarray:
    """In a log of unix seconds (median after 1973), a value under 1% of the median is a truncated or
    mis-scaled time (the Taobao rdav27_ slice ends in `...,pv,15`), not an event from 1970. Logs whose
    timestamps are small counters are left alone."""
    finite = ts[np.isfinite(ts)]
    if not len(finite) or np.median(finite) < 1e8:
        return np.zeros(len(ts), dtype=bool)
    with np.errstate(invalid="ignore"):
        return ts < 0.01 * np.median(finite)
