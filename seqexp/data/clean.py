"""Cleaning rules: one named function each, run in this order by `clean` (STEPS), each counted in the
`PrepReport` with example rows (nothing is dropped silently):

  malformed_row   the reader could not split the row into the expected fields (a truncated last line)
  missing_value   user or item id (or the behaviour, when mapped) is missing or blank
  invalid_id      a negative id, or a non-integer id in a column of integer ids (a mixed-type column);
                  integers written as floats (`12.0`, a pandas export artefact) are read as `12` first,
                  counted in a report note, so that one item is never split in two
  bad_timestamp   the timestamp does not parse, is not positive and finite, lies in the future, or is a
                  truncated unix time (under 1% of the median of a log in unix seconds); numbers are
                  converted to seconds by data.timestamp_unit (auto: milliseconds when the median says so);
                  date-times by data.timestamp_format, or ISO-like text (day/month dates read in mixed
                  orders are refused: `dates`)
  duplicate       the same (user, item, timestamp, behaviour) appears again: keep the first. Without a
                  timestamp column that is every repeat of an item anywhere in a history: data.duplicates=keep
                  keeps them
  behavior_filter the behaviour is not in data.behaviors (only when data.behaviors is set)
  (order)         chronological per user (users in id order), ties in file order: a stable sort
  repeat          the same item as the user's previous event (only with data.collapse_repeats=true)
  rare_item       the item has fewer than data.min_item_count events (k-core; only when that is > 1)
  short_user      the user has fewer than data.min_seq_len events left
rare_item and short_user are iterated until neither drops anything (a k-core). After bad_timestamp, a rule
that rejected more than data.max_invalid_fraction of the rows stops the preparation (the mapping is wrong).

Everything runs on Arrow and numpy arrays: no Python loop over rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from seqexp.data import rule_text as text
from seqexp.data.columns import (
    UNITS,
    CodedColumn,
    dates_as_numbers,
    implausibly_small,
    invalid_id_mask,
    is_date_time,
    normalise_float_integers,
    parse_timestamps,
    timestamp_unit,
)
from seqexp.data.prep_report import PrepReport
from seqexp.data.readers import RawLog
from seqexp.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Cleaning:
    """The raw log being cleaned: which rows are still in, the coded columns, and (once sorted) their order."""

    raw: RawLog
    report: PrepReport
    settings: dict[str, Any]
    path: Path | str
    alive: np.ndarray = field(init=False)
    user: CodedColumn = field(init=False)
    item: CodedColumn = field(init=False)
    behavior: CodedColumn | None = None
    ts: np.ndarray | None = None
    order: np.ndarray | None = None  # surviving row indices, chronological per user (set by `chronological`)

    def __post_init__(self) -> None:
        self.alive = np.ones(self.raw.table.num_rows, dtype=bool)

    @property
    def table(self) -> pa.Table:
        return self.raw.table

    def has(self, column: str) -> bool:
        return column in self.table.column_names

    def indices(self) -> np.ndarray:
        return np.flatnonzero(self.alive)

    def drop(self, mask: np.ndarray, rule: str, why: str) -> None:
        """Drop the rows of `mask` that are still in; record the rule with up to 3 of them as examples."""
        hit = np.asarray(mask, dtype=bool) & self.alive
        examples = self.table.take(pa.array(np.flatnonzero(hit)[:3])).to_pylist() if hit.any() else []
        self.alive &= ~hit
        self.report.add(rule, why, int(hit.sum()), int(self.alive.sum()), examples)


def malformed_row(c: Cleaning) -> None:
    c.report.add(
        "malformed_row",
        text.MALFORMED,
        c.raw.n_malformed,
        c.table.num_rows,
        [{"row": m.line, "text": m.text, "why": m.why} for m in c.raw.malformed],
    )


def missing_value(c: Cleaning) -> None:
    c.user = CodedColumn.encode(c.table.column("user_id"))
    c.item = CodedColumn.encode(c.table.column("item_id"))
    c.behavior = CodedColumn.encode(c.table.column("behavior")) if c.has("behavior") else None
    missing = c.user.missing | c.item.missing | (c.behavior.missing if c.behavior else False)
    c.drop(missing, "missing_value", text.missing(c.behavior is not None))


def invalid_id(c: Cleaning) -> None:
    for name in ("user", "item"):
        column, rows, examples = normalise_float_integers(getattr(c, name))
        if rows:
            setattr(c, name, column)
            c.report.note(
                "float_id",
                text.float_id(name),
                rows,
                examples,
            )
    c.drop(invalid_id_mask(c.user) | invalid_id_mask(c.item), "invalid_id", text.INVALID_ID)


def bad_timestamp(c: Cleaning) -> None:
    if not c.has("timestamp"):
        return
    where = f"{c.path}: column {c.settings['columns']['timestamp']!r} (data.columns.timestamp)"
    ts, numeric = parse_timestamps(c.table.column("timestamp"), c.settings.get("timestamp_format"), where)
    if numeric:
        alive = np.where(c.alive, ts, np.nan)
        unit, why = timestamp_unit(alive, c.settings["timestamp_unit"])
        c.report.note("timestamp_unit", text.timestamp_unit(unit, why))
        median = float(np.nanmedian(alive)) if np.isfinite(alive).any() else None
        if warning := dates_as_numbers(median, str(c.settings["timestamp_unit"]), where):
            log.warning("%s", warning)
        if unit != "s":
            ts = ts / UNITS[unit]
    elif is_date_time(c.table.column("timestamp").type):
        c.report.note("date_time_column", text.DATE_TIME_COLUMN)
    else:
        c.report.note("date_text", text.DATE_TEXT)
    c.ts = ts
    latest = time.time() + 86400  # a day of clock skew is tolerated
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(ts) | (ts <= 0) | (ts > latest) | implausibly_small(np.where(c.alive, ts, np.nan))
    c.drop(bad, "bad_timestamp", text.BAD_TIMESTAMP)


def too_many_invalid(c: Cleaning) -> None:
    """Unparsable rows are dropped one by one, but when many are, the column mapping is wrong: say so."""
    check_invalid_fraction(c.report, c.settings, c.path)


def check_invalid_fraction(report: PrepReport, settings: dict[str, Any], path: Path | str) -> None:
    limit = 0.05 if settings["max_invalid_fraction"] is None else float(settings["max_invalid_fraction"])  # 0: strict
    for r in report.rules:
        if report.rows_in and r.dropped / report.rows_in > limit:
            raise DataError(
                f"{path}: rule {r.rule!r} ({r.description}) rejects {r.dropped:,} of {report.rows_in:,} rows, more "
                f"than data.max_invalid_fraction={limit}; e.g. {r.examples[:2]}. Check data.columns / data.sep "
                f"(is that column really the one you meant?), or raise data.max_invalid_fraction"
            )


def duplicate(c: Cleaning) -> None:
    keys = {"u": c.user.codes, "i": c.item.codes}
    if c.ts is not None:
        keys["t"] = c.ts
    if c.behavior is not None:
        keys["b"] = c.behavior.codes
    why = text.duplicate(list(keys), c.settings["duplicates"] == "keep", c.ts is not None)
    if c.settings["duplicates"] == "keep":
        c.drop(np.zeros(len(c.alive), dtype=bool), "duplicate", why)
        return
    alive_idx = c.indices()
    dup = np.zeros(len(c.alive), dtype=bool)
    dup[alive_idx] = pd.DataFrame({k: v[alive_idx] for k, v in keys.items()}).duplicated(keep="first").to_numpy()
    c.drop(dup, "duplicate", why)


def behavior_filter(c: Cleaning) -> None:
    wanted = c.settings["behaviors"]
    if not wanted:
        return
    if c.behavior is None:
        raise DataError(
            f"data.behaviors={wanted} is set but data.columns.behavior is not: "
            f"map the behaviour column or set data.behaviors=null"
        )
    keep = set(map(str, wanted))
    unknown = keep - set(c.behavior.values)
    if unknown:
        log.warning("data.behaviors lists %s, which the log never uses (it has %s)", sorted(unknown), c.behavior.values)
    outside = c.behavior.value_mask(~np.isin(c.behavior.values, list(keep)))
    c.drop(outside, "behavior_filter", text.behavior_filter(keep))


def chronological(c: Cleaning) -> None:
    """Order the surviving rows by user (in id order), then time; ties keep file order."""
    user_rank = np.argsort(np.argsort(c.user.values.astype(str), kind="stable"), kind="stable")
    idx = c.indices()
    sort_keys = (idx,) + ((c.ts[idx],) if c.ts is not None else ()) + (user_rank[c.user.codes[idx]],)
    c.order = idx[np.lexsort(sort_keys)]


def repeat(c: Cleaning) -> None:
    if not c.settings.get("collapse_repeats"):
        return
    u, i = c.user.codes[c.order], c.item.codes[c.order]
    again = np.zeros(len(c.order), dtype=bool)
    again[1:] = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
    c.drop(_mask(len(c.alive), c.order[again]), "repeat", text.REPEAT)
    c.order = c.order[~again]


def min_seq_len(settings: dict[str, Any]) -> int:
    """data.min_seq_len, 3 when unset (a caller of prepare() without the key); 0 is refused by check_config, never
    read as 3 (it used to be, through `or 3`, on the temporal and session splits)."""
    value = settings.get("min_seq_len")
    return 3 if value is None else int(value)


def k_core(c: Cleaning) -> None:
    """Drop items with fewer than data.min_item_count events and users with fewer than data.min_seq_len,
    repeatedly, until both hold (one pass when min_item is 1: dropping users cannot make an item rarer than 1)."""
    min_user, min_item = min_seq_len(c.settings), int(c.settings.get("min_item_count") or 1)
    users, items, order, n = c.user.codes, c.item.codes, c.order, len(c.alive)
    dropped = {"rare_item": np.zeros(n, dtype=bool), "short_user": np.zeros(n, dtype=bool)}
    while True:
        changed = False
        if min_item > 1:
            rare = np.bincount(items[order], minlength=items.max() + 1)[items[order]] < min_item
            dropped["rare_item"][order[rare]] = True
            order, changed = order[~rare], changed or bool(rare.any())
        short = np.bincount(users[order], minlength=users.max() + 1)[users[order]] < min_user
        dropped["short_user"][order[short]] = True
        order, changed = order[~short], changed or bool(short.any())
        if not changed or min_item <= 1:
            break
    if min_item > 1:
        c.drop(dropped["rare_item"], "rare_item", text.rare_item(min_item))
    c.drop(dropped["short_user"], "short_user", text.short_user(min_user))
    c.order = order


STEPS = (
    malformed_row,
    missing_value,
    invalid_id,
    bad_timestamp,
    too_many_invalid,
    duplicate,
    behavior_filter,
    chronological,
    repeat,
    k_core,
)


def clean(raw: RawLog, settings: dict[str, Any], report: PrepReport, path: Path | str) -> Cleaning:
    """Run every step in order; the result's `order` holds the surviving rows, chronological per user."""
    c = Cleaning(raw, report, settings, path)
    for step in STEPS:
        step(c)
    if not len(c.order):
        raise nothing_left(report, path)
    return c


def nothing_left(report: PrepReport, path: Path | str) -> DataError:
    emptied = next((r.rule for r in reversed(report.rules) if r.dropped and r.rows_left == 0), "?")
    return DataError(
        f"{path}: no events are left after cleaning; rule {emptied!r} removed the last rows "
        f"(see the report: {[(r.rule, r.dropped) for r in report.rules]})"
    )


def _mask(n: int, indices: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[indices] = True
    return m
