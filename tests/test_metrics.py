"""Full-ranking metrics against hand-computed values: plain ranks, ties, filtering, popularity."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import eval_tensors_of
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.metrics import mask_scores, ranking_metrics, target_positions
from seqexp.evaluation.protocol import evaluate

NEG = float("-inf")


def _metrics(scores, targets, ks=(1, 2, 3, 5, 10)):
    s = torch.tensor(scores, dtype=torch.float32)
    mask_scores(s)
    return {k: v.tolist() for k, v in ranking_metrics(*target_positions(s, torch.tensor(targets)), ks=ks).items()}


def test_single_target_without_ties():
    # column 0 is padding; the target (item 2, score 0.5) is beaten by items 3 (0.9) and 5 (0.7): position 3
    m = _metrics([[9.9, 0.1, 0.5, 0.9, 0.3, 0.7]], [2])
    assert m["hr@2"] == [0.0] and m["hr@3"] == [1.0] and m["hr@5"] == [1.0]
    assert m["ndcg@2"] == [0.0] and m["ndcg@5"] == pytest.approx([1 / math.log2(4)])
    assert m["mrr@5"] == pytest.approx([1 / 3]) and m["mrr@2"] == [0.0]
    assert _metrics([[0.0, 0.2, 0.9]], [2])["ndcg@1"] == [1.0]


def test_ties_take_the_expected_value_over_random_tie_breaks():
    # items 1, 2, 3 tie at 0.5 behind item 4: the target (item 1) is at position 2, 3 or 4 with p = 1/3 each
    m = _metrics([[0.0, 0.5, 0.5, 0.5, 0.9, 0.1]], [1])
    assert m["hr@1"] == [0.0]
    assert m["hr@3"] == pytest.approx([2 / 3])
    assert m["ndcg@3"] == pytest.approx([(1 / math.log2(3) + 1 / math.log2(4)) / 3])
    assert m["mrr@3"] == pytest.approx([(1 / 2 + 1 / 3) / 3])
    assert m["ndcg@10"] == pytest.approx([(1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 3])
    assert m["hr@10"] == [1.0]


def test_a_constant_scorer_gets_the_metrics_of_a_random_ranking():
    n = 20
    m = _metrics([[1.0] * (n + 1)] * 3, [1, 7, 20], ks=(5, 10))
    assert m["hr@5"] == pytest.approx([5 / n] * 3) and m["hr@10"] == pytest.approx([10 / n] * 3)


def test_filtering_seen_items_moves_the_target_up_and_a_seen_target_is_a_miss():
    s = torch.tensor([[0.0, 0.1, 0.5, 0.9, 0.3, 0.7]])
    mask_scores(s, torch.tensor([0]), torch.tensor([3]))  # item 3 (0.9) was in the history
    m = ranking_metrics(*target_positions(s, torch.tensor([2])), ks=(2,))
    assert m["hr@2"].tolist() == [1.0] and m["ndcg@2"].tolist() == pytest.approx([1 / math.log2(3)])
    s = torch.tensor([[0.0, 0.1, 0.5, 0.9]])
    mask_scores(s, torch.tensor([0, 0]), torch.tensor([2, 3]))  # the target itself was seen
    m = ranking_metrics(*target_positions(s, torch.tensor([2])), ks=(10,))
    assert m["hr@10"].tolist() == [0.0] and m["mrr@10"].tolist() == [0.0]


def test_evaluate_batches_filtering_and_coverage():
    # scorer: score of item j = j (higher ids first), regardless of history; 6 items
    scorer = lambda inputs: torch.arange(7, dtype=torch.float32).expand(inputs.shape[0], -1).clone()  # noqa: E731
    t = eval_tensors_of([[0, 6], [5, 6], [0, 1]], [5, 4, 6], [[6], [5, 6], [1]])
    filtered = evaluate(scorer, t, n_items=6, filter_seen=True, ks=(1, 2), batch_size=2)
    # user 0: 6 seen -> 5 first; user 1: 5, 6 seen -> 4 first; user 2: 6 first
    assert filtered.per_user["hr@1"].tolist() == [1.0, 1.0, 1.0]
    assert filtered.metrics["coverage@10"] == 1.0  # top-6 of everybody covers the catalogue
    unfiltered = evaluate(scorer, t, n_items=6, filter_seen=False, ks=(1, 2), batch_size=2)
    assert unfiltered.per_user["hr@1"].tolist() == [0.0, 0.0, 1.0]
    assert unfiltered.per_user["ndcg@2"].tolist() == pytest.approx([1 / math.log2(3), 0.0, 1.0])
    assert unfiltered.metrics["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1.0) / 3)


def test_popularity_ranks_by_training_counts_with_ties_by_expectation():
    pop = PopularityScorer(torch.tensor([0, 3, 2, 1, 1, 0]))  # training counts of items 1..5
    t = eval_tensors_of([[0, 1], [0, 1], [0, 1]], [2, 3, 5], [[1], [1], [1]])
    r = evaluate(pop, t, n_items=5, filter_seen=True, ks=(1, 2, 5), batch_size=8)
    assert r.per_user["hr@1"].tolist() == [1.0, 0.0, 0.0]  # 1 is filtered, 2 leads
    assert r.per_user["hr@2"].tolist() == pytest.approx([1.0, 0.5, 0.0])  # 3 and 4 tie for position 2
    assert r.per_user["mrr@5"].tolist() == pytest.approx([1.0, (1 / 2 + 1 / 3) / 2, 1 / 4])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranks_bounded_by_the_top_k_give_the_same_metrics_as_full_counts(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (64, 30), generator=gen).float()  # heavy ties, as a popularity scorer has
    scores[torch.rand(64, 30, generator=gen) < 0.2] = float("-inf")  # filtered (seen) items, some targets too
    targets = torch.randint(1, 30, (64,), generator=gen)
    top = scores.topk(7, dim=1).values
    greater, ties, reachable = target_positions(scores, targets, top)
    full = target_positions(scores, targets)
    near = greater < 7  # rows counted exactly: identical to the full count
    assert torch.equal(greater[near], full[0][near]) and torch.equal(ties[near], full[1][near])
    assert bool((full[0][~near] >= 7).all()) and torch.equal(reachable, full[2])
    bounded = ranking_metrics(greater, ties, reachable, ks=(1, 5, 7))
    exact = ranking_metrics(*full, ks=(1, 5, 7))
    for name in exact:
        torch.testing.assert_close(bounded[name], exact[name], rtol=0, atol=1e-12)
    assert 0 < int(near.sum()) < 64  # both kinds of rows occur
