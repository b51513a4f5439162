"""Exact full ranking in item chunks: a running top-K merge and exact rank counting, without a (B, N) matrix.

A model's scores are user states times the item table, `score = user_states(history) @ item_table().T`
(seqexp.model.recommender). With eval.item_chunk = C the evaluation scores a batch of B users against C items
at a time: each (B, C) block is masked (padding, seen items), merged into the running top-K, and compared with
each target's score to count the items scored strictly higher and tied, then freed. Memory is
O(B x C) instead of O(B x N), which is what lets a 4-million-item catalogue (Taobao) be ranked exactly; the
counts are exact, so HR/NDCG/MRR (ties by expectation) equal the whole-catalogue path (tests/test_chunked_eval.py).

Which of several items tied at the K-th score fill the last top-K slots is up to `topk` in both paths, so
coverage and the beyond-accuracy metrics can differ only when such ties straddle the cut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

# (inputs (B, L), features, targets (B,), seen (rows, cols) | None, top_k) ->
#     (greater (B,), ties (B,), reachable (B,), top values (B, top_k), top indices (B, top_k))
Ranker = Callable[..., tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]


def factored(scorer: Any) -> Any | None:
    """The object whose `user_states(history, features)` and `item_table()` make up `scorer`, or None.

    Accepted: a bound method named `score` of such an object (SequenceRecommender.score), or such an object
    itself (PopularityScorer). Anything else (a plain function) keeps the whole-catalogue path."""
    owner = getattr(scorer, "__self__", None)
    if owner is not None and getattr(scorer, "__name__", "") != "score":
        return None
    owner = scorer if owner is None else owner
    ok = callable(getattr(owner, "user_states", None)) and callable(getattr(owner, "item_table", None))
    return owner if ok else None


def chunked_ranker(owner: Any, chunk: int) -> Ranker:
    """A Ranker scoring `owner`'s user states against its item table `chunk` items at a time."""
    table = owner.item_table()  # (N + 1, D), computed once per evaluation

    def rank(inputs: Tensor, features: dict[str, Tensor], targets: Tensor, seen: Any, top_k: int):  # noqa: ANN202
        states = owner.user_states(inputs, features) if features else owner.user_states(inputs)  # (B, D)
        return rank_in_chunks(states, table, targets, seen, top_k, chunk)

    return rank


@torch.no_grad()
def rank_in_chunks(
    states: Tensor, table: Tensor, targets: Tensor, seen: tuple[Tensor, Tensor] | None, top_k: int, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """states (B, D), table (N + 1, D) -> exact (greater, ties, reachable) of each target and the top-k.

    `seen` = (rows, cols) of items masked out per row (eval.filter_seen); the padding column 0 always is."""
    b = states.shape[0]
    table = table.to(states.device)  # a no-op for a model; popularity's counts may live on the CPU
    t = _target_scores(states, table, targets, seen)  # (B,) -inf when the target is masked
    greater = torch.zeros(b, dtype=torch.int32, device=states.device)
    ties = torch.zeros(b, dtype=torch.int32, device=states.device)
    values = torch.empty(b, 0, device=states.device)
    indices = torch.empty(b, 0, dtype=torch.int64, device=states.device)
    for a in range(0, table.shape[0], chunk):
        e = min(a + chunk, table.shape[0])
        s = _masked_block(states, table, a, e, seen)  # (B, C)
        g, q = _count_block(s, t, targets, a, e)
        greater += g
        ties += q
        block = s.topk(min(top_k, e - a), dim=1)
        merged = torch.cat([values, block.values], 1).topk(min(top_k, values.shape[1] + e - a), dim=1)
        indices = torch.cat([indices, block.indices + a], 1).gather(1, merged.indices)
        values = merged.values
    return greater, ties, torch.isfinite(t), values, indices


def _target_scores(states: Tensor, table: Tensor, targets: Tensor, seen: tuple[Tensor, Tensor] | None) -> Tensor:
    """(B,) each row's target score, -inf for the padding target and (under filtering) a seen target."""
    t = (states[:, None, :] @ table[targets][:, :, None]).reshape(-1).float()  # (B,)
    blocked = targets == 0
    if seen is not None and seen[0].numel():
        rows, cols = seen
        blocked[rows[cols == targets[rows]]] = True
    return t.masked_fill(blocked, float("-inf"))


def _masked_block(states: Tensor, table: Tensor, a: int, e: int, seen: tuple[Tensor, Tensor] | None) -> Tensor:
    """(B, e - a) scores of items a..e-1, -inf at the padding column and at the seen (row, item) pairs."""
    s = (states @ table[a:e].T).float()  # (B, C)
    if a == 0:
        s[:, 0] = float("-inf")
    if seen is not None and seen[0].numel():
        rows, cols = seen
        inside = (cols >= a) & (cols < e)
        s[rows[inside], cols[inside] - a] = float("-inf")
    return s


def _count_block(s: Tensor, t: Tensor, targets: Tensor, a: int, e: int) -> tuple[Tensor, Tensor]:
    """Items of the block scored strictly higher than / equal to each row's target score, the target's own
    column left out (its block score may differ from `t` by rounding; it never counts against itself)."""
    greater = (s > t[:, None]).sum(1, dtype=torch.int32)
    ties = (s == t[:, None]).sum(1, dtype=torch.int32)
    rows = ((targets >= a) & (targets < e)).nonzero().squeeze(1)
    if rows.numel():
        own = s[rows, targets[rows] - a]
        greater[rows] -= (own > t[rows]).to(torch.int32)
        ties[rows] -= (own == t[rows]).to(torch.int32)
    return greater, ties
