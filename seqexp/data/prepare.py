"""Clean a behaviour log and turn it into per-user chronological sequences (cached).

Rules, in order, each counted in the `PrepReport` with example rows (nothing is dropped silently):
  malformed_row   the reader could not split the row into the expected fields (a truncated last line)
  missing_value   user or item id (or the behaviour, when mapped) is missing or blank
  invalid_id      a negative id, or a non-integer id in a column of integer ids (a mixed-type column)
  bad_timestamp   the timestamp does not parse, is not positive and finite, lies in the future, or is a
                  truncated unix time (under 1% of the median of a log in unix seconds)
  duplicate       the same (user, item, timestamp, behaviour) appears again: keep the first
  behavior_filter the behaviour is not in data.behaviors (only when data.behaviors is set)
  repeat          the same item as the user's previous event (only with data.collapse_repeats=true)
  rare_item       the item has fewer than data.min_item_count events (k-core; only when that is > 1)
  short_user      the user has fewer than data.min_seq_len events left
rare_item and short_user are iterated until neither drops anything (a k-core).

Order within a user: by timestamp, ties kept in file order (a stable sort). Everything runs on Arrow
and numpy arrays: no Python loop over rows, so a 10M-event log prepares in seconds.
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
import pyarrow as pa

from seqexp.data.columns import CodedColumn, implausibly_small, invalid_id_mask, parse_timestamps
from seqexp.data.prepared import PreparedData
from seqexp.data.readers import RawLog, read_log, resolve_log_path
from seqexp.data.report import PrepReport
from seqexp.errors import DataError
from seqexp.io import sha256_file, write_json

log = logging.getLogger(__name__)

PREP_VERSION = 4  # bump when the cleaning rules change, so that old cache entries are not reused

# data.* keys that change the prepared result (and so the cache key); max_len is applied later, by the loader.
PREP_KEYS = (
    "format",
    "sep",
    "header",
    "names",
    "encoding",
    "hf_split",
    "columns",
    "behaviors",
    "collapse_repeats",
    "min_seq_len",
    "min_item_count",
    "max_invalid_fraction",
)


def prepare(data_cfg: Mapping[str, Any], cache_dir: str | Path | None = None) -> PreparedData:
    """Read, clean and sequence the log named by `data_cfg`; reuse the cache entry when one matches."""
    settings = {k: _plain(data_cfg.get(k)) for k in PREP_KEYS}
    raw = None
    if settings["format"] == "hf":  # a dataset name or folder: the dataset's own fingerprint identifies it
        path: Path | str = str(data_cfg["path"])
        raw = read_source(path, settings)
        file_sha = str(raw.fingerprint)
    else:
        path = resolve_log_path(data_cfg["path"], data_cfg.get("filename"))
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
    data = build(path, file_sha, key, settings, raw)
    if entry is not None:
        data.save(entry)
    return data


def remembered_fingerprint(path: Path, cache_dir: Path | None) -> str:
    """sha256 of the file, remembered by (path, size, mtime) in the cache dir so that an unchanged
    multi-GB log is not read again just to find its cache entry."""
    if cache_dir is None:
        return sha256_file(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = cache_dir / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        memo[key] = sha256_file(path)
        write_json(memo_path, memo)
    return memo[key]


def build(path: Path, file_sha: str, key: str, s: dict[str, Any], raw: RawLog | None = None) -> PreparedData:
    raw = raw or read_source(path, s)
    table = raw.table
    n = table.num_rows
    report = PrepReport(source=str(path), file_sha256=file_sha, rows_in=n + raw.n_malformed)
    report.add(
        "malformed_row",
        "wrong number of fields (e.g. a truncated last line) or unreadable",
        raw.n_malformed,
        n,
        [{"row": m.line, "text": m.text, "why": m.why} for m in raw.malformed],
    )
    events = Events(table, report)
    has_ts = "timestamp" in table.column_names
    has_behavior = "behavior" in table.column_names

    # 1. missing and invalid ids (and behaviour)
    user = CodedColumn.encode(table.column("user_id"))
    item = CodedColumn.encode(table.column("item_id"))
    behavior = CodedColumn.encode(table.column("behavior")) if has_behavior else None
    missing = user.missing | item.missing | (behavior.missing if behavior else False)
    names = "/".join(["user_id", "item_id"] + (["behavior"] if has_behavior else []))
    events.drop(missing, "missing_value", f"missing or blank {names}")
    events.drop(
        invalid_id_mask(user) | invalid_id_mask(item),
        "invalid_id",
        "negative number, or not an integer in a column of integer ids",
    )

    # 2. timestamps
    ts = None
    if has_ts:
        ts = parse_timestamps(table.column("timestamp"))
        latest = time.time() + 86400  # a day of clock skew is tolerated
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(ts) | (ts <= 0) | (ts > latest) | implausibly_small(np.where(events.alive, ts, np.nan))
        events.drop(
            bad, "bad_timestamp", "timestamp unparsable, not finite, <= 0, in the future, or a truncated unix time"
        )
    _check_invalid_fraction(path, report, float(s["max_invalid_fraction"] or 0.05))

    # 3. exact duplicates
    keys = {"u": user.codes, "i": item.codes}
    if has_ts:
        keys["t"] = ts
    if has_behavior:
        keys["b"] = behavior.codes
    alive_idx = events.indices()
    dup = np.zeros(n, dtype=bool)
    dup[alive_idx] = pd.DataFrame({k: v[alive_idx] for k, v in keys.items()}).duplicated(keep="first").to_numpy()
    events.drop(
        dup, "duplicate", f"same ({', '.join(DUP_NAMES[k] for k in keys)}) as an earlier row; the first is kept"
    )

    # 4. behaviour filter
    if s["behaviors"]:
        if not has_behavior:
            raise DataError(
                f"data.behaviors={s['behaviors']} is set but data.columns.behavior is not: "
                f"map the behaviour column or set data.behaviors=null"
            )
        keep = set(map(str, s["behaviors"]))
        unknown = keep - set(behavior.values)
        if unknown:
            log.warning(
                "data.behaviors lists %s, which the log never uses (it has %s)", sorted(unknown), list(behavior.values)
            )
        outside = behavior.value_mask(~np.isin(behavior.values, list(keep)))
        events.drop(outside, "behavior_filter", f"behaviour not in data.behaviors={sorted(keep)}")

    # chronological order per user (users in id order); ties keep file order
    user_rank = np.argsort(np.argsort(user.values.astype(str), kind="stable"), kind="stable")
    idx = events.indices()
    sort_keys = (idx,) + ((ts[idx],) if has_ts else ()) + (user_rank[user.codes[idx]],)
    order = idx[np.lexsort(sort_keys)]

    # 5. consecutive repeats (optional)
    if s.get("collapse_repeats"):
        u, i = user.codes[order], item.codes[order]
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (u[1:] == u[:-1]) & (i[1:] == i[:-1])
        events.drop(_mask(n, order[repeat]), "repeat", "same item as the user's previous event (data.collapse_repeats)")
        order = order[~repeat]

    # 6. k-core: rare items and short users, iterated until neither rule drops anything
    order = k_core(events, order, user.codes, item.codes, int(s["min_seq_len"] or 3), int(s.get("min_item_count") or 1))
    if not len(order):
        emptied = next((r.rule for r in reversed(report.rules) if r.dropped and r.rows_left == 0), "?")
        raise DataError(
            f"{path}: no events are left after cleaning; rule {emptied!r} removed the last rows "
            f"(see the report: {[(r.rule, r.dropped) for r in report.rules]})"
        )
    return sequences(order, user, item, ts, behavior, report, key)


DUP_NAMES = {"u": "user_id", "i": "item_id", "t": "timestamp", "b": "behavior"}


class Events:
    """Which rows of the raw table are still in; each rule drops some and is recorded with examples."""

    def __init__(self, table: pa.Table, report: PrepReport):
        self.table, self.report = table, report
        self.alive = np.ones(table.num_rows, dtype=bool)

    def indices(self) -> np.ndarray:
        return np.flatnonzero(self.alive)

    def drop(self, mask: np.ndarray, rule: str, why: str) -> None:
        hit = np.asarray(mask, dtype=bool) & self.alive
        examples = self.table.take(pa.array(np.flatnonzero(hit)[:3])).to_pylist() if hit.any() else []
        self.alive &= ~hit
        self.report.add(rule, why, int(hit.sum()), int(self.alive.sum()), examples)


def k_core(events: Events, order: np.ndarray, users: np.ndarray, items: np.ndarray, min_user: int, min_item: int):
    """Drop items with fewer than `min_item` events and users with fewer than `min_user`, repeatedly,
    until both hold (one pass when min_item is 1: dropping users cannot make an item rarer than 1)."""
    n = len(events.alive)
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
        events.drop(
            dropped["rare_item"], "rare_item", f"item has fewer than data.min_item_count={min_item} events (k-core)"
        )
    events.drop(dropped["short_user"], "short_user", f"user has fewer than data.min_seq_len={min_user} events")
    return order


def sequences(
    order: np.ndarray,
    user: CodedColumn,
    item: CodedColumn,
    ts: np.ndarray | None,
    behavior: CodedColumn | None,
    report: PrepReport,
    key: str,
) -> PreparedData:
    """CSR sequences from the chronologically ordered surviving rows; item indices by first appearance."""
    u = user.codes[order]
    new_user = np.ones(len(u), dtype=bool)
    new_user[1:] = u[1:] != u[:-1]
    starts = np.flatnonzero(new_user)
    offsets = np.append(starts, len(u)).astype(np.int64)
    codes = item.codes[order]
    present, first = np.unique(codes, return_index=True)
    by_appearance = present[np.argsort(first, kind="stable")]
    index_of = np.zeros(len(item.values), dtype=np.int64)
    index_of[by_appearance] = np.arange(1, len(by_appearance) + 1)
    behaviors, vocab = None, []
    if behavior is not None:
        b = behavior.codes[order]
        used = np.unique(b)
        vocab_order = used[np.argsort(behavior.values[used].astype(str), kind="stable")]
        rank = np.zeros(len(behavior.values), dtype=np.int16)
        rank[vocab_order] = np.arange(len(vocab_order))
        behaviors, vocab = rank[b], [str(v) for v in behavior.values[vocab_order]]
    report.users, report.items, report.events = len(starts), len(by_appearance), len(order)
    return PreparedData(
        item_ids=item.values[by_appearance].astype(object),
        user_ids=user.values[u[starts]].astype(object),
        offsets=offsets,
        items=index_of[codes],
        timestamps=ts[order].astype(np.float64) if ts is not None else None,
        behaviors=behaviors,
        behavior_vocab=vocab,
        report=report,
        fingerprint=key,
    )


def read_source(path: Path | str, s: dict[str, Any]) -> RawLog:
    return read_log(
        path,
        s["columns"],
        fmt=s["format"] or "csv",
        sep=s["sep"] or ",",
        header=s["header"] if s["header"] is not None else True,
        names=s["names"],
        encoding=s["encoding"] or "utf-8",
        hf_split=s.get("hf_split") or "train",
    )


def _mask(n: int, indices: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[indices] = True
    return m


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
