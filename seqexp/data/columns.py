"""Arrow string columns -> numpy codes and values, vectorised (no per-row Python).

Cleaning works on integer codes: a string column is dictionary-encoded once, and checks that look at
the text (blank? an integer? negative?) run on the dictionary's unique values and are mapped back
through the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
INTEGER = r"^\s*[-+]?\d+(\.0*)?\s*$"


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

    def counts(self) -> np.ndarray:
        """(V,) how many rows hold each value."""
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.values))


def invalid_id_mask(col: CodedColumn) -> np.ndarray:
    """True for ids that are negative numbers, or non-integers in a column whose ids are (>= 90%) integers:
    such a mix is a shifted column or a corrupt row far more often than a real id."""
    values = pa.array(col.values, pa.string())
    integer = pc.match_substring_regex(values, INTEGER).to_numpy(zero_copy_only=False)
    negative = pc.starts_with(pc.utf8_trim_whitespace(values), "-").to_numpy(zero_copy_only=False)
    negative &= pc.match_substring_regex(values, NUMBER).to_numpy(zero_copy_only=False)
    counts = col.counts()
    mostly_integers = counts.sum() > 0 and counts[integer].sum() >= 0.9 * counts.sum()
    bad = negative | (~integer if mostly_integers else np.zeros(len(values), dtype=bool))
    return col.value_mask(bad)


def parse_timestamps(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Unix seconds as float64 (NaN where unparsable). Numbers are taken as they are; when most values
    are not numbers, the column is parsed as date-times (ISO 8601 and similar), in UTC."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(column.type):
        seconds = column.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
        return np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan, seconds)
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    is_number = pc.match_substring_regex(text, NUMBER).fill_null(False)
    numeric = pc.if_else(is_number, text, pa.scalar(None, pa.string())).cast(pa.float64())
    numeric = numeric.fill_null(np.nan).to_numpy(zero_copy_only=False)
    n_numbers = int(np.isfinite(numeric).sum())
    present = int(pc.sum(pc.not_equal(text, "").fill_null(False)).as_py() or 0)
    if present and n_numbers < 0.5 * present:
        coded = CodedColumn.encode(text)
        parsed = pd.to_datetime(pd.Series(coded.values), errors="coerce", utc=True, format="mixed")
        seconds = ((parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(np.float64)
        as_dates = np.where(coded.codes >= 0, np.append(seconds, np.nan)[coded.codes], np.nan)
        if np.isfinite(as_dates).sum() > n_numbers:
            return as_dates
    return numeric


def implausibly_small(ts: np.ndarray) -> np.ndarray:
    """In a log of unix seconds (median after 1973), a value under 1% of the median is a truncated or
    mis-scaled time (the Taobao rdav27_ slice ends in `...,pv,15`), not an event from 1970. Logs whose
    timestamps are small counters are left alone."""
    finite = ts[np.isfinite(ts)]
    if not len(finite) or np.median(finite) < 1e8:
        return np.zeros(len(ts), dtype=bool)
    with np.errstate(invalid="ignore"):
        return ts < 0.01 * np.median(finite)
