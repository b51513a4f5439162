"""Temporal and session splits, and the target-behaviour filter: targets where promised, no leakage."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import data_cfg, write_log
from seqexp.data.features import target_mask
from seqexp.data.loader import train_tensors
from seqexp.data.prepare import prepare
from seqexp.data.splits import by_session_end, cut_times, leave_one_out, make_split, temporal

DAY = 86400.0
T0 = 1_600_000_000.0


def _log(tmp_path, rows, columns=("user_id", "item_id", "timestamp")):
    mapping = {"user": "user_id", "item": "item_id", "timestamp": "timestamp", "behavior": None}
    if "behavior" in columns:
        mapping["behavior"] = "behavior"
    cfg = data_cfg(write_log(tmp_path / "log.csv", rows, columns), min_seq_len=2, columns=mapping)
    return prepare(cfg, tmp_path / "cache")


def _random_log(tmp_path, seed=0, behaviors=False):
    """Users with events spread over 10 days; every event a unique item so presence identifies the event."""
    rng = np.random.default_rng(seed)
    rows, item = [], 0
    for u in range(40):
        for t in np.sort(rng.uniform(0, 10 * DAY, rng.integers(3, 15))):
            item += 1
            row = (f"u{u}", item, T0 + t)
            rows.append(row + ((["pv", "pv", "buy"][rng.integers(3)],) if behaviors else ()))
    columns = ("user_id", "item_id", "timestamp") + (("behavior",) if behaviors else ())
    return _log(tmp_path, rows, columns)


def test_temporal_split_never_trains_on_or_reads_the_future(tmp_path):
    data = _random_log(tmp_path)
    valid_cut, test_cut = T0 + 6 * DAY, T0 + 8 * DAY
    split = temporal(data, valid_cut, test_cut)
    ts = data.timestamps
    for u in range(data.n_users):
        assert np.all(ts[split.train_start[u] : split.train_end[u]] < valid_cut)
        assert split.train_end[u] - split.train_start[u] == np.sum(
            ts[data.offsets[u] : data.offsets[u + 1]] < valid_cut
        )
    for es, lo, hi in ((split.valid, valid_cut, test_cut), (split.test, test_cut, np.inf)):
        assert len(es) > 5
        for r in range(len(es)):
            target_at = es.history_end[r]  # the target is the event right after the history
            assert lo <= ts[target_at] < hi and data.items[target_at] == es.targets[r]
            assert np.all(ts[es.history_start[r] : es.history_end[r]] < ts[target_at])
            u = es.users[r]
            before = ts[data.offsets[u] : target_at]
            assert np.all(before < lo)  # it is the user's first event after the cut
    # nothing a model trains on is at or after the validation cut
    train = train_tensors(data, split, max_len=5, stride=2)
    trained = set(train.windows[train.windows > 0].tolist())
    late = set(data.items[ts >= valid_cut].tolist())
    assert trained and not trained & late
    assert split.item_counts(data)[list(late)].sum() == 0  # popularity counts training events only


def test_cut_times_from_quantiles_dates_and_a_bad_order(tmp_path):
    data = _random_log(tmp_path)
    v, t = cut_times(data, None, None, 0.5, 0.9)
    assert v == pytest.approx(np.quantile(data.timestamps, 0.5)) and t == pytest.approx(
        np.quantile(data.timestamps, 0.9)
    )
    v, t = cut_times(data, "2020-09-15", T0 + 9 * DAY, 0.8, 0.9)
    assert v == pytest.approx(1600128000.0) and t == T0 + 9 * DAY
    with pytest.raises(ValueError, match="valid_time .* must be earlier than split.test_time"):
        cut_times(data, T0 + 9 * DAY, T0 + 8 * DAY, 0.8, 0.9)
    with pytest.raises(ValueError, match="split.valid_time='soon' is neither"):
        cut_times(data, "soon", None, 0.8, 0.9)


def test_session_split_keeps_whole_sessions_on_one_side(tmp_path):
    rows = []
    for s in range(30):  # session s spans [s * 0.3 days, + 3 clicks of a minute each]
        rows += [(f"s{s}", 100 * s + k, T0 + s * 0.3 * DAY + 60 * k) for k in range(2 + s % 3)]
    data = _log(tmp_path, rows)
    valid_cut, test_cut = T0 + 5 * DAY, T0 + 7 * DAY
    split = by_session_end(data, valid_cut, test_cut)
    ts = data.timestamps
    ends = ts[data.offsets[1:] - 1]
    train_sessions = {u for u in range(data.n_users) if split.train_end[u] > split.train_start[u]}
    assert train_sessions == set(np.flatnonzero(ends < valid_cut))
    assert all(split.train_end[u] == data.offsets[u + 1] for u in train_sessions)  # whole sessions
    assert set(split.valid.users) == set(np.flatnonzero((ends >= valid_cut) & (ends < test_cut)))
    assert set(split.test.users) == set(np.flatnonzero(ends >= test_cut))
    assert not train_sessions & (set(split.valid.users) | set(split.test.users))
    for r, u in enumerate(split.test.users):  # the last click is the target, the rest of the session the history
        assert split.test.targets[r] == data.sequence(u)[-1]
        assert split.test.history_start[r] == data.offsets[u] and split.test.history_end[r] == data.offsets[u + 1] - 1


def test_target_filter_evaluates_only_target_behaviours_and_trains_before_them(tmp_path):
    data = _random_log(tmp_path, behaviors=True)
    is_buy = target_mask(data, ["buy"])
    split = leave_one_out(data, is_buy)
    assert len(split.test) > 5
    for r, u in enumerate(split.test.users):
        seq_start, seq_end = data.offsets[u], data.offsets[u + 1]
        buys = np.flatnonzero(is_buy[seq_start:seq_end]) + seq_start
        assert split.test.history_end[r] == buys[-1] and split.valid.history_end[r] == buys[-2]
        assert split.train_end[u] == buys[-2]  # neither held-out purchase, nor anything after, trains
    train = train_tensors(data, split, max_len=20, is_target=is_buy)
    assert train.is_target is not None and train.is_target.shape == train.windows.shape
    # every window event marked as a target is a purchase
    buy_items = set(data.items[is_buy].tolist())
    assert set(train.windows[train.is_target].tolist()) <= buy_items
    t_split = make_split(data, {"name": "temporal", "valid_quantile": 0.5, "test_quantile": 0.8}, is_buy)
    assert np.all(is_buy[t_split.test.history_end]) and np.all(is_buy[t_split.valid.history_end])


def test_target_filter_and_splits_explain_wrong_settings(tmp_path):
    plain = _random_log(tmp_path)
    with pytest.raises(Exception, match="needs a behaviour column"):
        target_mask(plain, ["buy"])
    (tmp_path / "b").mkdir()
    data = _random_log(tmp_path / "b", behaviors=True)
    with pytest.raises(Exception, match=r"lists \['bye'\].*has \['buy', 'pv'\]"):
        target_mask(data, ["bye"])
    with pytest.raises(ValueError, match="split.name='random' is not a split"):
        make_split(data, {"name": "random"})
    log = write_log(tmp_path / "o.csv", [(1, i) for i in range(5)], ("user_id", "item_id"))
    order_only = prepare(data_cfg(log, columns={"user": "user_id", "item": "item_id"}), tmp_path / "cache")
    with pytest.raises(ValueError, match="needs timestamps"):
        make_split(order_only, {"name": "temporal"})
