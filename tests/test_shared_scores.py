"""The popularity baseline ranked without a users x items matrix (seqexp.evaluation.shared_scores) gives exactly
the counts of the whole-catalogue path; its top-K equals topk's whenever no tie straddles the cut."""

from __future__ import annotations

import pytest
import torch

from seqexp.data.loader import EvalTensors
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.protocol import evaluate


def _tensors(n_users: int, n_items: int, seed: int) -> EvalTensors:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 9, (n_users,), generator=g)
    seen = torch.randint(1, n_items + 1, (int(lengths.sum()),), generator=g)  # repeats and seen targets included
    targets = torch.randint(1, n_items + 1, (n_users,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return EvalTensors(torch.arange(n_users), torch.ones(n_users, 3, dtype=torch.int64), targets, offsets, seen)


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("filter_seen", [True, False])
def test_shared_scores_rank_popularity_exactly(ties, filter_seen):
    n_items = 40
    g = torch.Generator().manual_seed(3)
    counts = torch.randint(0, 4, (n_items + 1,), generator=g) if ties else torch.randperm(n_items + 1, generator=g)
    counts[0] = 0
    popularity, tensors = PopularityScorer(counts), _tensors(64, n_items, seed=1)
    whole = evaluate(popularity, tensors, n_items, filter_seen=filter_seen, ks=(1, 5, 10, 20), batch_size=16)
    fast = evaluate(popularity, tensors, n_items, filter_seen=filter_seen, ks=(1, 5, 10, 20), batch_size=16,
                    item_chunk=7)  # fmt: skip
    for name in ("hr@1", "hr@5", "ndcg@10", "mrr@20", "ndcg@20"):
        assert fast.per_user[name].tolist() == whole.per_user[name].tolist(), name  # exact counts
    if not ties:  # the same top-K lists, so the same coverage and exposure
        assert fast.exposure.tolist() == whole.exposure.tolist()
        assert fast.metrics["coverage@10"] == whole.metrics["coverage@10"]


def test_a_user_with_fewer_candidates_than_k_shows_only_real_items():
    counts = torch.tensor([0, 5, 4, 3, 2])  # 4 items; the user has seen 3 of them
    tensors = EvalTensors(
        torch.tensor([0]), torch.ones(1, 3, dtype=torch.int64), torch.tensor([4]),
        torch.tensor([0, 3]), torch.tensor([1, 2, 3]),
    )  # fmt: skip
    result = evaluate(PopularityScorer(counts), tensors, 4, filter_seen=True, ks=(10,), item_chunk=2)
    assert result.metrics["hr@10"] == 1.0 and result.metrics["mrr@10"] == 1.0  # item 4 is the only candidate
    assert result.exposure.tolist() == [0, 0, 0, 0, 1]  # coverage counts only the item shown
