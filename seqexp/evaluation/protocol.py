"""Evaluate any scorer (a model or a baseline) under the one protocol: full ranking over all items."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from seqexp.data.loader import EvalTensors
from seqexp.evaluation.metrics import mask_scores, ranking_metrics, target_positions
from seqexp.ranks import shard_bounds, world

# history (B, L) [, features {name: (B, L)}] -> scores (B, N + 1) over all items, column 0 = padding
Scorer = Callable[..., Tensor]


@dataclass
class EvalResult:
    metrics: dict[str, float]  # mean over users, e.g. {"ndcg@10": 0.05, "coverage@10": 0.3}
    per_user: dict[str, np.ndarray]  # metric -> (M,) values in the order of `users`
    users: np.ndarray  # (M,) user indices
    seconds: float
    recommended: np.ndarray | None = None  # (N + 1,) bool: items in anybody's top-K (for coverage across shards)

    @property
    def users_per_second(self) -> float:
        return len(self.users) / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class EvalProtocol:
    """How every scorer of a run is evaluated (DESIGN.md, "Evaluation protocol"); recorded in results.json."""

    n_items: int  # N: every item is a candidate (full ranking)
    filter_seen: bool = True  # items of the user's input history cannot be recommended
    ks: tuple[int, ...] = (5, 10, 20)  # cut-offs of HR/NDCG/MRR
    batch_size: int = 512  # users scored per batch
    selection_metric: str = "ndcg@10"  # validation metric for early stopping and checkpoint selection

    def evaluate(self, scorer: Scorer, tensors: EvalTensors, device: torch.device | str = "cpu") -> EvalResult:
        """Full-ranking metrics of `scorer` on `tensors` (sharded across DDP ranks, gathered)."""
        return evaluate_sharded(
            scorer,
            tensors,
            n_items=self.n_items,
            filter_seen=self.filter_seen,
            ks=self.ks,
            batch_size=self.batch_size,
            device=device,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "ranking": "full",
            "filter_seen": self.filter_seen,
            "ks": list(self.ks),
            "selection_metric": f"valid/{self.selection_metric}",
            "ties": "expected value under random tie-break",
        }


@torch.no_grad()
def evaluate(
    scorer: Scorer,
    tensors: EvalTensors,
    n_items: int,
    filter_seen: bool = True,
    ks: tuple[int, ...] = (5, 10, 20),
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    coverage_k: int = 10,
) -> EvalResult:
    """Score every row against all `n_items` items, mask padding (and the history when `filter_seen`),
    and compute per-user metrics; `coverage@K` is the share of the catalogue in anybody's top-K."""
    t0 = time.perf_counter()
    cover = min(coverage_k, n_items)
    top_k = min(max(*ks, cover), n_items + 1)  # ranks beyond the largest cut-off need no exact count
    parts: dict[str, list[Tensor]] = {}
    recommended = torch.zeros(n_items + 1, dtype=torch.bool, device=device)
    for i in range(0, len(tensors), batch_size):
        j = min(i + batch_size, len(tensors))
        inputs, targets, seen_rows, seen_cols = (x.to(device, non_blocking=True) for x in tensors.slice(i, j))
        features = {k: v.to(device, non_blocking=True) for k, v in tensors.feature_slice(i, j).items()}
        scores = (scorer(inputs, features) if features else scorer(inputs)).float()  # (B, N + 1)
        mask_scores(scores, *((seen_rows, seen_cols) if filter_seen else ()))  # padding always, history if asked
        top = scores.topk(top_k, dim=1)  # (B, top_k) descending: bounds the ranks and gives the coverage set
        for name, values in ranking_metrics(*target_positions(scores, targets, top.values), ks=ks).items():
            parts.setdefault(name, []).append(values)
        shown = torch.isfinite(top.values[:, :cover])  # a user with < K candidates left: -inf fill is not shown
        recommended[top.indices[:, :cover][shown]] = True
    per_user = {k: torch.cat(v).cpu().numpy() for k, v in parts.items()}
    recommended_np = recommended.cpu().numpy()
    metrics = reduce_metrics(per_user, recommended_np, coverage_k)
    return EvalResult(metrics, per_user, tensors.users.numpy(), time.perf_counter() - t0, recommended_np)


def reduce_metrics(per_user: dict[str, np.ndarray], recommended: np.ndarray, coverage_k: int) -> dict[str, float]:
    """Means over users, and coverage@K: the share of the catalogue (N + 1 flags, 0 = padding) in anybody's top-K."""
    metrics = {k: float(v.mean()) if len(v) else 0.0 for k, v in per_user.items()}
    metrics[f"coverage@{coverage_k}"] = float(recommended[1:].sum()) / (len(recommended) - 1)
    return metrics


@torch.no_grad()
def evaluate_sharded(scorer: Scorer, tensors: EvalTensors, **kwargs: Any) -> EvalResult:
    """`evaluate` on this rank's block of users, gathered: per-user values in the original row order,
    means over all users, coverage over the union of everybody's top-K (DDP: each rank scores its share)."""
    rank, size = world()
    if size == 1:
        return evaluate(scorer, tensors, **kwargs)
    i, j = shard_bounds(len(tensors), rank, size)
    part = evaluate(scorer, tensors.rows(i, j), **kwargs)
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, (part.per_user, part.recommended, part.seconds))
    per_user = {k: np.concatenate([p[0][k] for p in parts]) for k in part.per_user}
    recommended = np.logical_or.reduce([p[1] for p in parts])
    coverage_k = int(next(k for k in part.metrics if k.startswith("coverage@")).split("@")[1])
    metrics = reduce_metrics(per_user, recommended, coverage_k)
    return EvalResult(metrics, per_user, tensors.users.numpy(), max(p[2] for p in parts), recommended)
