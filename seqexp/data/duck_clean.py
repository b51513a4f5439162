"""The cleaning rules of `seqexp.data.clean`, in the same order and with the same report, as SQL on DuckDB.

Each row's fate is a `rule` code (0 = still in): the first rule that drops a row is the one it is counted
under, as in the arrow engine where a rule only sees the rows still in. Tables, each made from the last:

  ev    one row per read row: codes u, i, b (`duck_values`), ts_raw; rule 1 missing_value, 2 invalid_id
  evt   (view) ts in seconds; rule 3 bad_timestamp
  kept  the rows still in after evt: rule 4 duplicate (first in file order kept), 5 behavior_filter
  ord   the rows still in after kept, stored in chronological order (user id text, time, file order), so that
        its rowid is the position in the final sequences: rule 6 repeat, 7 rare_item, 8 short_user (k-core)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqexp.data import rule_text as text
from seqexp.data.clean import check_invalid_fraction, min_seq_len, nothing_left
from seqexp.data.columns import UNITS, dates_as_numbers, timestamp_unit
from seqexp.data.duck_read import RawSource
from seqexp.data.duck_values import DATE_TIME_TYPES, code_behaviors, code_ids, timestamp_sql
from seqexp.data.prep_report import PrepReport
from seqexp.errors import DataError

log = logging.getLogger(__name__)
NAMES = {"u": "user_id", "i": "item_id", "t": "timestamp", "b": "behavior"}


@dataclass
class DuckCleaning:
    con: Any
    src: RawSource
    report: PrepReport
    settings: dict[str, Any]
    path: Path | str
    left: int = 0  # rows still in
    users: np.ndarray | None = None  # sorted distinct user ids: a user code indexes them
    items: np.ndarray | None = None
    behaviors: np.ndarray | None = None
    numeric_ts: bool = False  # the timestamps are plain numbers (their unit is data.timestamp_unit's)

    def has(self, col: str) -> bool:
        return col in self.src.columns

    def record(self, table: str, code: int, rule: str, why: str, also: list[dict[str, Any]] | None = None) -> None:
        """Count the rows of `table` whose fate is `code` (plus rows `also`); record them with up to 3 examples."""
        dropped = self.con.execute(f"SELECT count(*) FROM {table} WHERE rule = {code}").fetchall()[0][0]
        first = [
            k for (k,) in self.con.execute(f"SELECT k FROM {table} WHERE rule = {code} ORDER BY k LIMIT 3").fetchall()
        ]
        examples = sorted(self.examples(first) + (also or []), key=lambda row: row["row"])
        self.left -= int(dropped) + len(also or [])
        self.report.add(rule, why, int(dropped) + len(also or []), self.left, examples[:3])

    def examples(self, ks: list[int]) -> list[dict[str, Any]]:
        """The raw rows with these indices, as the arrow engine's table shows them (file line first)."""
        if not ks:
            return []
        cols = self.src.columns
        rows = self.con.execute(
            f"SELECT rowid, {', '.join(cols)} FROM raw WHERE rowid IN ({', '.join(map(str, ks))}) ORDER BY rowid"
        ).fetchall()
        lines = self.src.line_of(np.asarray([r[0] for r in rows], dtype=np.int64))
        out = []
        for line, r in zip(lines, rows, strict=True):
            out.append({"row": int(line), **{NAMES[c]: v for c, v in zip(cols, r[1:], strict=True)}})
        return out


def clean(con: Any, src: RawSource, s: dict[str, Any], report: PrepReport, path: Path | str) -> DuckCleaning:
    """Run every rule in order; the table `ord` then holds the rows with rule = 0 in chronological order."""
    c = DuckCleaning(con, src, report, s, path, left=src.n_rows + len(src.blank_lines))
    report.add(
        "malformed_row",
        text.MALFORMED,
        src.n_malformed,
        c.left,
        [{"row": m.line, "text": m.text, "why": m.why} for m in src.malformed],
    )
    coded_events(c)
    timestamps(c)
    check_invalid_fraction(report, s, path)
    duplicates_and_behaviors(c)
    chronological(c)
    k_core(c)
    if c.left == 0:
        raise nothing_left(report, path)
    return c


def coded_events(c: DuckCleaning) -> None:
    """Table ev: codes per row; rules missing_value and invalid_id."""
    c.users = code_ids(c.con, "u", "user", c.report)
    c.items = code_ids(c.con, "i", "item", c.report)
    b_code, b_join, b_missing = "CAST(NULL AS BIGINT)", "", ""
    if c.has("b"):
        c.behaviors = code_behaviors(c.con)
        b_code, b_join, b_missing = "mb.code", "LEFT JOIN map_b mb ON r.b = mb.raw", " OR mb.code IS NULL"
    ts, c.numeric_ts, t_join = "NULL", False, ""
    if c.has("t"):
        where = f"{c.path}: column {c.settings['columns']['timestamp']!r} (data.columns.timestamp)"
        ts, c.numeric_ts, t_join = timestamp_sql(c.con, c.src.t_type, c.settings.get("timestamp_format"), where)
    c.con.execute(
        f"""CREATE TABLE ev AS SELECT r.rowid AS k, mu.code AS u, mi.code AS i, {b_code} AS b,
        CAST({ts} AS DOUBLE) AS ts_raw,
        CAST(CASE WHEN mu.code IS NULL OR mi.code IS NULL{b_missing} THEN 1
                  WHEN mu.invalid OR mi.invalid THEN 2 ELSE 0 END AS TINYINT) AS rule
        FROM raw r LEFT JOIN map_u mu ON r.u = mu.raw LEFT JOIN map_i mi ON r.i = mi.raw {b_join} {t_join}"""
    )
    blank = [{"row": int(line), **{NAMES[col]: "" for col in c.src.columns}} for line in c.src.blank_lines]
    c.record("ev", 1, "missing_value", text.missing(c.has("b")), also=blank)
    c.record("ev", 2, "invalid_id", text.INVALID_ID)


def _median(c: DuckCleaning, expr: str) -> float | None:
    value = c.con.execute(f"SELECT median({expr}) FROM ev WHERE rule = 0 AND isfinite({expr})").fetchall()[0][0]
    return None if value is None else float(value)


def _double(x: float) -> str:
    return f"CAST('{x!r}' AS DOUBLE)"


def timestamps(c: DuckCleaning) -> None:
    """View evt: timestamps in seconds (data.timestamp_unit, auto by the median); rule bad_timestamp."""
    if not c.has("t"):
        c.con.execute("CREATE VIEW evt AS SELECT k, u, i, b, CAST(NULL AS DOUBLE) AS ts, rule FROM ev")
        return
    seconds = "ts_raw"
    if c.numeric_ts:
        median = _median(c, "ts_raw")
        unit, why = timestamp_unit(np.array([np.nan if median is None else median]), c.settings["timestamp_unit"])
        c.report.note("timestamp_unit", text.timestamp_unit(unit, why))
        where = f"{c.path}: column {c.settings['columns']['timestamp']!r} (data.columns.timestamp)"
        if warning := dates_as_numbers(median, str(c.settings["timestamp_unit"]), where):
            log.warning("%s", warning)
        if unit != "s":
            seconds = f"ts_raw / {_double(UNITS[unit])}"
    elif c.src.t_type.startswith(DATE_TIME_TYPES):
        c.report.note("date_time_column", text.DATE_TIME_COLUMN)
    else:
        c.report.note("date_text", text.DATE_TEXT)
    latest = time.time() + 86400  # a day of clock skew is tolerated, as in clean.bad_timestamp
    bad = f"ts IS NULL OR NOT isfinite(ts) OR ts <= 0 OR ts > {_double(latest)}"
    median = _median(c, seconds)
    if median is not None and median >= 1e8:  # columns.implausibly_small
        bad += f" OR ts < {_double(0.01 * median)}"
    c.con.execute(
        f"""CREATE VIEW evt AS SELECT k, u, i, b, ts, CAST(CASE WHEN rule > 0 THEN rule WHEN {bad} THEN 3 ELSE 0 END
        AS TINYINT) AS rule FROM (SELECT k, u, i, b, {seconds} AS ts, rule FROM ev)"""
    )
    c.record("evt", 3, "bad_timestamp", text.BAD_TIMESTAMP)


def duplicates_and_behaviors(c: DuckCleaning) -> None:
    """Table kept: rules duplicate (same key as an earlier row still in) and behavior_filter."""
    keys = ["u", "i"] + [k for k in ("t", "b") if c.has(k)]
    keep = c.settings["duplicates"] == "keep"
    partition = ", ".join("ts" if k == "t" else k for k in keys)
    dup = "FALSE" if keep else f"row_number() OVER (PARTITION BY {partition} ORDER BY k) > 1"
    outside = _outside_behaviors(c)
    c.con.execute(
        f"""CREATE TABLE kept AS SELECT k, u, i, b, ts,
        CAST(CASE WHEN dup THEN 4 WHEN {outside} THEN 5 ELSE 0 END AS TINYINT) AS rule
        FROM (SELECT k, u, i, b, ts, {dup} AS dup FROM evt WHERE rule = 0)"""
    )
    c.record("kept", 4, "duplicate", text.duplicate(keys, keep, c.has("t")))
    if c.settings["behaviors"]:
        c.record("kept", 5, "behavior_filter", text.behavior_filter(set(map(str, c.settings["behaviors"]))))


def _outside_behaviors(c: DuckCleaning) -> str:
    wanted = c.settings["behaviors"]
    if not wanted:
        return "FALSE"
    if c.behaviors is None:
        raise DataError(
            f"data.behaviors={wanted} is set but data.columns.behavior is not: "
            f"map the behaviour column or set data.behaviors=null"
        )
    keep = set(map(str, wanted))
    unknown = keep - set(c.behaviors)
    if unknown:
        log.warning("data.behaviors lists %s, which the log never uses (it has %s)", sorted(unknown), c.behaviors)
    outside = [str(code) for code, value in enumerate(c.behaviors) if value not in keep]
    return f"b IN ({', '.join(outside)})" if outside else "FALSE"


def chronological(c: DuckCleaning) -> None:
    """Table ord: the rows still in, by user (id text order = code order), time, file order; rule repeat."""
    c.con.execute(
        "CREATE TABLE ord AS SELECT k, u, i, b, ts, CAST(0 AS TINYINT) AS rule FROM kept WHERE rule = 0 "
        "ORDER BY u, ts, k"
    )
    if c.settings.get("collapse_repeats"):
        c.con.execute(
            """UPDATE ord SET rule = 6 WHERE rowid IN (SELECT rid FROM (SELECT rowid AS rid, i,
            lag(i) OVER (PARTITION BY u ORDER BY rowid) AS prev FROM ord) WHERE i = prev)"""
        )
        c.record("ord", 6, "repeat", text.REPEAT)


def k_core(c: DuckCleaning) -> None:
    """Rare items and short users, iterated until neither drops anything (as clean.k_core)."""
    min_user, min_item = min_seq_len(c.settings), int(c.settings.get("min_item_count") or 1)
    while True:
        changed = False
        if min_item > 1:
            changed |= _drop_small(c, "i", min_item, 7)
        changed |= _drop_small(c, "u", min_user, 8)
        if not changed or min_item <= 1:
            break
    if min_item > 1:
        c.record("ord", 7, "rare_item", text.rare_item(min_item))
    c.record("ord", 8, "short_user", text.short_user(min_user))


def _drop_small(c: DuckCleaning, col: str, minimum: int, code: int) -> bool:
    n = c.con.execute(
        f"""UPDATE ord SET rule = {code} WHERE rule = 0 AND {col} IN
        (SELECT {col} FROM ord WHERE rule = 0 GROUP BY {col} HAVING count(*) < {minimum})"""
    ).fetchall()[0][0]
    return bool(n)
