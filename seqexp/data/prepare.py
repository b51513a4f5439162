"""Clean a behaviour log and turn it into per-user chronological sequences (cached).

Rules, in order, each counted in the `PrepReport` with example rows:
  missing_value   user or item id (or the behaviour, when mapped) is missing or blank
  invalid_id      a negative id, or a non-integer id in a column of integer ids (a mixed-type column)
  bad_timestamp   the timestamp does not parse, is not positive and finite, lies in the future, or is a
                  truncated unix time (under 1% of the median of a log in unix seconds)
  duplicate       the same (user, item, timestamp, behaviour) appears again: keep the first
  behavior_filter the behaviour is not in data.behaviors (only when data.behaviors is set)
  short_user      the user has fewer than data.min_seq_len events left

Order within a user: by timestamp, ties kept in file order (a stable sort on (timestamp, row)).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqexp.data.prepared import PreparedData
from seqexp.data.report import PrepReport
from seqexp.data.sources import file_fingerprint, read_log, resolve_log_path
from seqexp.errors import DataError
from seqexp.results import write_json

log = logging.getLogger(__name__)

PREP_VERSION = 3  # bump when the cleaning rules change, so that old cache entries are not reused

# data.* keys that change the prepared result (and so the cache key); max_len is applied later, by the loader.
PREP_KEYS = (
    "format",
    "sep",
    "header",
    "names",
    "encoding",
    "columns",
    "behaviors",
    "min_seq_len",
    "max_invalid_fraction",
)


def prepare(data_cfg: Mapping[str, Any], cache_dir: str | Path | None = None) -> PreparedData:
    """Read, clean and sequence the log named by `data_cfg`; reuse the cache entry when one matches."""
    path = resolve_log_path(data_cfg["path"], data_cfg.get("filename"))
    settings = {k: _plain(data_cfg.get(k)) for k in PREP_KEYS}
    file_sha = remembered_fingerprint(path, Path(cache_dir) if cache_dir else None)
    key = hashlib.sha256(json.dumps([PREP_VERSION, file_sha, settings], sort_keys=True).encode()).hexdigest()
    entry = Path(cache_dir) / "prepared" / key[:32] if cache_dir else None
    if entry is not None and entry.exists():
        try:
            data = PreparedData.load(entry)
            log.info("prepared data from cache %s", entry)
            return data
        except Exception as e:  # a damaged entry is rebuilt, never trusted
            log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, e)
    data = build(path, file_sha, key, settings)
    if entry is not None:
        data.save(entry)
    return data


def remembered_fingerprint(path: Path, cache_dir: Path | None) -> str:
    """sha256 of the file, remembered by (path, size, mtime) in the cache dir so that an unchanged
    multi-GB log is not read again just to find its cache entry."""
    if cache_dir is None:
        return file_fingerprint(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = cache_dir / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        memo[key] = file_fingerprint(path)
        write_json(memo_path, memo)
    return memo[key]


def build(path: Path, file_sha: str, key: str, s: dict[str, Any]) -> PreparedData:
    df = read_log(
        path,
        s["columns"],
        fmt=s["format"] or "csv",
        sep=s["sep"] or ",",
        header=s["header"] if s["header"] is not None else True,
        names=s["names"],
        encoding=s["encoding"] or "utf-8",
    )
    report = PrepReport(source=str(path), file_sha256=file_sha, rows_in=len(df))
    has_ts = "timestamp" in df.columns
    has_behavior = "behavior" in df.columns

    # 1. missing ids (and behaviour)
    id_cols = ["user_id", "item_id"] + (["behavior"] if has_behavior else [])
    for col in id_cols:
        df[col] = df[col].astype("string").str.strip()
    bad = df[id_cols].isna().any(axis=1) | (df[id_cols] == "").fillna(False).any(axis=1)
    df = _drop(df, bad, report, "missing_value", f"missing or blank {'/'.join(id_cols)}")
    bad = invalid_ids(df["user_id"]) | invalid_ids(df["item_id"])
    df = _drop(df, bad, report, "invalid_id", "negative number, or not an integer in a column of integer ids")

    # 2. timestamps
    if has_ts:
        raw_ts = df["timestamp"]
        ts = parse_timestamps(raw_ts)
        latest = time.time() + 86400  # a day of clock skew is tolerated
        bad = ~np.isfinite(ts) | (ts <= 0) | (ts > latest) | implausibly_small(ts)
        df = df.assign(timestamp=ts)
        df = _drop(
            df.assign(raw_timestamp=raw_ts),
            bad,
            report,
            "bad_timestamp",
            "timestamp unparsable, not finite, <= 0, in the future, or a truncated unix time",
        ).drop(columns="raw_timestamp")
    _check_invalid_fraction(path, report, float(s["max_invalid_fraction"] or 0.05))

    # 3. exact duplicates
    dup_cols = ["user_id", "item_id"] + (["timestamp"] if has_ts else []) + (["behavior"] if has_behavior else [])
    df = _drop(
        df,
        df.duplicated(dup_cols, keep="first"),
        report,
        "duplicate",
        f"same ({', '.join(dup_cols)}) as an earlier row; the first is kept",
    )

    # 4. behaviour filter
    if s["behaviors"]:
        if not has_behavior:
            raise DataError(
                f"data.behaviors={s['behaviors']} is set but data.columns.behavior is not: "
                f"map the behaviour column or set data.behaviors=null"
            )
        keep = set(map(str, s["behaviors"]))
        df = _drop(
            df, ~df["behavior"].isin(keep), report, "behavior_filter", f"behaviour not in data.behaviors={sorted(keep)}"
        )

    # 5. short users
    min_len = int(s["min_seq_len"] or 3)
    counts = df.groupby("user_id", sort=False)["item_id"].transform("size")
    df = _drop(df, counts < min_len, report, "short_user", f"user has fewer than data.min_seq_len={min_len} events")
    if df.empty:
        emptied = next((r.rule for r in reversed(report.rules) if r.dropped and r.rows_left == 0), "?")
        raise DataError(
            f"{path}: no events are left after cleaning; rule {emptied!r} removed the last rows "
            f"(see the report: {[(r.rule, r.dropped) for r in report.rules]})"
        )

    # chronological order per user; ties keep file order
    order = ["user_id"] + (["timestamp"] if has_ts else []) + ["row"]
    df = df.sort_values(order, kind="stable")
    user_codes, user_ids = pd.factorize(df["user_id"], sort=False)
    item_codes, item_ids = pd.factorize(df["item_id"], sort=False)
    offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_codes, minlength=len(user_ids)), out=offsets[1:])
    behaviors, vocab = None, []
    if has_behavior:
        codes, uniques = pd.factorize(df["behavior"], sort=True)
        behaviors, vocab = codes.astype(np.int16), [str(u) for u in uniques]
    report.users, report.items, report.events = len(user_ids), len(item_ids), len(df)
    return PreparedData(
        item_ids=np.asarray(item_ids, dtype=object),
        user_ids=np.asarray(user_ids, dtype=object),
        offsets=offsets,
        items=item_codes.astype(np.int64) + 1,
        timestamps=df["timestamp"].to_numpy(np.float64) if has_ts else None,
        behaviors=behaviors,
        behavior_vocab=vocab,
        report=report,
        fingerprint=key,
    )


def invalid_ids(col: pd.Series) -> np.ndarray:
    """True for ids that are negative numbers, or non-integers in a column whose ids are (>= 90%) integers:
    such a mix is a shifted column or a corrupt row far more often than a real id."""
    as_int = pd.to_numeric(col, errors="coerce")
    negative = (as_int < 0).fillna(False).to_numpy(bool)
    integer = as_int.notna() & (as_int == as_int.round())
    mostly_integers = len(col) > 0 and integer.mean() >= 0.9
    return negative | (~integer.to_numpy(bool) if mostly_integers else np.zeros(len(col), dtype=bool))


def implausibly_small(ts: np.ndarray) -> np.ndarray:
    """In a log of unix seconds (median after 1973), a value under 1% of the median is a truncated or
    mis-scaled time (the Taobao rdav27_ slice ends in `...,pv,15`), not an event from 1970. Logs whose
    timestamps are small counters are left alone."""
    finite = ts[np.isfinite(ts)]
    if not len(finite) or np.median(finite) < 1e8:
        return np.zeros(len(ts), dtype=bool)
    return ts < 0.01 * np.median(finite)


def parse_timestamps(col: pd.Series) -> np.ndarray:
    """Unix seconds as float64 (NaN where unparsable). Numbers are taken as they are; when most values
    are not numbers, the column is parsed as date-times (ISO 8601 and similar), in UTC."""
    numeric = pd.to_numeric(col, errors="coerce")
    present = int(col.notna().sum())
    if present and numeric.notna().sum() < 0.5 * present:
        dt = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
        if dt.notna().sum() > numeric.notna().sum():
            return ((dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(np.float64)
    return numeric.to_numpy(np.float64)


def _drop(df: pd.DataFrame, mask: pd.Series | np.ndarray, report: PrepReport, rule: str, why: str) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    kept = df[~mask]
    report.add(rule, why, df[mask], len(kept))
    return kept


def _check_invalid_fraction(path: Path, report: PrepReport, limit: float) -> None:
    """Unparsable rows are dropped one by one, but when many are, the column mapping is wrong: say so."""
    for r in report.rules:
        if report.rows_in and r.dropped / report.rows_in > limit:
            raise DataError(
                f"{path}: rule {r.rule!r} ({r.description}) rejects {r.dropped:,} of {report.rows_in:,} rows, more "
                f"than data.max_invalid_fraction={limit}; e.g. {r.examples[:2]}. Check data.columns / data.sep "
                f"(is that column really the one you meant?), or raise data.max_invalid_fraction"
            )


def _plain(v: Any) -> Any:
    """OmegaConf containers -> plain Python, for hashing and JSON."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig | ListConfig) else v
