"""Evaluate any scorer (a model or a baseline) under the one protocol: full ranking over all items."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from seqexp.data.loader import EvalTensors
from seqexp.evaluation.beyond_accuracy import HEAD_SHARE, ItemFacts, exposure_metrics, list_metrics
from seqexp.evaluation.chunked import Ranker, chunked_ranker, factored
from seqexp.evaluation.metrics import mask_scores, ranking_metrics, target_positions
from seqexp.evaluation.shared_scores import shared_score_ranker, shared_scores
from seqexp.ranks import shard_bounds, world

# history (B, L) [, features {name: (B, L)}] -> scores (B, N + 1) over all items, column 0 = padding
Scorer = Callable[..., Tensor]
COVERAGE_K = 10  # the cut-off of coverage and of the beyond-accuracy metrics
# settings (prefixes) that change no number a run reports: speed, files, logging, where it runs. A leaderboard row
# (seqexp-compare), a saved Optuna study and a benchmark's finished run are the same run with any value of them.
NO_RESULT_CHANGE = (
    "trainer.num_threads", "trainer.progress_bar", "trainer.save_checkpoint", "trainer.save_last", "trainer.resume",
    "trainer.overwrite", "trainer.device", "trainer.compile", "trainer.deterministic", "eval.batch_size",
    "eval.item_chunk", "data.engine", "logger", "paths.", "hydra.",
)  # fmt: skip


@dataclass
class EvalResult:
    metrics: dict[str, float]  # mean over users, e.g. {"ndcg@10": 0.05, "coverage@10": 0.3}
    per_user: dict[str, np.ndarray]  # metric -> (M,) values in the order of `users`
    users: np.ndarray  # (M,) user indices
    seconds: float
    recommended: np.ndarray | None = None  # (N + 1,) bool: items in anybody's top-K (for coverage across shards)
    exposure: np.ndarray | None = None  # (N + 1,) int64: times each item was in a top-K (summed across shards)

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
    item_chunk: int | None = None  # items scored at a time (seqexp.evaluation.chunked); None = all at once
    valid_sample_users: int | None = None  # validation on a seeded sample of this many users; None = all
    sample_seed: int = 0  # seed of that sample
    sampled: bool = False  # True on the validation copy (`validation()`): this copy evaluates the sample
    items: ItemFacts | None = field(default=None, repr=False, compare=False)  # for beyond-accuracy metrics
    diversity_column: str | None = None  # item side column the categories of ild@K come from (recorded)
    diversity_separator: str | None = None  # what splits that column's values into categories (None: whole value)
    unreachable_targets: dict[str, float] | None = field(default=None, compare=False)  # seqexp.evaluation.reach

    def validation(self) -> EvalProtocol:
        """The copy that validation during training uses: on `valid_sample_users` users when set."""
        return replace(self, sampled=True)

    def evaluate(self, scorer: Scorer, tensors: EvalTensors, device: torch.device | str = "cpu") -> EvalResult:
        """Full-ranking metrics of `scorer` on `tensors` (sharded across DDP ranks, gathered)."""
        if self.sampled:
            tensors = sample_rows(tensors, self.valid_sample_users, self.sample_seed)
        return evaluate_sharded(
            scorer,
            tensors,
            n_items=self.n_items,
            filter_seen=self.filter_seen,
            ks=self.ks,
            batch_size=self.batch_size,
            device=device,
            item_chunk=self.item_chunk,
            items=self.items,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "ranking": "full",
            "filter_seen": self.filter_seen,
            "ks": list(self.ks),
            "selection_metric": f"valid/{self.selection_metric}",
            "ties": "expected value under random tie-break",
            "item_chunk": self.item_chunk,
            "valid_sample_users": self.valid_sample_users,
            "sample_seed": self.sample_seed,
            "test_users": "all",
            "unreachable_targets": self.unreachable_targets,  # share of targets filter_seen hides, per split
            "beyond_accuracy": {
                "k": COVERAGE_K,
                "head_share": HEAD_SHARE,
                "diversity_column": self.diversity_column,
                "diversity_separator": self.diversity_separator,
            },
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
    coverage_k: int = COVERAGE_K,
    item_chunk: int | None = None,
    items: ItemFacts | None = None,
) -> EvalResult:
    """Score every row against all `n_items` items (in chunks of `item_chunk` items for a factored scorer),
    mask padding (and the history when `filter_seen`), and compute per-user metrics; `coverage@K` is the share
    of the catalogue in anybody's top-K, gini@K and entropy@K describe how evenly the top-K slots spread over
    it, and with `items` the per-user novelty, popularity, tail share and intra-list diversity are added."""
    t0 = time.perf_counter()
    cover = min(coverage_k, n_items)
    top_k = min(max(*ks, cover), n_items + 1)  # ranks beyond the largest cut-off need no exact count
    rank = _ranker(scorer, item_chunk)
    items = items.to(device) if items is not None else None
    parts: dict[str, list[Tensor]] = {}
    exposure = torch.zeros(n_items + 1, dtype=torch.int64, device=device)
    for i in range(0, len(tensors), batch_size):
        j = min(i + batch_size, len(tensors))
        inputs, targets, seen_rows, seen_cols = (x.to(device, non_blocking=True) for x in tensors.slice(i, j))
        features = {k: v.to(device, non_blocking=True) for k, v in tensors.feature_slice(i, j).items()}
        greater, ties, reachable, values, indices = rank(
            inputs, features, targets, (seen_rows, seen_cols) if filter_seen else None, top_k
        )
        for name, v in ranking_metrics(greater, ties, reachable, ks=ks).items():
            parts.setdefault(name, []).append(v)
        shown = torch.isfinite(values[:, :cover])  # a user with < K candidates left: -inf fill is not shown
        exposure += torch.bincount(indices[:, :cover][shown], minlength=n_items + 1)
        if items is not None:
            for name, v in list_metrics(indices[:, :cover], shown, items, coverage_k).items():
                parts.setdefault(name, []).append(v)
    per_user = {k: torch.cat(v).cpu().numpy() for k, v in parts.items()}
    exposure_np = exposure.cpu().numpy()
    metrics = reduce_metrics(per_user, exposure_np, coverage_k)
    return EvalResult(metrics, per_user, tensors.users.numpy(), time.perf_counter() - t0, exposure_np > 0, exposure_np)


def _ranker(scorer: Scorer, item_chunk: int | None) -> Ranker:
    """Chunked ranking for a factored scorer (a model, popularity) when `item_chunk` is set; else one
    (B, N + 1) score matrix per batch (today's path, bit for bit)."""
    shared = shared_scores(scorer) if item_chunk else None
    if shared is not None:  # the same scores for every user (popularity): no users x items matrix at all
        return shared_score_ranker(shared)
    owner = factored(scorer) if item_chunk else None
    if owner is not None:
        return chunked_ranker(owner, int(item_chunk))

    def whole(inputs: Tensor, features: dict[str, Tensor], targets: Tensor, seen: Any, top_k: int):  # noqa: ANN202
        scores = (scorer(inputs, features) if features else scorer(inputs)).float()  # (B, N + 1)
        mask_scores(scores, *(seen or ()))  # padding always, history if asked
        top = scores.topk(top_k, dim=1)  # (B, top_k) descending: bounds the ranks and gives the coverage set
        return (*target_positions(scores, targets, top.values), top.values, top.indices)

    return whole


def reduce_metrics(per_user: dict[str, np.ndarray], exposure: np.ndarray, coverage_k: int) -> dict[str, float]:
    """Means over users; coverage@K, the share of the catalogue (N + 1 counts, 0 = padding) in anybody's top-K;
    gini@K and entropy@K of the exposure (seqexp.evaluation.beyond_accuracy)."""
    metrics = {k: float(v.mean()) if len(v) else 0.0 for k, v in per_user.items()}
    metrics[f"coverage@{coverage_k}"] = float((exposure[1:] > 0).sum()) / (len(exposure) - 1)
    metrics.update(exposure_metrics(exposure, coverage_k))
    return metrics


@torch.no_grad()
def evaluate_sharded(scorer: Scorer, tensors: EvalTensors, **kwargs: Any) -> EvalResult:
    """`evaluate` on this rank's block of users, gathered: per-user values in the original row order,
    means over all users, coverage over the union of everybody's top-K and exposure counts summed over the
    ranks (DDP: each rank scores its share)."""
    rank, size = world()
    if size == 1:
        return evaluate(scorer, tensors, **kwargs)
    i, j = shard_bounds(len(tensors), rank, size)
    part = evaluate(scorer, tensors.rows(i, j), **kwargs)
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, (part.per_user, part.exposure, part.seconds))
    per_user = {k: np.concatenate([p[0][k] for p in parts]) for k in part.per_user}
    exposure = np.sum([p[1] for p in parts], axis=0)
    coverage_k = int(next(k for k in part.metrics if k.startswith("coverage@")).split("@")[1])
    metrics = reduce_metrics(per_user, exposure, coverage_k)
    return EvalResult(metrics, per_user, tensors.users.numpy(), max(p[2] for p in parts), exposure > 0, exposure)


def sample_rows(tensors: EvalTensors, n: int | None, seed: int) -> EvalTensors:
    """A seeded sample of `n` rows (in their original order) of `tensors`; all of them when n is None or >= M."""
    m = len(tensors)
    if n is None or n >= m:
        return tensors
    idx = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(m, size=n, replace=False)))
    lengths = tensors.seen_offsets[1:] - tensors.seen_offsets[:-1]  # (M,)
    kept = lengths[idx]  # (n,)
    offsets = torch.cat([torch.zeros(1, dtype=kept.dtype), kept.cumsum(0)])
    within = torch.arange(int(offsets[-1])) - torch.repeat_interleave(offsets[:-1], kept)
    seen = tensors.seen_items[torch.repeat_interleave(tensors.seen_offsets[idx], kept) + within]
    return EvalTensors(
        users=tensors.users[idx],
        inputs=tensors.inputs[idx],
        targets=tensors.targets[idx],
        seen_offsets=offsets,
        seen_items=seen,
        features={k: v[idx] for k, v in tensors.features.items()},
    )
