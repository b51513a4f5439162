"""Full-ranking metrics: HR@K, NDCG@K (binary relevance, log2 discount) and MRR@K.

Score ties are resolved by their expectation under a uniformly random tie-break: a target with `g`
items scored strictly higher and `t` other items scored equal lands uniformly on positions
g + 1 .. g + t + 1, and each metric is the average over those positions. This is exact, needs no
randomness, and gives a constant-score model the metrics of a random ranking (never a perfect one,
as optimistic tie-breaking would, nor zero, as pessimistic would). A target whose score is -inf
(filtered out, e.g. an already-seen item under eval.filter_seen) counts as a miss.
"""

from __future__ import annotations

import torch
from torch import Tensor

METRICS = ("hr", "ndcg", "mrr")


def target_positions(
    scores: Tensor, targets: Tensor, top_values: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """scores (B, N), targets (B,) -> (greater (B,), ties (B,), reachable (B,) bool).

    With `top_values` (B, K), the K best scores of each row in descending order (from the `topk` the evaluation
    takes anyway), only rows whose target can reach the top K are counted over the whole catalogue: a target
    scored below the K-th best has at least K items strictly above it, so it gets greater = K, ties = 0, which
    gives the same metrics at every cut-off <= K. Counting every row was half of a Beauty evaluation's time
    (benchmarks/results/eval_breakdown.md).
    """
    t = scores.gather(1, targets[:, None])  # (B, 1)
    reachable = torch.isfinite(t.squeeze(1))
    if top_values is None:
        return _count_around(scores, t) + (reachable,)
    k = top_values.shape[1]
    near = (t.squeeze(1) >= top_values[:, -1]).nonzero().squeeze(1)  # (R,) rows that may rank in the top K
    greater = torch.full_like(targets, k, dtype=torch.int32)
    ties = torch.zeros_like(targets, dtype=torch.int32)
    if near.numel():
        greater[near], ties[near] = _count_around(scores[near], t[near])
    return greater, ties, reachable


def _count_around(scores: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Items scored strictly higher than / tied with each row's target score t (B, 1); int32 accumulation
    (counting the bool mask into int64 took twice as long)."""
    greater = (scores > t).sum(dim=1, dtype=torch.int32)
    ties = (scores == t).sum(dim=1, dtype=torch.int32) - 1
    return greater, ties


def _discount(metric: str, k: int, device: torch.device) -> Tensor:
    """(k + 1,) cumulative gain C[p] = sum_{q=1..p} d(q), C[0] = 0."""
    pos = torch.arange(1, k + 1, dtype=torch.float64, device=device)
    d = {"hr": torch.ones_like(pos), "ndcg": 1.0 / torch.log2(pos + 1.0), "mrr": 1.0 / pos}[metric]
    return torch.cat([torch.zeros(1, dtype=torch.float64, device=device), d.cumsum(0)])


def ranking_metrics(
    greater: Tensor, ties: Tensor, reachable: Tensor, ks: tuple[int, ...] = (5, 10, 20)
) -> dict[str, Tensor]:
    """Per-row metric values (B,) float64 for every metric in METRICS and K in ks, keyed 'ndcg@10' etc."""
    out: dict[str, Tensor] = {}
    lo = greater.to(torch.int64)  # positions 1..lo are certainly taken by better items
    hi = lo + ties.to(torch.int64) + 1  # last position the target can land on
    for metric in METRICS:
        for k in ks:
            c = _discount(metric, k, greater.device)
            gain = (c[hi.clamp(max=k)] - c[lo.clamp(max=k)]) / (ties.to(torch.float64) + 1.0)
            out[f"{metric}@{k}"] = torch.where(reachable, gain, torch.zeros_like(gain))
    return out


def mask_scores(scores: Tensor, seen_rows: Tensor | None = None, seen_cols: Tensor | None = None) -> Tensor:
    """In place: -inf for the padding column 0 and, when given, for each (row, item) already seen."""
    scores[:, 0] = float("-inf")
    if seen_rows is not None and seen_cols is not None and seen_rows.numel():
        scores[seen_rows, seen_cols] = float("-inf")
    return scores
