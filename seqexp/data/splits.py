"""Evaluation splits, expressed as ranges into `PreparedData.items` (no copies of the events).

leave_one_out (default, DESIGN.md): each user's last event is the test target, the one before it the
  validation target, everything earlier trains. Validation inputs are the training events; test inputs add
  the validation target (never the test target).
temporal (Ji et al., "A Critical Study on Data Leakage in Recommender System Offline Evaluation", TOIS
  2023): two global cut times. Only events before the validation cut train; each user's first event in
  [valid cut, test cut) is a validation target and the first event at or after the test cut a test target,
  predicted from everything before it. No model ever trains on an event later than one it is tested on.
session: for session logs (a session plays the user): sessions that end before the validation cut train,
  whole; a session ending in [valid cut, test cut) is a validation case and one ending after the test cut a
  test case: predict its last click from the clicks before it.

Every split takes an optional `is_target` mask (split.target_behaviors): only events it marks are ever
evaluated as targets (e.g. the next purchase, predicted from all behaviours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from seqexp.data.dates import cut_time
from seqexp.data.rule_text import timestamp_unit_read
from seqexp.data.sequences import PreparedData

# split keys added after runs were recorded without them: absent means this value (resume and seqexp-compare)
ADDED_LATER = {"valid_users": None, "valid_seed": 0}


@dataclass
class EvalSet:
    """One target per row: predict `targets[r]` from the events `items[history_start[r]:history_end[r]]`."""

    users: np.ndarray  # (M,) user indices
    history_start: np.ndarray  # (M,) int64, inclusive
    history_end: np.ndarray  # (M,) int64, exclusive; everything the model may see for this target
    targets: np.ndarray  # (M,) item indices

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Split:
    train_start: np.ndarray  # (U,) int64: user u trains on items[train_start[u]:train_end[u]]
    train_end: np.ndarray  # (U,) int64
    valid: EvalSet
    test: EvalSet
    name: str  # recorded in results.json

    def train_items(self, data: PreparedData) -> np.ndarray:
        """All training events, flat: what popularity counts and what the model may fit."""
        lengths = self.train_end - self.train_start
        return data.items[ranges_to_index(self.train_start, lengths)]

    def item_counts(self, data: PreparedData) -> np.ndarray:
        """(N + 1,) training events per item index; 0 at padding."""
        return np.bincount(self.train_items(data), minlength=data.n_items + 1)


def leave_one_out(data: PreparedData, is_target: np.ndarray | None = None) -> Split:
    start, end = data.offsets[:-1], data.offsets[1:]
    if is_target is None:
        if np.any(end - start < 3):
            raise ValueError("leave-one-out needs >= 3 events per user; data.min_seq_len must be >= 3")
        users = np.arange(data.n_users)
        valid = EvalSet(users, start.copy(), end - 2, data.items[end - 2])
        test = EvalSet(users, start.copy(), end - 1, data.items[end - 1])
        return Split(train_start=start.copy(), train_end=end - 2, valid=valid, test=test, name="leave_one_out")
    # targets restricted: the user's last target event tests, the one before validates, earlier events train
    last = last_marked_before(data, is_target, end)
    second = last_marked_before(data, is_target, np.where(last >= 0, last, start))
    ok = second > start  # a validation target with at least one event before it
    users = np.flatnonzero(ok)
    valid = _eval_set(data, users, start, second)
    test = _eval_set(data, users, start, last)
    train_end = np.where(ok, second, end)  # users who are never evaluated train on everything
    return Split(start.copy(), train_end, valid, test, name="leave_one_out")


def temporal(data: PreparedData, valid_time: float, test_time: float, is_target: np.ndarray | None = None) -> Split:
    """Global time cuts (see the module docstring); `valid_time` < `test_time`, unix seconds."""
    ts = _timestamps(data, "temporal")
    start, end = data.offsets[:-1], data.offsets[1:]
    mark = np.ones(data.n_events, dtype=bool) if is_target is None else is_target
    train_end = start + _count_per_user(data, ts < valid_time)
    valid_at = first_marked_from(data, mark & (ts >= valid_time) & (ts < test_time))
    test_at = first_marked_from(data, mark & (ts >= test_time))
    valid_users = np.flatnonzero((valid_at >= 0) & (valid_at > start))
    test_users = np.flatnonzero((test_at >= 0) & (test_at > start))
    return Split(
        start.copy(),
        np.minimum(train_end, end),
        _eval_set(data, valid_users, start, valid_at),
        _eval_set(data, test_users, start, test_at),
        name="temporal",
    )


def by_session_end(data: PreparedData, valid_time: float, test_time: float) -> Split:
    """Whole sessions on each side of the cuts, placed by their last click's time."""
    ts = _timestamps(data, "session")
    start, end = data.offsets[:-1], data.offsets[1:]
    session_end = ts[end - 1]
    in_train = session_end < valid_time
    valid_users = np.flatnonzero((session_end >= valid_time) & (session_end < test_time) & (end - start >= 2))
    test_users = np.flatnonzero((session_end >= test_time) & (end - start >= 2))
    return Split(
        start.copy(),
        np.where(in_train, end, start),
        _eval_set(data, valid_users, start, end - 1),
        _eval_set(data, test_users, start, end - 1),
        name="session",
    )


def validate_on_sample(split: Split, n_users: int, seed: int) -> Split:
    """Keep the validation targets of a seeded sample of `n_users` validation users out of training; every other
    user of the leave-one-out split trains up to its test target (its validation target becomes training data).
    The test set is unchanged; validation shrinks to the sample."""
    if n_users < 1:
        raise ValueError(f"split.valid_users={n_users} must be a positive number of users (or null: every user)")
    rows = np.arange(len(split.valid))
    if n_users < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=n_users, replace=False))
    test_end = np.full(len(split.train_end), -1, dtype=np.int64)
    test_end[split.test.users] = split.test.history_end
    train_end = split.train_end.copy()
    others = np.setdiff1d(split.valid.users, split.valid.users[rows])
    train_end[others] = test_end[others]  # up to (never including) the test target
    v = split.valid
    valid = EvalSet(v.users[rows], v.history_start[rows], v.history_end[rows], v.targets[rows])
    return Split(split.train_start, train_end, valid, split.test, name=split.name)


def make_split(
    data: PreparedData, split_cfg, is_target: np.ndarray | None = None, time_format: str | None = None
) -> Split:
    """The split named by the `split` config group (conf/split/*.yaml); cut times are read in `time_format` (the
    data.timestamp_format the log's times were read with) when they fit it."""
    name = str(split_cfg.get("name", "leave_one_out"))
    valid_users = split_cfg.get("valid_users")
    if name == "leave_one_out":
        split = leave_one_out(data, is_target)
        if valid_users is None:
            return split
        return validate_on_sample(split, int(valid_users), int(split_cfg.get("valid_seed", 0)))
    if valid_users is not None:
        raise ValueError(
            f"split.valid_users={valid_users} applies to split=leave_one_out only; split={name} chooses its "
            "validation cases by time: remove split.valid_users"
        )
    if name not in ("temporal", "session"):
        raise ValueError(f"split.name={name!r} is not a split; use leave_one_out, temporal or session")
    valid_time, test_time = cut_times(
        data,
        split_cfg.get("valid_time"),
        split_cfg.get("test_time"),
        split_cfg.get("valid_quantile", 0.8),
        split_cfg.get("test_quantile", 0.9),
        time_format,
    )
    if name == "session":
        if is_target is not None:
            raise ValueError("split=session predicts each session's last click; split.target_behaviors must be null")
        return by_session_end(data, valid_time, test_time)
    return temporal(data, valid_time, test_time, is_target)


def cut_times(
    data: PreparedData, valid_time, test_time, valid_quantile, test_quantile, time_format: str | None = None
) -> tuple[float, float]:
    """The two cut times: given (unix seconds or a date string, `dates.cut_time`), or quantiles of all event
    times. A given cut after the log's last event (it would leave no cases) is refused, with a word on units."""
    ts = _timestamps(data, "temporal")
    out, whence = [], []
    for given, q, key in ((valid_time, valid_quantile, "valid"), (test_time, test_quantile, "test")):
        if given is None:
            out.append(float(np.quantile(ts, _quantile(q, f"{key}_quantile"))))
            whence.append(f", the split.{key}_quantile={q} quantile of the event times")
        else:
            out.append(cut_time(given, f"{key}_time", time_format))
            whence.append("")
    given = [v for v, g in zip(out, (valid_time, test_time), strict=True) if g is not None]
    if not out[0] < out[1]:
        raise ValueError(
            f"split.valid_time ({out[0]}{whence[0]}) must be earlier than split.test_time ({out[1]}{whence[1]})"
            + (f"; {_unit_words(data, given)}" if given else "")
        )
    last = float(np.max(ts)) if len(ts) else 0.0
    for v, g, key in ((out[0], valid_time, "valid_time"), (out[1], test_time, "test_time")):
        if g is not None and v > last:
            when = datetime.fromtimestamp(last, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            raise ValueError(
                f"split.{key}={g!r} is later than the log's last event ({last:.0f} = {when}), so it leaves no "
                f"validation or test case; {_unit_words(data, given)}"
            )
    return out[0], out[1]


def _quantile(q, key: str) -> float:
    try:
        value = float(q)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"split.{key}={q!r} must be a share of the events between 0 and 1 (e.g. 0.8)")
    return value


def _unit_words(data: PreparedData, given: list[float]) -> str:
    """What unit cut times are in, and why a given one may be off: the log's unit, a cut in milliseconds."""
    words = "cut times are unix seconds or date-times (e.g. 2023-12-02)"
    unit = timestamp_unit_read(data.report) if data.report is not None else None
    if unit not in (None, "s"):
        words += f"; this log's timestamps were read in {unit} and converted to seconds"
    big = [v for v in given if v > 1e11]  # 1e11 s is the year 5138: milliseconds
    if big:
        words += f"; {big[0]:.0f} looks like milliseconds: divide by 1000 ({big[0] / 1000:.0f})"
    return words


def last_marked_before(data: PreparedData, mark: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(U,) index of each user's last marked event at an index < before[u] (and >= the user's start); -1 if none."""
    user_of = np.repeat(np.arange(data.n_users), np.diff(data.offsets))
    idx = np.flatnonzero(mark & (np.arange(data.n_events) < before[user_of]))
    out = np.full(data.n_users, -1, dtype=np.int64)
    out[user_of[idx]] = idx  # later indices overwrite earlier ones: the last one wins
    return out


def first_marked_from(data: PreparedData, mark: np.ndarray) -> np.ndarray:
    """(U,) index of each user's first marked event; -1 if none."""
    user_of = np.repeat(np.arange(data.n_users), np.diff(data.offsets))
    idx = np.flatnonzero(mark)[::-1]
    out = np.full(data.n_users, -1, dtype=np.int64)
    out[user_of[idx]] = idx  # reversed: the first one is written last
    return out


def _eval_set(data: PreparedData, users: np.ndarray, start: np.ndarray, target_at: np.ndarray) -> EvalSet:
    t = target_at[users]
    return EvalSet(users.astype(np.int64), start[users].copy(), t.copy(), data.items[t])


def _count_per_user(data: PreparedData, mask: np.ndarray) -> np.ndarray:
    return np.add.reduceat(mask.astype(np.int64), data.offsets[:-1]) if data.n_events else np.zeros(0, np.int64)


def _timestamps(data: PreparedData, split: str) -> np.ndarray:
    if data.timestamps is None:
        raise ValueError(f"split={split} needs timestamps, but this log has none (data.columns.timestamp is null)")
    return data.timestamps


def ranges_to_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate the index ranges [starts[i], starts[i] + lengths[i]) without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    row_offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + (np.arange(total) - row_offsets)
