"""`seqexp-recommend` with events (ITEM:BEHAVIOR@TIME, --events files), item ids that contain the separators,
and every user mistake ending in one line and exit 2."""

from __future__ import annotations

import json

import pytest

from conftest import train_feature_run, write_log
from seqexp.app.events import Event
from seqexp.app.recommend import Recommender, cli
from seqexp.errors import RecommendError

T0 = 1_700_000_000
ITEMS = [f"i{n}" for n in range(1, 31)] + ["sku:7", "red shoe"]  # two ids that contain a separator


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny LSTM with behaviour and time-gap features, trained on a log whose item ids include 'sku:7' and
    'red shoe'."""
    return train_feature_run(tmp_path_factory.mktemp("rec-cli"), ITEMS, lambda u, t, rng: T0 + 60 * t + u)[0]


def recommend_json(capsys, *argv: str) -> list[list[dict]]:
    assert cli([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_event_tokens_give_what_the_api_gives_for_the_same_events(run_dir, capsys):
    rec = Recommender.from_run(run_dir)
    events = [Event("i1", "pv", T0), Event("i2", "cart", T0 + 60), Event("i3", "pv", T0 + 7200)]
    expected = [[{"item_id": r.item_id, "score": r.score} for r in rec.recommend([events], k=4)[0]]]
    tokens = f"i1:pv@{T0} i2:cart@{T0 + 60},i3:pv@{T0 + 7200}"
    assert recommend_json(capsys, str(run_dir), tokens, "-k", "4") == expected
    iso = "i1:pv@2023-11-14T22:13:20Z;i2:cart@2023-11-14T22:14:20Z;i3:pv@2023-11-15T00:13:20Z"  # = T0 + ...
    assert recommend_json(capsys, str(run_dir), iso, "--sep", ";", "-k", "4") == expected
    assert len(expected[0]) == 4


def test_events_files_json_and_csv_give_what_tokens_give(run_dir, tmp_path, capsys):
    tokens = [f"i1:pv@{T0} i2:cart@{T0 + 60}", f"i5:pv@{T0} i6:pv@{T0 + 5}"]
    expected = recommend_json(capsys, str(run_dir), *tokens, "-k", "3")
    as_json = tmp_path / "events.json"
    pairs = [[("i1", "pv", T0), ("i2", "cart", T0 + 60)], [("i5", "pv", T0), ("i6", "pv", T0 + 5)]]
    as_json.write_text(json.dumps([[{"item": i, "behavior": b, "timestamp": t} for i, b, t in h] for h in pairs]))
    # an events file's output names each history: its number in a JSON file, its `history` value in a CSV file
    keyed = recommend_json(capsys, str(run_dir), "--events", str(as_json), "-k", "3")
    assert keyed == [{"history": 1, "items": expected[0]}, {"history": 2, "items": expected[1]}]
    as_csv = write_log(
        tmp_path / "events.csv",
        [("a", "i1", "pv", T0), ("b", "i5", "pv", T0), ("a", "i2", "cart", T0 + 60), ("b", "i6", "pv", T0 + 5)],
        ("history", "item", "behavior", "timestamp"),
    )
    keyed = recommend_json(capsys, str(run_dir), "--events", str(as_csv), "-k", "3")
    assert keyed == [{"history": "a", "items": expected[0]}, {"history": "b", "items": expected[1]}]


def _events_csv(tmp_path, rows: list[tuple[str, str]]):
    return write_log(tmp_path / "events.csv", [(h, i, "pv", T0 + n) for n, (h, i) in enumerate(rows)],
                     ("history", "item", "behavior", "timestamp"))  # fmt: skip


def test_events_file_histories_are_named_by_their_id_and_all_unknown_ones_are_skipped(run_dir, tmp_path, capsys):
    rows = [("alice", "i1"), ("bob", "ghost"), ("alice", "i2"), ("carol", "i5"), ("alice", "nope"), ("dave", "x")]
    events = _events_csv(tmp_path, rows)
    assert cli([str(run_dir), "--events", str(events), "-k", "3", "--json"]) == 0  # formerly exit 2: bob unknown
    out, err = capsys.readouterr()
    assert [h["history"] for h in json.loads(out)] == ["alice", "carol"]
    assert all(len(h["items"]) == 3 for h in json.loads(out))
    assert err.splitlines() == [
        f"seqexp-recommend: warning: events file {events}: 2 of 4 histories have no item known to this model and "
        "are skipped: ['bob', 'dave']; give raw item ids as they appear in the training log",
        "seqexp-recommend: warning: history 'alice': 1 unknown item id(s) skipped: ['nope']",
    ]
    assert cli([str(run_dir), "i3:pv@1700000000", "--events", str(events), "-k", "2"]) == 0  # the table
    out = capsys.readouterr().out
    assert "history 1: i3\n" in out and "history 'alice': i1 i2 nope\n" in out and "'bob'" not in out
    assert cli([str(run_dir), "i3:pv@1700000000", "--events", str(events), "-k", "2", "--json"]) == 0
    assert [h["history"] for h in json.loads(capsys.readouterr().out)] == ["arg 1", "alice", "carol"]


def test_a_file_of_unknown_histories_is_the_error_and_more_than_ten_are_counted(run_dir, tmp_path, capsys):
    events = _events_csv(tmp_path, [("bob", "ghost"), ("dave", "x")])
    assert cli([str(run_dir), "--events", str(events)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "seqexp-recommend: error: history 'bob' has no item known to this model (unknown: ['ghost']); give raw "
        "item ids as they appear in the training log\n"
    )
    events = _events_csv(tmp_path, [("known", "i1")] + [(f"u{n}", "ghost") for n in range(12)])
    assert cli([str(run_dir), "--events", str(events), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [h["history"] for h in json.loads(out)] == ["known"]
    named = ", ".join(f"'u{n}'" for n in range(10))
    assert f"12 of 13 histories have no item known to this model and are skipped: [{named}] and 2 more;" in err


def test_item_ids_with_separators_need_plain_or_sep(run_dir, capsys):
    rec = Recommender.from_run(run_dir)
    for argv, history in (
        (["sku:7 i1", "--plain"], ["sku:7", "i1"]),
        (["red shoe;i1", "--sep", ";"], ["red shoe", "i1"]),
    ):
        with pytest.warns(UserWarning, match="lacks behaviours or timestamps"):
            (top,) = rec.recommend([history], k=3)
        assert recommend_json(capsys, str(run_dir), *argv, "-k", "3") == [
            [{"item_id": r.item_id, "score": r.score} for r in top]
        ]


def test_a_feature_model_given_bare_ids_warns_on_stderr(run_dir, capsys):
    assert cli([str(run_dir), "i1 i2 i3", "-k", "2"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("seqexp-recommend: warning: this model uses features ['behavior', 'time_gap'], but history 1")
    assert "give events as ITEM:BEHAVIOR@TIME" in err


BAD = {
    "k zero": (["i1", "-k", "0"], "-k 0: the number of items to recommend must be a positive integer"),
    "k negative": (["i1", "-k", "-2"], "-k -2: the number of items to recommend must be a positive integer"),
    "two colons": (["i1:pv:x"], "history 1, event 1: token 'i1:pv:x' is ambiguous"),
    "two ats": ([f"i1@{T0}@5"], f"token 'i1@{T0}@5' is ambiguous"),
    "empty behaviour": (["i1:"], "token 'i1:' has an empty item, behaviour or time"),
    "id with colon": (["i1 sku:7"], "token 'sku:7' is an item id of this model and also reads as ITEM"),
    "id with space": (["i1 red shoe"], "item id 'red shoe' contains a space or comma, the default event separator"),
    "unknown behaviour": ([f"i1:nope@{T0}"], "behaviour 'nope' of item 'i1' is not one this model was trained with"),
    "bad timestamp": (
        ["i1:pv@yesterday"],
        "timestamp 'yesterday' of item 'i1' is neither unix seconds nor",
    ),
    "some timestamps": ([f"i1:pv@{T0} i2:pv"], "some events have a timestamp and some do not (without: items ['i2'])"),
    "time goes back": ([f"i1@{T0 + 9} i2@{T0}"], f"event 2 (item 'i2', time '{T0}') is earlier than the event before"),
    "no history": ([], "no history given: pass item ids as arguments, or --events FILE"),
    "unknown items only": (["ghost"], "history 1 has no item known to this model (unknown: ['ghost'])"),
}


@pytest.mark.parametrize("argv, message", BAD.values(), ids=BAD.keys())
def test_user_mistakes_end_in_one_line_and_exit_2(run_dir, capsys, argv, message):
    assert cli([str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqexp-recommend: error: ") and err.count("\n") == 1 and message in err


FILES = {
    "missing": (None, "does not exist; pass a .json, .csv or .tsv file of events"),
    "bad json": (("e.json", "[[{"), "is not valid JSON"),
    "json shape": (("e.json", '{"item": "i1"}'), "expected a list of histories"),
    "json key": (("e.json", '[[{"item": "i1", "time": 5}]]'), "unknown key(s) ['time']; the keys are item"),
    "json null item": (("e.json", '[[{"item": null}]]'), '"item" None is not an item id; give the raw item id'),
    "json fractional item": (("e.json", "[[1.5]]"), "1.5 is neither an item id nor an object"),
    "json true item": (("e.json", "[[true]]"), "True is neither an item id nor an object"),
    "json blank item": (("e.json", '[[{"item": " "}]]'), "\"item\" ' ' is not an item id"),
    "json list behaviour": (("e.json", '[[{"item": "i1", "behavior": ["pv"]}]]'), "\"behavior\" ['pv'] is not a"),
    "csv columns": (("e.csv", "sku,behavior\ni1,pv\n"), "it needs an `item` column"),
    "csv empty item": (("e.csv", "item,behavior\n,pv\n"), "row 2: the item is empty"),
    "csv bad timestamp": (("e.csv", "item,timestamp\ni1,soon\n"), "timestamp 'soon' of item 'i1'"),
    "format": (("e.txt", "i1"), "unknown format '.txt'; use .json, .csv or .tsv"),
}


@pytest.mark.parametrize("content, message", FILES.values(), ids=FILES.keys())
def test_events_file_mistakes_end_in_one_line_and_exit_2(run_dir, tmp_path, capsys, content, message):
    path = tmp_path / (content[0] if content else "absent.json")
    if content:
        path.write_text(content[1])
    assert cli([str(run_dir), "--events", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqexp-recommend: error: ") and err.count("\n") == 1 and message in err


def test_run_dir_mistakes_and_bad_arguments_end_in_one_line(tmp_path, capsys):
    assert cli([str(tmp_path / "no-run"), "i1"]) == 2
    assert capsys.readouterr().err == (
        f"seqexp-recommend: error: run dir {tmp_path / 'no-run'} does not exist; pass the folder a `seqexp-train` "
        f"run wrote\n"
    )
    assert cli([str(tmp_path), "i1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seqexp-recommend: error: no checkpoint at {tmp_path}") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        cli([str(tmp_path), "i1", "-k", "ten"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "seqexp-recommend: error: argument -k: invalid int value: 'ten'\n"


def test_api_refuses_bad_k_and_behaviours_a_checkpoint_cannot_map(run_dir):
    rec = Recommender.from_run(run_dir)
    for k in (0, -1, 2.5, True):
        with pytest.raises(RecommendError, match=rf"k={k!r}: the number of items to recommend must be a positive"):
            rec.recommend([["i1"]], k=k)
    older = Recommender(rec.model, rec.item_ids, rec.max_len, behavior_vocab=None)  # a best.pt without the vocab
    with pytest.raises(RecommendError, match=r"no behaviour vocabulary \(written by an older seqexp\).*retrain"):
        older.recommend([[Event("i1", "pv", T0)]])
    with pytest.warns(UserWarning, match="lacks behaviours or timestamps"):
        assert len(older.recommend([[Event("i1", None, T0)]], k=2)[0]) == 2  # times alone still serve
