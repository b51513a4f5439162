"""benchmarks/defaults_rank.py (issue #16 item 5): every candidate is a valid override set on its card, the
ranking and the travel guard choose what the results file says, and a linked run measured on another protocol
is not taken for a candidate's cell."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import compose_train, load_benchmark


@pytest.fixture(scope="module")
def rank():
    return load_benchmark("defaults_rank")


CANDIDATES = load_benchmark("defaults_rank").CANDIDATES


@pytest.mark.parametrize(("model", "cand"), [(m, c) for m, cs in CANDIDATES.items() for c in cs])
def test_every_candidate_composes_on_every_data_set(tmp_path, rank, model, cand):
    overrides = rank.CANDIDATES[model][cand]
    for data_overrides, _folder in rank.DATASETS.values():
        cfg = compose_train(tmp_path, *data_overrides, f"model={model}", *overrides)
        assert load_benchmark("_runs").values_not_composed(cfg, overrides) == []  # no silently ignored key


@pytest.mark.parametrize("model", list(CANDIDATES))
def test_the_first_candidate_is_the_card_as_shipped(tmp_path, rank, model):
    """Its values spelled out compose the same model as the bare card, so the table can keep the card."""
    card = compose_train(tmp_path, f"model={model}").model
    first = compose_train(tmp_path, f"model={model}", *next(iter(rank.CANDIDATES[model].values()))).model
    assert OmegaConf.to_container(first) == OmegaConf.to_container(card)


def test_ranks_share_ties_and_rank_one_is_best(rank):
    assert rank.ranks([0.3, 0.5, 0.3, 0.1]) == [2, 1, 2, 4]


def test_worst_loss_is_the_largest_shortfall_to_the_best(rank):
    scores = {("a", "x"): 0.10, ("a", "y"): 0.08, ("b", "x"): 0.45, ("b", "y"): 0.50, ("c", "x"): None}
    assert rank.worst_loss("x", ["x", "y"], ["a", "b", "c"], scores) == pytest.approx(0.10)  # 1 - 0.45 / 0.50
    assert rank.worst_loss("y", ["x", "y"], ["a", "b", "c"], scores) == pytest.approx(0.20)  # 1 - 0.08 / 0.10
    # a data set where every candidate scored 0 (nothing learned) puts no one ahead, and divides by nothing
    zero = {("a", "x"): 0.0, ("a", "y"): 0.0, ("b", "x"): 0.5, ("b", "y"): 0.4}
    assert rank.worst_loss("x", ["x", "y"], ["a", "b"], zero) == 0.0
    assert rank.worst_loss("y", ["x", "y"], ["a", "b"], zero) == pytest.approx(0.20)


def test_table_chooses_the_best_mean_rank_within_the_guard(rank, monkeypatch):
    monkeypatch.setitem(rank.CANDIDATES, "toy", {"card": [], "fast": ["x=1"], "big": ["x=2"]})
    data = ["d1", "d2", "d3"]
    scores = {  # big wins two data sets but loses 30% on d3; fast ranks 2, 1, 2 and never loses more than 5%
        ("d1", "card"): 0.092, ("d1", "fast"): 0.095, ("d1", "big"): 0.100,
        ("d2", "card"): 0.190, ("d2", "fast"): 0.200, ("d2", "big"): 0.199,
        ("d3", "card"): 0.300, ("d3", "fast"): 0.290, ("d3", "big"): 0.210,
    }  # fmt: skip
    lines = rank.table("toy", scores, data, max_loss=0.10)
    chosen = [line for line in lines if "**yes**" in line]
    assert len(chosen) == 1 and chosen[0].startswith("| fast |")
    assert "| 0.0950 (2) | 0.2000 (1) | 0.2900 (2) | 1.67 | -5.0% |" in chosen[0]
    assert "Chosen: fast." in lines
    scores[("d2", "fast")] = None  # a missing cell could hold the winner: nothing is chosen, nothing marked
    lines = rank.table("toy", scores, data, max_loss=0.10)
    assert lines[-2].startswith("No candidate is chosen") and not [line for line in lines if "**yes**" in line]
    assert "| fast | 0.0950 (2) | – | 0.2900 (2) |" in "\n".join(lines)
    scores[("d2", "fast")] = 0.200
    lines = rank.table("toy", scores, data, max_loss=0.04)  # none within 4%: fast (worst 5%) beats card (8%), big (30%)
    assert lines[-2].startswith("Chosen: fast (none lost at most 4% everywhere")
    assert [line.split(" |")[0] for line in lines if "**yes**" in line] == ["| fast"]


def test_a_linked_run_must_carry_the_candidate_and_the_same_protocol(rank):
    expected = ["model=bert4rec", "model.encoder.dropout=0.1", "model.encoder.initializer_range=null"]
    config = {"model": {"encoder": {"dropout": 0.1, "initializer_range": None}}}
    same = {"overrides": ["data=beauty", "model=bert4rec", "trainer.max_minutes=35"], "config": config}
    assert rank.not_this_candidate(same, expected) is None  # values from the config; budgets and paths do not matter
    other_value = {**same, "config": {"model": {"encoder": {"dropout": 0.2, "initializer_range": None}}}}
    assert "has not model.encoder.dropout=0.1" in rank.not_this_candidate(other_value, expected)
    other_model = {**same, "overrides": ["model=sasrec"]}
    assert "has not model=bert4rec" in rank.not_this_candidate(other_model, expected)
    sampled_valid = {**same, "overrides": [*same["overrides"], "+split.valid_users=2048"]}  # RecTools' protocol
    assert "split.valid_users=2048" in rank.not_this_candidate(sampled_valid, expected)
    session_split = {**same, "overrides": [*same["overrides"], "split=session"]}
    assert "split=session" in rank.not_this_candidate(session_split, expected)
    numbers = {"overrides": ["model=gru"], "config": {"model": {"optimizer": {"lr": 0.003}, "sparse_items": 0}}}
    assert rank.not_this_candidate(numbers, ["model=gru", "model.optimizer.lr=3e-3"]) is None  # 3e-3 == 0.003
    assert "model.sparse_items=false" in rank.not_this_candidate(numbers, ["model.sparse_items=false"])  # 0 is no bool
    assert "model.loss.num_negatives=8192" in rank.not_this_candidate(numbers, ["model.loss.num_negatives=8192"])
    old_file = {"overrides": ["model=gru", "model.optimizer.lr=3e-3"]}  # no config recorded: the overrides decide
    assert rank.not_this_candidate(old_file, ["model=gru", "model.optimizer.lr=3e-3"]) is None
    assert "lr=1e-3" in rank.not_this_candidate(old_file, ["model.optimizer.lr=1e-3"])


def test_a_data_set_no_candidate_ran_on_is_left_out_of_the_choice(rank, monkeypatch):
    monkeypatch.setitem(rank.CANDIDATES, "toy", {"card": [], "slow": ["x=1"]})
    scores = {("d1", "card"): 0.20, ("d1", "slow"): 0.10, ("d2", "card"): 0.30, ("d2", "slow"): 0.31}
    lines = rank.table("toy", scores, ["d1", "d2", "big"], max_loss=0.10)
    assert lines[-2] == "Chosen: card. Not run on big: chosen on the other data sets."
    assert [line.split(" |")[0] for line in lines if "**yes**" in line] == ["| card"]
    scores[("big", "slow")] = 0.05  # one candidate ran there: it counts, card lacks it, slow loses 50% on d1
    assert rank.table("toy", scores, ["d1", "d2", "big"], max_loss=0.10)[-2].startswith("No candidate is chosen")
    nothing = rank.table("toy", {}, ["d1"], max_loss=0.10)
    assert nothing[-2].startswith("No candidate is chosen") and not [line for line in nothing if "**yes**" in line]
    assert "| card | – | – | -0.0% |  |" in nothing
