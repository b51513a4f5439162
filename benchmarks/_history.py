"""Reading a run's per-epoch history (results.json "history") in the benchmarks."""

from __future__ import annotations


def seconds_to(result: dict, threshold: float | None = None) -> float | None:
    """Training + validation seconds until the best epoch (threshold None), or until valid NDCG@10 first reaches
    `threshold`; None when it never does."""
    for row in result["history"]:
        if "valid/ndcg@10" not in row:
            continue
        if threshold is None and row["epoch"] == result["training"]["best_epoch"]:
            return row["wall_seconds"]
        if threshold is not None and row["valid/ndcg@10"] >= threshold:
            return row["wall_seconds"]
    return None
