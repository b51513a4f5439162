"""Cleaning rules, chronological order, id maps and the cache."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import data_cfg, write_log
from seqexp.data.prepare import prepare
from seqexp.data.sequences import PreparedData
from seqexp.errors import DataError


def _log(tmp_path):
    rows = [
        ("u1", "a", 30),
        ("u1", "b", 10),
        ("u1", "c", 20),
        ("u1", "d", 20),  # c, d tie at 20: file order
        ("u1", "b", 10),  # exact duplicate
        ("u2", "x", 5),
        ("u2", "", 6),
        ("u2", "y", "not-a-time"),
        ("u2", "z", 7),
        ("u2", "x", 8),
        ("u3", "a", 1),
        ("u3", "b", 2),  # only 2 events: dropped as a short user
        (None, "a", 3),  # missing user
    ]
    return write_log(tmp_path / "log.csv", rows)


def test_rules_are_counted_with_examples(tmp_path, tmp_cache):
    data = prepare(data_cfg(_log(tmp_path)), tmp_cache)
    r = data.report
    assert r.rows_in == 13
    assert [(x.rule, x.dropped) for x in r.rules] == [
        ("malformed_row", 0),
        ("missing_value", 2),
        ("invalid_id", 0),
        ("bad_timestamp", 1),
        ("duplicate", 1),
        ("short_user", 2),
    ]
    assert r.rules[3].examples[0]["timestamp"] == "not-a-time" and r.rules[3].examples[0]["row"] == 9
    assert r.events == 7 and r.users == 2 and r.items == 6
    assert "short_user" in r.to_text()


def test_chronological_order_with_ties_in_file_order_and_padding_free_ids(tmp_path, tmp_cache):
    data = prepare(data_cfg(_log(tmp_path)), tmp_cache)
    seqs = {data.user_ids[u]: [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)}
    assert seqs == {"u1": ["b", "c", "d", "a"], "u2": ["x", "z", "x"]}
    assert data.items.min() == 1 and data.items.max() == data.n_items  # 0 is reserved for padding
    assert np.all(np.diff(data.timestamps[data.offsets[0] : data.offsets[1]]) >= 0)


def test_order_only_logs_keep_file_order(tmp_path, tmp_cache):
    p = tmp_path / "pairs.txt"
    p.write_text("1 5\n2 7\n1 3\n1 9\n2 8\n2 1\n")
    cfg = data_cfg(
        p,
        sep=" ",
        header=False,
        names=["user", "item"],
        columns={"user": "user", "item": "item", "timestamp": None, "behavior": None},
    )
    data = prepare(cfg, tmp_cache)
    assert data.timestamps is None
    assert [data.item_ids[i - 1] for i in data.sequence(0)] == ["5", "3", "9"]


def test_behaviour_filter_and_iso_datetimes(tmp_path, tmp_cache):
    rows = [
        (1, 10, "2024-01-01T00:00:00", "pv"),
        (1, 11, "2024-01-01T00:01:00", "buy"),
        (1, 12, "2024-01-01T00:02:00", "pv"),
        (1, 13, "2024-01-01T00:03:00", "pv"),
    ]
    p = write_log(tmp_path / "log.csv", rows, ("user_id", "item_id", "timestamp", "behavior"))
    cfg = data_cfg(
        p,
        behaviors=["pv"],
        columns={"user": "user_id", "item": "item_id", "timestamp": "timestamp", "behavior": "behavior"},
    )
    data = prepare(cfg, tmp_cache)
    assert data.report.dropped("behavior_filter") == 1
    assert data.timestamps[0] == pytest.approx(1704067200.0)
    assert data.behavior_vocab == ["pv"]


def test_empty_result_names_the_rule(tmp_path, tmp_cache):
    p = write_log(tmp_path / "log.csv", [(1, 1, 1), (1, 2, 2), (2, 1, 3)])
    with pytest.raises(DataError, match="'short_user'"):
        prepare(data_cfg(p), tmp_cache)


def test_cache_is_reused_and_keyed_by_content_and_settings(tmp_path, tmp_cache):
    p = _log(tmp_path)
    first = prepare(data_cfg(p), tmp_cache)
    entries = list((tmp_cache / "prepared").iterdir())
    assert len(entries) == 1
    again = prepare(data_cfg(p), tmp_cache)
    assert again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.items, first.items)
    assert list(again.item_ids) == list(first.item_ids) and again.report.to_dict() == first.report.to_dict()
    prepare(data_cfg(p, min_seq_len=4), tmp_cache)  # another setting -> another entry
    p.write_text(p.read_text() + "u9,q,1\n")  # another file content -> another entry
    prepare(data_cfg(p), tmp_cache)
    assert len(list((tmp_cache / "prepared").iterdir())) == 3


def test_damaged_cache_entry_is_rebuilt(tmp_path, tmp_cache):
    p = _log(tmp_path)
    first = prepare(data_cfg(p), tmp_cache)
    (entry,) = (tmp_cache / "prepared").iterdir()
    (entry / "events.parquet").write_bytes(b"garbage")
    rebuilt = prepare(data_cfg(p), tmp_cache)
    np.testing.assert_array_equal(rebuilt.items, first.items)
    assert isinstance(PreparedData.load(entry), PreparedData)  # rewritten: readable again


def test_negative_and_mixed_type_ids_and_future_timestamps_are_dropped_with_examples(tmp_path, tmp_cache):
    rows = [(1, i, 100 + i) for i in range(1, 30)] + [(2, i, 200 + i) for i in range(1, 30)]
    rows += [(-3, 5, 300), (2, "x7", 301), (2, 6, 4102444800)]  # negative user, a word among integers, year 2100
    data = prepare(data_cfg(write_log(tmp_path / "log.csv", rows)), tmp_cache)
    rules = {r.rule: r for r in data.report.rules}
    assert rules["invalid_id"].dropped == 2
    assert [e["row"] for e in rules["invalid_id"].examples] == [60, 61]
    assert rules["bad_timestamp"].dropped == 1 and rules["bad_timestamp"].examples[0]["row"] == 62
    assert data.n_events == 58 and "x7" not in set(data.item_ids)


def test_alphanumeric_ids_are_valid(tmp_path, tmp_cache):
    rows = [("A1B", "B00X", 1), ("A1B", "C7", 2), ("A1B", "12", 3)]
    data = prepare(data_cfg(write_log(tmp_path / "log.csv", rows)), tmp_cache)
    assert data.report.dropped("invalid_id") == 0 and data.n_events == 3


def test_truncated_unix_times_are_dropped_but_small_counters_are_kept(tmp_path, tmp_cache):
    rows = [(1, i, 1511544000 + i) for i in range(1, 6)] + [(1, 9, 15)]  # the rdav27_ Taobao slice ends so
    data = prepare(data_cfg(write_log(tmp_path / "unix.csv", rows)), tmp_cache)
    assert data.report.dropped("bad_timestamp") == 1 and data.n_events == 5
    counters = [(1, i, i) for i in range(1, 6)]  # timestamps that are event counters
    data = prepare(data_cfg(write_log(tmp_path / "counters.csv", counters)), tmp_cache)
    assert data.report.dropped("bad_timestamp") == 0 and data.n_events == 5


def test_an_unchanged_file_is_hashed_once(tmp_path, tmp_cache, monkeypatch):
    import seqexp.data.cache as prep

    calls = []
    real = prep.sha256_file
    monkeypatch.setattr(prep, "sha256_file", lambda p: calls.append(p) or real(p))
    p = _log(tmp_path)
    first = prepare(data_cfg(p), tmp_cache)
    assert prepare(data_cfg(p), tmp_cache).fingerprint == first.fingerprint and len(calls) == 1
    p.write_text(p.read_text() + "u9,q,1\n")  # new content (size and mtime change): hashed again
    assert prepare(data_cfg(p), tmp_cache).fingerprint != first.fingerprint and len(calls) == 2
