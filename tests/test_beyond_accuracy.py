"""Beyond-accuracy metrics (novelty, popularity, tail share, ILD, exposure Gini and entropy) against hand-computed
values, through evaluate(), in results.json and in a whole run with an item side table."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import eval_tensors_of
from seqexp.errors import ConfigError
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.beyond_accuracy import (
    category_tokens,
    exposure_metrics,
    intra_list_diversity,
    item_facts,
    list_metrics,
    tail_mask,
)
from seqexp.evaluation.options import protocol_options
from seqexp.evaluation.protocol import EvalProtocol, evaluate
from tests.conftest import TINY, compose_train, write_log

COUNTS = torch.tensor([0, 10, 5, 3, 1, 1])  # training events of items 1..5 (0 = padding); 20 in all
GENRES = np.array(["Action Comedy", "Action", "Drama", None, "Comedy Drama"], dtype=object)  # items 1..5


def test_tail_is_everything_but_the_most_popular_fifth_with_ties_by_item_index():
    assert tail_mask(COUNTS).tolist() == [False, False, True, True, True, True]  # head: ceil(0.2 * 5) = 1 item
    tied = torch.tensor([0, 3, 5, 5, 1, 0])  # items 2 and 3 tie for the one head place: the lower index wins
    assert tail_mask(tied).tolist() == [False, True, False, True, True, True]
    assert tail_mask(tied, head_share=0.4).tolist() == [False, True, False, False, True, True]


def test_category_tokens_are_distinct_sets_with_zero_for_none():
    tok = category_tokens(np.array(["Action Comedy", "Action", None, "Drama Drama"], dtype=object))
    assert tok.shape == (5, 2)  # padding row + 4 items, at most 2 distinct tokens
    assert tok[0].tolist() == [0, 0] and tok[3].tolist() == [0, 0]  # padding and the item without a category
    assert tok[1, 0] == tok[2, 0] and tok[1, 1] != tok[1, 0]  # "Action" shares its id
    assert tok[4].tolist()[1] == 0  # "Drama Drama" is one category


def test_per_user_metrics_against_hand_computed_values():
    facts = item_facts(COUNTS, category_tokens(GENRES))
    top = torch.tensor([[1, 2, 3], [4, 5, 1]])
    shown = torch.tensor([[True, True, True], [True, True, False]])  # user 1's third slot was a -inf fill
    m = list_metrics(top, shown, facts, k=10)
    p = lambda c: (c + 1) / (20 + 5)  # noqa: E731  Laplace-smoothed popularity share
    assert m["novelty@10"].tolist() == pytest.approx(
        [-(math.log2(p(10)) + math.log2(p(5)) + math.log2(p(3))) / 3, -math.log2(p(1))]
    )
    assert m["avg_pop@10"].tolist() == pytest.approx([(10 + 5 + 3) / 3, 1.0])
    assert m["tail_share@10"].tolist() == pytest.approx([2 / 3, 1.0])  # item 1 is the head
    # user 0: {Action, Comedy}-{Action} 1 - 1/2, -{Drama} 1, {Action}-{Drama} 1; user 1: none vs {Comedy, Drama} 1
    assert m["ild@10"].tolist() == pytest.approx([2.5 / 3, 1.0])


def test_ild_of_items_without_categories_and_of_short_lists():
    tok = category_tokens(np.array(["A", None, None], dtype=object))
    shown = torch.tensor([[True, True], [True, False]])
    ild = intra_list_diversity(tok[torch.tensor([[2, 3], [1, 2]])], shown)
    assert ild.tolist() == [0.0, 0.0]  # two items without a category are alike; a single shown item has no pair


def test_exposure_gini_and_entropy_against_hand_computed_values():
    assert exposure_metrics(np.array([0, 1, 1, 1, 1]), 10) == {"gini@10": 0.0, "entropy@10": 2.0}
    one = exposure_metrics(np.array([7, 4, 0, 0, 0]), 10)  # padding exposure ignored; one item takes all
    assert one["gini@10"] == pytest.approx(3 / 4) and one["entropy@10"] == 0.0
    m = exposure_metrics(np.array([0, 1, 3, 0, 0]), 10)
    x = np.array([1, 3, 0, 0])
    mean_abs_diff = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())  # textbook Gini
    assert m["gini@10"] == pytest.approx(0.625) == pytest.approx(mean_abs_diff)
    assert m["entropy@10"] == pytest.approx(-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)))


def test_evaluate_reports_them_from_the_filtered_top_k():
    # popularity over 5 items; user 0 has seen items 1 and 2, user 1 item 5: filtered items are never shown
    t = eval_tensors_of([[1, 2], [0, 5]], [3, 1], [[1, 2], [5]])
    facts = item_facts(COUNTS, category_tokens(GENRES))
    r = evaluate(PopularityScorer(COUNTS), t, n_items=5, ks=(1,), items=facts)
    # user 0's top-10: 3, then 4 and 5 (tied); user 1: 1, 2, 3, 4 (the -inf fill is not shown)
    assert r.exposure.tolist() == [0, 1, 1, 2, 2, 1]
    assert r.per_user["avg_pop@10"].tolist() == pytest.approx([(3 + 1 + 1) / 3, (10 + 5 + 3 + 1) / 4])
    assert r.per_user["tail_share@10"].tolist() == pytest.approx([1.0, 3 / 4])
    # user 0: {Drama}, none, {Comedy, Drama}: 1, 1 - 1/2, 1; user 1: Action Comedy, Action, Drama, none
    assert r.per_user["ild@10"].tolist() == pytest.approx([2.5 / 3, (0.5 + 1 + 1 + 1 + 1 + 1) / 6])
    assert r.metrics["gini@10"] == pytest.approx(exposure_metrics(r.exposure, 10)["gini@10"])
    assert r.metrics["entropy@10"] == pytest.approx(-sum(c / 7 * math.log2(c / 7) for c in [1, 1, 2, 2, 1]))
    assert r.metrics["coverage@10"] == 1.0
    plain = evaluate(PopularityScorer(COUNTS), t, n_items=5, ks=(1,))  # no item facts: no per-user extras
    assert "novelty@10" not in plain.metrics and "gini@10" in plain.metrics
    assert plain.per_user["hr@1"].tolist() == r.per_user["hr@1"].tolist()


def test_diversity_column_must_name_an_item_side_column():
    opts = protocol_options({"diversity_column": "genre"}, {"genre": GENRES}, COUNTS)
    assert opts["items"].categories.shape == (6, 1) and opts["diversity_column"] == "genre"  # auto: whole values
    with pytest.raises(ConfigError, match=r"eval.diversity_column=genres is not an item side column .*\['genre'\]"):
        protocol_options({"diversity_column": "genres"}, {"genre": GENRES}, COUNTS)
    with pytest.raises(ConfigError, match="this data set has no item side table"):
        protocol_options({"diversity_column": "genre"}, {}, COUNTS)
    assert protocol_options({}, {}, COUNTS)["items"].categories is None
    with pytest.raises(ConfigError, match=r"eval.item_chunk=0 must be >= 1"):
        protocol_options({"item_chunk": 0}, {}, COUNTS)
    with pytest.raises(ConfigError, match=r"eval.sample_users='many' must be a whole number"):
        protocol_options({"sample_users": "many"}, {}, COUNTS)


def test_a_run_with_categories_reports_them_for_the_model_and_popularity(tmp_path):
    from seqexp.app.train import train

    rows = [(f"u{u}", f"i{(u * 7 + k * 3) % 30}", 100 + k) for u in range(40) for k in range(8)]
    log = write_log(tmp_path / "log.csv", rows)
    pd.DataFrame([(f"i{i}", f"g{i % 4}|g{i % 3}") for i in range(30)], columns=["item_id", "genre"]).to_csv(
        tmp_path / "items.csv", index=False
    )
    cfg = compose_train(
        tmp_path,
        *[o for o in TINY if not o.startswith("data.generate")],
        "data=csv",
        f"data.path={log}",
        "data.columns.behavior=null",
        f"data.item_side.file={tmp_path / 'items.csv'}",
        "data.item_side.columns=[genre]",
        "eval.diversity_column=genre",
        "eval.diversity_separator='|'",
    )
    train(cfg)
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    for name in ("gini", "entropy", "novelty", "avg_pop", "tail_share", "ild"):
        assert math.isfinite(res["metrics"][f"test/{name}@10"]) and math.isfinite(res["popularity"][f"test/{name}@10"])
    assert 0 <= res["metrics"]["test/ild@10"] <= 1 and 0 <= res["popularity"]["test/tail_share@10"] <= 1
    per_user = res["per_user_metrics"]
    assert set(per_user) == {f"test/{n}@10" for n in ("novelty", "avg_pop", "tail_share", "ild")}
    assert len(per_user["test/ild@10"]) == len(res["per_user"]["user_ids"])
    assert np.mean(per_user["test/novelty@10"]) == pytest.approx(res["metrics"]["test/novelty@10"])
    expected = {"k": 10, "head_share": 0.2, "diversity_column": "genre", "diversity_separator": "|"}
    assert res["protocol"]["beyond_accuracy"] == expected


def test_protocol_records_and_validation_copy():
    p = EvalProtocol(5, valid_sample_users=3, sample_seed=1)
    assert p.describe()["valid_sample_users"] == 3 and p.describe()["test_users"] == "all"
    assert not p.sampled and p.validation().sampled and p.validation().describe() == p.describe()


def _payload(model: str, seed: int, ndcg: list[float], novelty: list[float] | None, gini: float) -> dict:
    """A completed results.json reduced to what seqexp-compare reads; novelty None = written before these metrics."""
    metrics = {"test/ndcg@10": float(np.mean(ndcg)), "test/hr@10": 0.5, "test/mrr@10": 0.1, "valid/ndcg@10": 0.2}
    res = {
        "status": "completed",
        "model": model,
        "data": "d",
        "seed": seed,
        "metrics": metrics,
        "per_user": {"metric": "test/ndcg@10", "user_ids": ["u1", "u2"], "values": ndcg},
        "data_fingerprint": "f" * 16,
        "protocol": {"split": "leave_one_out", "ranking": "full", "filter_seen": True, "valid_sample_users": 100},
        "training": {"parameters": 10, "epochs_run": 3, "best_epoch": 2},
        "timings": {"train_s": 1.0},
        "throughput": {"train_sequences_per_s": 5.0},
    }
    if novelty is not None:
        metrics.update({"test/gini@10": gini, "test/entropy@10": 3.0, "test/novelty@10": float(np.mean(novelty))})
        res["per_user_metrics"] = {"test/novelty@10": novelty}
    return res


def _write(root, name, payload):
    (root / name / ".hydra").mkdir(parents=True)
    (root / name / "results.json").write_text(json.dumps(payload))


def test_compare_shows_diversity_columns_and_pairs_a_per_user_one(tmp_path, capsys):
    from seqexp.compare.cli import main as compare_main

    _write(tmp_path, "lstm-0", _payload("lstm", 0, [0.1, 0.2], [3.0, 4.0], 0.6))
    _write(tmp_path, "lstm-1", _payload("lstm", 1, [0.2, 0.3], [5.0, 6.0], 0.8))
    _write(tmp_path, "gru-0", _payload("gru", 0, [0.3, 0.4], [5.0, 7.0], 0.5))
    assert compare_main([str(tmp_path), "--format", "csv"]) == 0
    assert "GINI@10" not in capsys.readouterr().out  # the default table stays narrow
    assert compare_main([str(tmp_path), "--diversity", "--paired-metric", "test/novelty@10", "--format", "csv"]) == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header[4:10] == ["NDCG@10", "HR@10", "MRR@10", "NOVELTY@10", "GINI@10", "ENTROPY@10"]
    assert "Δ NOVELTY@10 95% CI" in header and "paired p on NOVELTY@10 (t / W)" in header
    assert compare_main([str(tmp_path), "--diversity", "--paired-metric", "test/novelty@10", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["lstm"]["test/gini@10"]["mean"] == pytest.approx(0.7)
    paired = rows["gru"]["paired_vs_baseline"]  # gru (5, 7) vs the lstm seeds' mean per user (4, 5)
    assert paired["metric"] == "test/novelty@10" and paired["mean_diff"] == pytest.approx(1.5)
    assert compare_main([str(tmp_path), "--metric", "valid/ndcg@10", "--format", "csv"]) == 0
    assert "valid NDCG@10 (100 sampled users)" in next(csv.reader(io.StringIO(capsys.readouterr().out)))


def test_compare_says_what_older_results_lack(tmp_path, capsys):
    from seqexp.compare.cli import main as compare_main

    _write(tmp_path, "lstm-0", _payload("lstm", 0, [0.1, 0.2], None, 0.0))
    _write(tmp_path, "gru-0", _payload("gru", 0, [0.3, 0.4], [5.0, 7.0], 0.5))
    assert compare_main([str(tmp_path), "--paired-metric", "test/novelty@10"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--paired-metric 'test/novelty@10' is not stored per user by 1 of 2" in err
    assert compare_main([str(tmp_path), "--diversity"]) == 2
    assert "--diversity: no beyond-accuracy metrics" in capsys.readouterr().err
    assert compare_main([str(tmp_path), "--format", "csv"]) == 0  # without the new flags older runs still rank


def test_a_category_name_with_a_space_is_one_category_and_separators_split_lists():
    # formerly every value was split on whitespace: "Skin Care" and "Hair Care" were half alike (distance 0.5)
    names = np.array(["Skin Care", "Hair Care", "Skin Care", None], dtype=object)
    whole = category_tokens(names, None)
    assert whole[1:, 0].tolist() == [1, 2, 1, 0] and whole.shape == (5, 1)
    top, shown = torch.tensor([[1, 2], [1, 3]]), torch.ones(2, 2, dtype=torch.bool)
    assert intra_list_diversity(whole[top], shown).tolist() == pytest.approx([1.0, 0.0])
    piped = category_tokens(np.array(["Action|Comedy", "Action", " | "], dtype=object), "|")
    assert intra_list_diversity(piped[torch.tensor([[1, 2]])], torch.ones(1, 2, dtype=torch.bool)).tolist() == [0.5]
    assert piped[3].tolist() == [0, 0]  # only separators: no category


@pytest.mark.parametrize(
    "column, setting, expected",
    [("class:token_seq", "auto", " "), ("category", "auto", None), ("genre", "|", "|"), ("genre", None, None)],
)
def test_the_separator_auto_splits_recbole_token_seq_columns_only(column, setting, expected):
    opts = protocol_options({"diversity_column": column, "diversity_separator": setting}, {column: GENRES}, COUNTS)
    assert opts["diversity_separator"] == expected
    width = {" ": 2, None: 1, "|": 1}[expected]  # "Action Comedy": two genres, or one whole value
    assert opts["items"].categories.shape == (6, width)
    with pytest.raises(ConfigError, match=r"eval.diversity_separator=''.*e.g. '\|' for Action\|Comedy"):
        protocol_options({"diversity_column": column, "diversity_separator": ""}, {column: GENRES}, COUNTS)
