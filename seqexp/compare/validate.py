"""Which results enter a leaderboard: a results.json that is not ours, or whose model never trained, is skipped.

A leaderboard ranks numbers people will quote, so a row must come from a run that really trained and was
really evaluated. `problem()` says, in words a user can act on, why a payload cannot be ranked; the caller
lists such runs as skipped (never averaged in) instead of failing the whole comparison or ranking them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
# The metrics where a lower value is the better one (seqexp.evaluation.beyond_accuracy): gini = exposure concentrated
# on fewer items, avg_pop = more popular items shown. Every other metric (accuracy, entropy, novelty, tail_share,
# ild) is better higher. The one source of truth for how a leaderboard ranks and reads its `metric`.
LOWER_IS_BETTER = frozenset({"gini", "avg_pop"})


def lower_is_better(metric: str) -> bool:
    """Whether a lower value of `metric` ("test/gini@10", "valid/avg_pop@20", "gini") is the better one."""
    name = metric.rpartition("/")[2].partition("@")[0]
    return name in LOWER_IS_BETTER


def direction(metric: str) -> str:
    """ "lower is better" or "higher is better", for the tables and the json `metric_direction`."""
    return "lower is better" if lower_is_better(metric) else "higher is better"


@dataclass(frozen=True)
class Expect:
    """What a results.json key must hold for seqexp-compare to use it."""

    what: str  # in words, for the reason: "a mapping", "a list of strings"
    types: tuple[type, ...]  # of the value, or of each item when `items`
    items: bool = False  # a list whose items have `types`
    null: bool = False  # null is accepted too (unknown, or absent from older files)


MAPPING = Expect("a mapping", (dict,))
STRING = Expect("a string", (str,))
INTEGER = Expect("an integer", (int,))
NUMBER = Expect("a number", (int, float))
NUMBERS = Expect("a list of numbers", (int, float, type(None)), items=True)  # per user; null: not defined for one
# The levels holding the REQUIRED keys: one that is not a mapping is named as such, not as all its keys missing.
LEVELS = {k: MAPPING for k in ("metrics", "per_user", "protocol", "training", "timings", "throughput")}
# What the other keys that seqexp-compare reads must hold (optional ones may be absent); a value of another type
# would end the comparison in a traceback (sorting, hashing, averaging or formatting it), so its run is skipped.
FIELDS = {
    "model": STRING,
    "data": STRING,
    "seed": INTEGER,
    "data_fingerprint": STRING,
    "training.parameters": Expect("a number", (int, float), null=True),
    "training.epochs_run": NUMBER,
    "training.best_epoch": NUMBER,
    "timings.train_s": Expect("a number", (int, float), null=True),
    "throughput.train_sequences_per_s": Expect("a number", (int, float), null=True),
    "protocol.valid_sample_users": Expect("an integer", (int,), null=True),
    "per_user_metrics": Expect("a mapping", (dict,), null=True),
    "overrides": Expect("a list of strings", (str,), items=True, null=True),
    "wandb_group": Expect("a string", (str,), null=True),
    "history": Expect("a list of mappings", (dict,), items=True, null=True),
}


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
    wrong = _type_problem(payload, LEVELS)
    if wrong:
        return wrong
    missing = [k for k in REQUIRED if not _has(payload, k)]
    if missing:
        return f"not a seqexp results.json (or an older one): missing {', '.join(missing)}"
    wrong = _type_problem(payload, FIELDS)
    if wrong:
        return wrong
    training = payload["training"]
    if not _positive(training["epochs_run"]):
        return f"the model never trained (training.epochs_run = {training['epochs_run']!r})"
    if not _positive(training["best_epoch"]):
        return (
            f"no validation improvement was ever recorded (training.best_epoch = {training['best_epoch']!r}), "
            "so no trained weights were evaluated"
        )
    return _metrics_problem(payload) or _per_user_metrics_problem(payload)


def type_of(value: Any) -> str:
    """A JSON value's type in words: "null", "a str", "an int", "a list"."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _matches(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that true/false is never a number (bool is an int in Python, not in JSON)."""
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def mismatch(value: Any, expect: Expect) -> str | None:
    """How `value` differs from `expect` ("a str", "a list holding an int"); None when it matches."""
    if value is None and expect.null:
        return None
    if not expect.items:
        return None if _matches(value, expect.types) else type_of(value)
    if not isinstance(value, list):
        return type_of(value)
    odd = [v for v in value if not _matches(v, expect.types)]
    return f"a list holding {type_of(odd[0])}" if odd else None


def _type_problem(payload: dict[str, Any], expected: dict[str, Expect]) -> str | None:
    """The first key of `expected` present in `payload` with a value of another type, in words naming the key."""
    for dotted, expect in expected.items():
        try:
            value = lookup(payload, dotted)
        except KeyError:
            continue  # absent: a REQUIRED key is reported as missing, an optional one is not needed
        wrong = mismatch(value, expect)
        if wrong:
            return f"results.json: {dotted} is {wrong}, expected {expect.what}"
    return None


def _per_user_metrics_problem(payload: dict[str, Any]) -> str | None:
    """Each per_user_metrics entry must be a list of numbers, one per user of per_user.user_ids (paired tests)."""
    n_users = len(payload["per_user"]["user_ids"])
    for name, values in (payload.get("per_user_metrics") or {}).items():
        wrong = mismatch(values, NUMBERS)
        if wrong:
            return f"results.json: per_user_metrics.{name} is {wrong}, expected {NUMBERS.what}"
        if len(values) != n_users:
            return (
                f"results.json: per_user_metrics.{name} holds {len(values)} values for {n_users} users in "
                "per_user.user_ids: it cannot be paired"
            )
    return None


def _metrics_problem(payload: dict[str, Any]) -> str | None:
    metrics = payload["metrics"]
    for name in METRICS:
        value = metrics.get(name) if isinstance(metrics, dict) else None
        if not finite(value):
            return f"metrics.{name} is {value!r}, not a finite number"
    ids, values = payload["per_user"]["user_ids"], payload["per_user"]["values"]
    if not isinstance(ids, list) or not isinstance(values, list) or not ids or len(ids) != len(values):
        n_ids = len(ids) if isinstance(ids, list) else "?"
        n_values = len(values) if isinstance(values, list) else "?"
        return f"per_user holds {n_ids} user ids and {n_values} values: it cannot be paired"
    if not all(finite(v) for v in values):
        return "per_user.values holds a value that is not a finite number"
    return None


def _has(payload: dict[str, Any], dotted: str) -> bool:
    try:
        lookup(payload, dotted)
    except KeyError:
        return False
    return True


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return finite(value) and value > 0
