"""Date-time text -> unix seconds: the one way seqexp reads it (both engines, the split's cut times, serving).

ISO 8601 and other forms with one reading are parsed by pandas value by value (`format="mixed"`), in UTC.
Dates written day/month/year or month/day/year (`05/12/2023`, `5.12.2023`, `05-12-23`) are not read that way:
pandas decides each value alone, month first where it can and day first where it must, so in one column of
day-first dates `21/11/2023` becomes 21 November and `05/12/2023` 12 May: events silently reordered. Such
values are refused unless every one of them has a single reading (a field over 12) and they all agree on the
order; `data.timestamp_format` (a strftime format) reads a log's column exactly as it says.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.errors import DataError

SLASHED = r"^(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<y>\d{2,4})(?:\D|$)"  # day/month or month/day first
ISO_EXAMPLE = "2023-12-05T10:00:00"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_seconds(values: np.ndarray, fmt: str | None = None) -> np.ndarray:
    """(V,) float64 unix seconds of date-time strings, NaN where they do not parse. `fmt`: a strftime format
    (`data.timestamp_format`), or None: each value by itself, in UTC unless it names its offset."""
    try:
        parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True, format=fmt or "mixed")
    except ValueError as e:  # a bad directive ("%Q")
        raise DataError(
            f"data.timestamp_format={fmt!r} is not a strftime format ({e}); e.g. '%d/%m/%Y %H:%M:%S'"
        ) from e
    return ((parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(np.float64)


def refuse_unordered(values: np.ndarray, where: str | None) -> None:
    """Raise a DataError when day/month dates among `values` (distinct strings) would be read in mixed orders.
    `where` names the log's column (the fix is then data.timestamp_format); None: one served history."""
    problem = date_order_problem(values)
    if problem is None:
        return
    text, formats = problem
    iso = f"ISO 8601 ({ISO_EXAMPLE}) or unix seconds"
    if where is None:
        raise DataError(f"timestamps: {text}; write them as {iso}")
    raise DataError(f"{where}: {text}; set data.timestamp_format={formats}, or write the times as {iso}")


def date_order_problem(values: np.ndarray) -> tuple[str, str] | None:
    """(why the day/month dates among `values` cannot be read one by one, the strftime format(s) that read them),
    or None when there are none or each has one reading and they agree."""
    if not len(values):
        return None
    texts = pa.array(np.asarray(values, dtype=object), pa.string())
    parts = pc.extract_regex(texts, SLASHED)
    hit = parts.is_valid().to_numpy(zero_copy_only=False)
    if not hit.any():
        return None
    found = parts.filter(pa.array(hit))
    a, b = (found.field(k).cast(pa.int64()).to_numpy(zero_copy_only=False) for k in ("a", "b"))
    both = (a <= 12) & (b <= 12) & (a != b)  # 05/12: 5 Dec or 12 May
    day_first, month_first = (a > 12) & (b <= 12), (b > 12) & (a <= 12)
    if not both.any() and not (day_first.any() and month_first.any()):
        return None
    shown = np.asarray(values, dtype=object)[hit]
    parts_text = []
    if both.any():
        j = int(np.argmax(both))
        parts_text.append(f"{shown[j]!r} may be {a[j]} {MONTHS[b[j] - 1]} or {b[j]} {MONTHS[a[j] - 1]}")
    for mask, order in ((day_first, "day first"), (month_first, "month first")):
        if mask.any():
            parts_text.append(f"{shown[int(np.argmax(mask))]!r} can only be {order}")
    text = ", ".join(parts_text) + " (read value by value, such dates are mixed up)"
    example = str(shown[int(np.argmax(both))] if both.any() else shown[0])
    if day_first.any() != month_first.any():
        return text, repr(strftime_of(example, day_first=bool(day_first.any())))
    day, month = strftime_of(example, day_first=True), strftime_of(example, day_first=False)
    return text, f"{day!r} (day first) or {month!r} (month first)"


def strftime_of(example: str, day_first: bool) -> str:
    """The strftime format of a date like `05/12/2023 10:00:00` read day first (or month first)."""
    m = re.match(r"^(\d{1,2})([/.\-])(\d{1,2})[/.\-](\d{2,4})(.*)$", example)
    if m is None:
        return "%d/%m/%Y" if day_first else "%m/%d/%Y"
    sep, year, rest = m.group(2), "%y" if len(m.group(4)) == 2 else "%Y", m.group(5)
    date = f"%d{sep}%m{sep}{year}" if day_first else f"%m{sep}%d{sep}{year}"
    t = re.match(r"^([ T])\d{1,2}:\d{2}(:\d{2})?(\.\d+)?$", rest)
    if t is not None:
        return date + t.group(1) + "%H:%M" + (":%S" if t.group(2) else "") + (".%f" if t.group(3) else "")
    return date + ("" if not rest else " <time, e.g. %H:%M:%S>")


def cut_time(given: object, key: str, fmt: str | None = None) -> float:
    """A split cut time (`split.valid_time` / `split.test_time`): a date-time in `fmt` (data.timestamp_format) when
    it fits it, as the log's times were read (formerly `20231201` under '%Y%m%d' was read as unix seconds, August
    1970, and the split was empty); else unix seconds, or a date-time read as the log's date-times are (a day/month
    date with two readings is refused). ValueError names the key."""
    if fmt is not None:
        formatted = float(to_seconds(np.array([str(given).strip()], dtype=object), fmt)[0])
        if np.isfinite(formatted):
            return formatted
    try:
        return float(given)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    text = str(given).strip()
    problem = date_order_problem(np.array([text], dtype=object))
    if problem is not None:
        raise ValueError(f"split.{key}={given!r}: {problem[0]}; write it as ISO 8601 (2023-12-05) or unix seconds")
    seconds = float(to_seconds(np.array([text], dtype=object))[0])
    if not np.isfinite(seconds):
        raise ValueError(f"split.{key}={given!r} is neither unix seconds nor a date (e.g. 2023-12-05 or 1701734400)")
    return seconds
