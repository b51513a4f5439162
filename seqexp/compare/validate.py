"""Which results enter a leaderboard: a results.json that is not ours, or whose model never trained, is skipped.

A leaderboard ranks numbers people will quote, so a row must come from a run that really trained and was
really evaluated. `problem()` says, in words a user can act on, why a payload cannot be ranked; the caller
lists such runs as skipped (never averaged in) instead of failing the whole comparison or ranking them.
"""

from __future__ import annotations

import math
from typing import Any

from seqexp.evaluation.beyond_accuracy import BEYOND

# The keys `record_from_results` reads from a completed results.json (dotted = nested).
REQUIRED = (
    "model",
    "data",
    "seed",
    "metrics",
    "per_user.user_ids",
    "per_user.values",
    "data_fingerprint",
    "protocol",
    "training.parameters",
    "training.epochs_run",
    "training.best_epoch",
    "timings.train_s",
    "throughput.train_sequences_per_s",
)
METRICS = ("test/ndcg@10", "test/hr@10", "test/mrr@10")  # the metrics every leaderboard row shows
PAIRED_DEFAULT = "test/ndcg@10"  # the per-user metric of the paired tests unless --paired-metric names another
# --diversity columns: the beyond-accuracy metrics of the test top-10 (seqexp.evaluation.beyond_accuracy)
DIVERSITY = tuple(f"test/{name}@10" for name in BEYOND)


def lookup(payload: dict[str, Any], dotted: str) -> Any:
    """payload["a"]["b"] for "a.b"; KeyError when a level is missing or is not a mapping."""
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def shape_problem(payload: Any) -> str | None:
    """Why `payload` is not a seqexp results.json at all (another tool's file, a list, no status)."""
    if not isinstance(payload, dict):
        return f"not a seqexp results.json: it holds a JSON {type(payload).__name__}, not an object"
    if "status" not in payload:
        keys = ", ".join(sorted(map(str, payload))[:6]) or "none"
        return f"not a seqexp results.json: no 'status' key (its keys: {keys})"
    return None


def problem(payload: dict[str, Any]) -> str | None:
    """Why a payload whose status is "completed" cannot be ranked; None when it can."""
    missing = [k for k in REQUIRED if not _has(payload, k)]
    if missing:
        return f"not a seqexp results.json (or an older one): missing {', '.join(missing)}"
    training = payload["training"]
    if not _positive(training["epochs_run"]):
        return f"the model never trained (training.epochs_run = {training['epochs_run']!r})"
    if not _positive(training["best_epoch"]):
        return (
            f"no validation improvement was ever recorded (training.best_epoch = {training['best_epoch']!r}), "
            "so no trained weights were evaluated"
        )
    return _metrics_problem(payload)


def _metrics_problem(payload: dict[str, Any]) -> str | None:
    metrics = payload["metrics"]
    for name in METRICS:
        value = metrics.get(name) if isinstance(metrics, dict) else None
        if not _finite(value):
            return f"metrics.{name} is {value!r}, not a finite number"
    ids, values = payload["per_user"]["user_ids"], payload["per_user"]["values"]
    if not isinstance(ids, list) or not isinstance(values, list) or not ids or len(ids) != len(values):
        n_ids = len(ids) if isinstance(ids, list) else "?"
        n_values = len(values) if isinstance(values, list) else "?"
        return f"per_user holds {n_ids} user ids and {n_values} values: it cannot be paired"
    if not all(_finite(v) for v in values):
        return "per_user.values holds a value that is not a finite number"
    return None


def _has(payload: dict[str, Any], dotted: str) -> bool:
    try:
        lookup(payload, dotted)
    except KeyError:
        return False
    return True


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0
