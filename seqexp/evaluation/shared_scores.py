"""Exact ranking for a scorer that gives every user the same scores (the popularity baseline), without a
(users x items) matrix: sort the catalogue's scores once, then each target's rank is a binary search minus the
user's own seen items above it, and each top-K is the global order with the user's seen items skipped.

At Taobao scale (4.2M items) ranking popularity like a model cost as much as the model's own test ranking; this
path costs O(N log N) once plus O(seen items + K) per user. The counts are exact, so HR/NDCG/MRR equal the
whole-catalogue path; items tied at the K-th score are taken in item order (the other paths leave that to
`topk`), which can only move coverage and the beyond-accuracy metrics when such ties straddle the cut.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def shared_scores(scorer: Any) -> Tensor | None:
    """(N + 1,) the scores every user gets from `scorer`, when it declares them (`user_independent_scores`)."""
    method = getattr(scorer, "user_independent_scores", None)
    return method().float() if callable(method) else None


def shared_score_ranker(scores: Tensor) -> Any:
    """A Ranker (seqexp.evaluation.chunked.Ranker) for scores (N + 1,) shared by every user."""
    s = scores.clone()
    s[0] = float("-inf")  # padding is never a candidate
    ascending = torch.sort(s[1:]).values  # (N,)
    order = torch.sort(s, descending=True, stable=True).indices  # (N + 1,) best first, ties in item order
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))  # item -> its place in `order`

    def rank(inputs: Tensor, features: dict, targets: Tensor, seen: Any, top_k: int):  # noqa: ANN202
        device = targets.device
        table, asc, ordered, pos = (x.to(device) for x in (s, ascending, order, position))
        rows, cols = _unique_pairs(seen, targets.shape[0], len(table)) if seen is not None else (None, None)
        t = table[targets].masked_fill(targets == 0, float("-inf"))  # (B,)
        if rows is not None:
            t[rows[cols == targets[rows]]] = float("-inf")  # a seen target is a miss
        above = len(asc) - torch.searchsorted(asc, t, right=True)  # (B,) items scored higher
        equal = torch.searchsorted(asc, t, right=True) - torch.searchsorted(asc, t) - 1  # others tied
        if rows is not None:
            v = table[cols]
            above -= torch.bincount(rows[v > t[rows]], minlength=len(t))
            equal -= torch.bincount(rows[(v == t[rows]) & (cols != targets[rows])], minlength=len(t))
        values, indices = _top(table, ordered, pos, rows, cols, len(t), top_k)
        return above.to(torch.int32), equal.to(torch.int32), torch.isfinite(t), values, indices

    return rank


def _unique_pairs(seen: tuple[Tensor, Tensor], n_rows: int, n_items: int) -> tuple[Tensor, Tensor]:
    """Seen (row, item) pairs without repeats (a history may hold an item twice; masking counts it once)."""
    rows, cols = seen
    key = torch.unique(rows.to(torch.int64) * n_items + cols)
    return key // n_items, key % n_items


def _top(table: Tensor, order: Tensor, position: Tensor, rows: Tensor | None, cols: Tensor | None, b: int, k: int):  # noqa: ANN202
    """(B, k) best scores and items per row: the global order with each row's seen items skipped."""
    per_row = torch.bincount(rows, minlength=b) if rows is not None else torch.zeros(b, dtype=torch.int64)
    m = min(len(order), k + int(per_row.max()) if b else k)  # enough of the global order for every row
    blocked = torch.zeros(b, m, dtype=torch.bool, device=table.device)
    if rows is not None:
        p = position[cols]
        blocked[rows[p < m], p[p < m]] = True
    blocked[:, (order[:m] == 0)] = True  # the padding item (score -inf) is never shown
    first = torch.sort(blocked.to(torch.int8), dim=1, stable=True).indices[:, :k]  # (B, k) places, kept first
    indices = order[:m][first]
    values = table[indices].masked_fill(torch.gather(blocked, 1, first), float("-inf"))
    return values, indices
