"""The words of the preparation report, shared by both engines (`clean` on Arrow, `duck_clean` on DuckDB), so
that the same log gives the same report whichever engine prepared it."""

from __future__ import annotations

from typing import Any

MALFORMED = "wrong number of fields (e.g. a truncated last line) or unreadable"
INVALID_ID = "negative number, or not an integer in a column of integer ids"
BAD_TIMESTAMP = "timestamp unparsable, not finite, <= 0, in the future, or a truncated unix time"
# either note in a cached report also says that the entry was prepared with the day/month check (prepare.py)
DATE_TEXT = (
    "date-time text read as UTC seconds (data.timestamp_format, or one reading per value; day/month dates that "
    "could be read two ways refused)"
)
DATE_TIME_COLUMN = "a date-time column of the file's own type (parquet timestamp or date) read as UTC seconds"
REPEAT = "same item as the user's previous event (data.collapse_repeats)"
DUP_NAMES = {"u": "user_id", "i": "item_id", "t": "timestamp", "b": "behavior"}


def missing(has_behavior: bool) -> str:
    return f"missing or blank {'/'.join(['user_id', 'item_id'] + (['behavior'] if has_behavior else []))}"


def float_id(name: str) -> str:
    return (
        f"{name}_id: integer ids written as floats read as integers (12.0 -> 12), so that they match "
        f"the same id written as 12"
    )


def timestamp_unit(unit: str, why: str) -> str:
    return f"numeric timestamps read as {unit} ({why})"


def timestamp_unit_read(report: Any) -> str | None:
    """The unit a PrepReport's `timestamp_unit` note says the numeric timestamps were read in; None for a log of
    date-times or without times."""
    for note in report.notes:
        if note.what == "timestamp_unit":
            for unit in ("s", "ms", "us", "ns"):
                if note.description.startswith(timestamp_unit(unit, "")[:-1]):  # "... read as ms ("
                    return unit
    return None


def duplicate(keys: list[str], keep: bool, has_timestamp: bool) -> str:
    """keys: the letters of DUP_NAMES that make a row's identity (u, i, and t / b when present)."""
    same = f"same ({', '.join(DUP_NAMES[k] for k in keys)}) as an earlier row"
    if keep:
        return f"not applied (data.duplicates=keep): {same} is kept"
    if not has_timestamp:
        return (
            f"{same}: without a timestamp column that is every repeat of an item anywhere in the user's history; "
            f"the first is kept (data.duplicates=drop; data.duplicates=keep keeps repeats)"
        )
    return f"{same}; the first is kept (data.duplicates=drop)"


def behavior_filter(keep: set[str]) -> str:
    return f"behaviour not in data.behaviors={sorted(keep)}"


def rare_item(min_item: int) -> str:
    return f"item has fewer than data.min_item_count={min_item} events (k-core)"


def short_user(min_user: int) -> str:
    return f"user has fewer than data.min_seq_len={min_user} events"
