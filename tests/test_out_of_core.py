"""data.engine=duckdb (issue #17 item 1): out-of-core preparation gives exactly what the arrow engine gives.

Every log here carries damage the cleaning rules handle; both engines must return the same arrays (item
indices by first appearance, users in id order, ties in file order) and the same report, word for word.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seqexp.data import engine as engine_mod
from seqexp.data.engine import choose_engine
from seqexp.data.prepare import prep_settings, prepare
from seqexp.data.sequences import PreparedData
from seqexp.errors import ConfigError, DataError
from tests.conftest import TINY, compose_train, data_cfg, write_log

ARRAYS = ("item_ids", "user_ids", "offsets", "items", "timestamps", "behaviors")
BEHAVIOR_COLUMNS = {"user": "user_id", "item": "item_id", "timestamp": "timestamp", "behavior": "behavior"}


def both(tmp_path, cfg: dict) -> tuple[PreparedData, PreparedData]:
    """The log prepared by each engine, each in its own cache; asserts they are identical."""
    arrow = prepare({**cfg, "engine": "arrow"}, tmp_path / "cache-arrow")
    duck = prepare({**cfg, "engine": "duckdb"}, tmp_path / "cache-duckdb")
    for name in ARRAYS:
        a, d = getattr(arrow, name), getattr(duck, name)
        assert (a is None) == (d is None), name
        if a is not None:
            assert a.dtype == d.dtype or name.endswith("_ids"), name
            np.testing.assert_array_equal(np.asarray(a), np.asarray(d), err_msg=name)
    assert arrow.behavior_vocab == duck.behavior_vocab
    assert arrow.fingerprint == duck.fingerprint
    assert duck.report.to_dict() == arrow.report.to_dict()
    assert isinstance(duck.items, np.memmap) and not duck.items.flags.writeable
    return arrow, duck


def damaged_rows() -> list[tuple]:
    """Users whose ids sort differently as text ('10' < '9'), ties, floats, bad ids and timestamps, duplicates."""
    rows = [(9, i, 1700000000 + i) for i in range(1, 6)]
    rows += [(10, 3, 1700000100), (10, 4, 1700000100), (10, 2, 1700000100), (10, "5.0", 1700000050)]  # ties
    rows += [(10, 3, 1700000100), (" 11 ", "7", 1700000200), (11, 8, 1700000201), (11, 7, 1700000202)]  # dup, spaces
    rows += [(11, "x", 1700000203), (-4, 1, 1700000204), (12, 1, "soon"), (12, 2, 15), (12, 3, 4102444800)]
    rows += [(12, 4, ""), ("", 5, 1700000300), (13, "", 1700000301), (13, 1, 0), (13, 2, 1700000302)]
    rows += [(14, i, 1700000400 + i % 2) for i in (9, 1, 9, 2)]  # a duplicate and ties for user 14
    return rows


def test_csv_with_every_damage_is_prepared_identically(tmp_path):
    p = write_log(tmp_path / "log.csv", damaged_rows())
    with open(p, "a") as f:
        f.write("\n15,1\n15,1,1700000500,extra\n16,1,1700000600\n")  # blank line, too few and too many fields
    arrow, duck = both(tmp_path, data_cfg(p, min_seq_len=2))
    rules = {r.rule: r.dropped for r in duck.report.rules}
    assert rules["malformed_row"] == 2 and rules["missing_value"] == 3  # the blank line is a row of blanks
    assert rules["invalid_id"] == 2 and rules["bad_timestamp"] == 5 and rules["duplicate"] == 2
    assert list(duck.user_ids) == ["10", "11", "14", "9"] and duck.items[0] == 1  # '5.0' read as '5', first
    assert [n.what for n in duck.report.notes] == ["float_id", "timestamp_unit"]


@pytest.mark.parametrize("minimum", [1, 2, 3])
def test_min_seq_len_keeps_users_with_that_many_events_on_both_engines(tmp_path, minimum):
    """User u has u events: min_seq_len=1 keeps all five (formerly 0 was read as 3; 0 is now refused up front)."""
    rows = [(u, i, 1700000000 + 10 * u + i) for u in range(1, 6) for i in range(u)]
    arrow, _ = both(tmp_path, data_cfg(write_log(tmp_path / "log.csv", rows), min_seq_len=minimum))
    assert arrow.n_users == 6 - minimum


def test_k_core_iterations_ties_and_behaviours_in_a_tsv(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{int(rng.zipf(1.6)) % 40}", 1000 + int(rng.integers(0, 5)), rng.choice(["pv", "cart", "buy"]))
        for u in range(60)
        for _ in range(int(rng.integers(2, 9)))
    ]
    p = write_log(tmp_path / "log.tsv", rows, ("user_id", "item_id", "timestamp", "behavior"), sep="\t")
    cfg = data_cfg(p, format="tsv", columns=BEHAVIOR_COLUMNS, min_item_count=3, min_seq_len=3, behaviors=["pv", "buy"])
    arrow, duck = both(tmp_path, {**cfg, "collapse_repeats": True})
    rules = {r.rule: r.dropped for r in duck.report.rules}
    assert rules["rare_item"] > 0 and rules["short_user"] > 0 and rules["behavior_filter"] > 0
    assert rules["repeat"] > 0 and duck.behavior_vocab == ["buy", "pv"] and duck.behaviors.dtype == np.int16
    both(tmp_path / "keep", {**cfg, "duplicates": "keep"})


def test_logs_without_timestamps_drop_every_repeat_or_keep_them(tmp_path):
    rows = [(u, (u + k) % 3, b) for u in range(8) for k, b in enumerate("abacbab")]
    p = write_log(tmp_path / "log.csv", rows, ("user_id", "item_id", "behavior"))
    columns = {"user": "user_id", "item": "item_id", "timestamp": None, "behavior": "behavior"}
    arrow, duck = both(tmp_path, data_cfg(p, columns=columns))
    assert duck.timestamps is None and duck.report.dropped("duplicate") > 0
    columns["behavior"] = None
    both(tmp_path / "keep", data_cfg(p, columns=columns, duplicates="keep"))


def test_parquet_with_millisecond_times_and_nulls(tmp_path):
    df = pd.DataFrame(
        {
            "uid": pd.array([1, 1, 1, 2, 2, 2, None, 3, 3, 3, 3], dtype="Int64"),
            "sku": ["a", "b", "c", "a", None, "d", "e", "b", "b", "c", "a"],
            "ms": [1.7e12 + i * 1000 for i in range(10)] + [np.nan],
        }
    )
    df.to_parquet(tmp_path / "log.parquet")
    cols = {"user": "uid", "item": "sku", "timestamp": "ms", "behavior": None}
    arrow, duck = both(tmp_path, data_cfg(tmp_path / "log.parquet", format="parquet", columns=cols, min_seq_len=2))
    assert duck.timestamps[0] == 1.7e9 and "ms" in duck.report.notes[0].description


def test_date_times_in_a_headerless_log(tmp_path):
    rows = [(u, u * 10 + k, f"2024-01-0{1 + k % 3}T10:00:0{k}Z", "pv") for u in range(5) for k in range(4)]
    rows += [(9, 1, "not a date", "pv")]
    pd.DataFrame(rows).to_csv(tmp_path / "log.csv", index=False, header=False)
    names = ["user_id", "item_id", "timestamp", "behavior"]
    cfg = data_cfg(tmp_path / "log.csv", header=False, names=names, columns=BEHAVIOR_COLUMNS)
    arrow, duck = both(tmp_path, cfg)
    assert (
        duck.report.dropped("bad_timestamp") == 1
        and duck.timestamps[0] == pd.Timestamp("2024-01-01T10:00:00Z").timestamp()
    )


def test_too_many_invalid_rows_fail_the_same_way(tmp_path):
    p = write_log(tmp_path / "log.csv", [(1, i, "never") for i in range(10)] + [(1, 1, 5)])
    for engine in ("arrow", "duckdb"):
        with pytest.raises(DataError, match=r"rule 'bad_timestamp'.*rejects 10 of 11 rows"):
            prepare(data_cfg(p, engine=engine, max_invalid_fraction=0.05), tmp_path / engine)


def test_engine_choice(tmp_path, monkeypatch):
    p = write_log(tmp_path / "log.csv", [(1, 1, 1)])
    s = prep_settings(data_cfg(p))
    assert choose_engine(None, s, p) == "arrow" and choose_engine("duckdb", s, p) == "duckdb"
    monkeypatch.setattr(engine_mod, "AUTO_BYTES", 0)
    assert choose_engine("auto", s, p) == "duckdb"
    assert choose_engine("auto", prep_settings(data_cfg(p, sep="::")), p) == "arrow"  # a separator DuckDB lacks
    with pytest.raises(ConfigError, match=r"data.engine=duckdb cannot read this log: data.format=lines"):
        choose_engine("duckdb", prep_settings(data_cfg(p, format="lines")), p)
    with pytest.raises(ConfigError, match=r"data.engine='spark' is not one of"):
        choose_engine("spark", s, p)


def test_cache_entry_is_shared_by_the_engines_and_memory_mapped(tmp_path, monkeypatch):
    import seqexp.data.duck_prepare as duck_prepare

    p = write_log(tmp_path / "log.csv", [(u, i, 100 + i) for u in range(4) for i in range(5)])
    first = prepare(data_cfg(p, engine="duckdb"), tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "prepared").iterdir()
    assert json.loads((entry / "meta.json").read_text())["layout"] == "npy"
    scratch = tmp_path / "cache" / "duckdb-scratch"
    assert not scratch.exists() or not any(scratch.iterdir())  # the DuckDB database and spill files are gone
    monkeypatch.setattr(duck_prepare, "prepare_duckdb", lambda *a: pytest.fail("the cache entry was not reused"))
    again = prepare(data_cfg(p, engine="arrow"), tmp_path / "cache")  # the engine is not part of the key
    assert isinstance(again.items, np.memmap) and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.items, first.items)
    expected = np.array(first.items)  # a copy: the damage below rewrites the very pages `first` maps
    (entry / "items.npy").write_bytes((entry / "items.npy").read_bytes()[:-8])  # a truncated array
    monkeypatch.undo()
    rebuilt = prepare(data_cfg(p, engine="duckdb"), tmp_path / "cache")
    np.testing.assert_array_equal(rebuilt.items, expected)


def test_training_runs_on_memory_mapped_data(tmp_path):
    from seqexp.app.train import train

    rows = [(f"u{u}", f"i{(u * 7 + k * 3) % 30}", 100 + k) for u in range(40) for k in range(8)]
    log = write_log(tmp_path / "log.csv", rows)
    overrides = [o for o in TINY if not o.startswith("data.generate")]
    cfg = compose_train(tmp_path, *overrides, "data=csv", f"data.path={log}", "data.engine=duckdb")
    train(cfg)
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["status"] == "completed" and 0 <= res["metrics"]["test/ndcg@10"] <= 1
    (entry,) = (tmp_path / "cache" / "prepared").iterdir()
    assert json.loads((entry / "meta.json").read_text())["layout"] == "npy"
