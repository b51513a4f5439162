"""A few users' top-K next to their history and the held-out item: the W&B table `test/top_k_examples`."""

from __future__ import annotations

from typing import Any

import torch

from seqexp.data.loader import EvalTensors
from seqexp.data.sequences import PreparedData
from seqexp.data.splits import EvalSet
from seqexp.evaluation.metrics import mask_scores
from seqexp.model.recommender import SequenceRecommender


@torch.no_grad()
def top_k_examples(
    model: SequenceRecommender,
    data: PreparedData,
    eval_set: EvalSet,
    tensors: EvalTensors,
    filter_seen: bool,
    n_users: int = 8,
    k: int = 10,
    history_shown: int = 5,
) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) for the first `n_users` rows of `tensors`: user, recent history, target, top-K, rank hit."""
    n = min(n_users, len(tensors))
    if n == 0:
        return ["user_id", "recent_history", "target", f"top_{k}", "target_rank"], []
    device = next(model.parameters()).device
    inputs, targets, rows, cols = tensors.slice(0, n)
    features = {name: f.to(device) for name, f in tensors.feature_slice(0, n).items()}
    scores = model.score(inputs.to(device), features or None).float()  # (n, N + 1)
    mask_scores(scores, *((rows.to(device), cols.to(device)) if filter_seen else ()))
    top = scores.topk(min(k, data.n_items), dim=1).indices.cpu()
    out = []
    for r in range(n):
        history = data.items[eval_set.history_start[r] : eval_set.history_end[r]][-history_shown:]
        ranked = [data.item_ids[i - 1] for i in top[r].tolist()]
        target = data.item_ids[int(targets[r]) - 1]
        out.append(
            [
                str(data.user_ids[eval_set.users[r]]),
                " ".join(data.item_ids[i - 1] for i in history),
                target,
                " ".join(ranked),
                ranked.index(target) + 1 if target in ranked else None,
            ]
        )
    return ["user_id", "recent_history", "target", f"top_{k}", "target_rank"], out
