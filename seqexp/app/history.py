"""Served histories -> the model's input tensors, with per-event feature codes built exactly as training built them.

Training (seqexp.data.features) codes a behaviour as its index in the log's `behavior_vocab` + 1 and a time
gap with `time_gap_buckets` over the user's events; the history window is the most recent max_len events,
left-padded. Here the same functions run on the served events, so that a test user's history served through
`Recommender` gets the scores the test evaluation computed (tests/test_serving.py checks equality).
Events whose item the model does not know are dropped before the gaps are taken, as preparation drops
events of unknown items before training computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from seqexp.app.events import Event
from seqexp.data.columns import parse_timestamps
from seqexp.data.features import time_gap_buckets
from seqexp.data.loader import left_padded_windows
from seqexp.errors import RecommendError


@dataclass
class EncodedHistories:
    inputs: torch.Tensor  # (B, L) item indices, left-padded with 0
    features: dict[str, torch.Tensor]  # name -> (B, L) codes aligned with inputs, 0 = padding / unknown
    items: list[list[int]]  # each history's known item indices (all of them, for excluding the history)
    warnings: list[str] = field(default_factory=list)


def as_event(value: object) -> Event:
    """An Event as it is; any other value is a bare raw item id."""
    return value if isinstance(value, Event) else Event(str(value).strip())


def encode_histories(
    histories: Sequence[Sequence[object]],
    index: dict[str, int],
    max_len: int,
    features: Sequence[str],
    behavior_vocab: list[str] | None,
) -> EncodedHistories:
    """Raw histories (Event or raw item id, oldest first) -> left-padded inputs and feature codes."""
    if not histories:
        raise RecommendError("no history given: pass at least one list of item ids")
    rows, codes, warnings, bare = [], {name: [] for name in features}, [], []
    for n, history in enumerate(histories, start=1):
        events = [as_event(e) for e in history]
        kept = [e for e in events if e.item in index]
        unknown = [e.item for e in events if e.item not in index]
        if not kept:
            what = "is empty" if not events else f"has no item known to this model (unknown: {unknown[:10]})"
            raise RecommendError(f"history {n} {what}; give raw item ids as they appear in the training log")
        if unknown:
            warnings.append(f"history {n}: {len(unknown)} unknown item id(s) skipped: {unknown[:10]}")
        rows.append([index[e.item] for e in kept])
        gaps = _gap_codes(kept, n)
        for name in features:
            values = _behavior_codes(kept, n, behavior_vocab) if name == "behavior" else gaps
            codes[name].append(values if values is not None else np.zeros(len(kept), np.int64))
        if any(_missing(name, kept) for name in features):
            bare.append(n)
    if bare:
        warnings.append(
            f"this model uses features {list(features)}, but history {', '.join(map(str, bare))} lacks behaviours "
            f"or timestamps: they read as unknown, so the scores differ from the evaluation's; give events as "
            f"ITEM:BEHAVIOR@TIME (or an --events file with behavior and timestamp)"
        )
    offsets = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    starts, ends = offsets[:-1], offsets[1:]

    def window(flat: list[np.ndarray] | list[list[int]]) -> torch.Tensor:
        return torch.from_numpy(left_padded_windows(np.concatenate(flat).astype(np.int64), starts, ends, max_len))

    return EncodedHistories(window(rows), {k: window(v) for k, v in codes.items()}, rows, warnings)


def _missing(name: str, events: list[Event]) -> bool:
    if name == "behavior":
        return any(e.behavior is None for e in events)
    return any(e.timestamp is None for e in events)


def _behavior_codes(events: list[Event], n: int, vocab: list[str] | None) -> np.ndarray | None:
    """Vocabulary index + 1 per event, 0 where no behaviour was given; an unknown name is an error."""
    if all(e.behavior is None for e in events):
        return None
    if vocab is None:
        raise RecommendError(
            "this run's checkpoint has no behaviour vocabulary (written by an older seqexp), so behaviour names "
            "cannot be mapped to the codes it was trained with; retrain the run, or give bare item ids"
        )
    code = {name: i + 1 for i, name in enumerate(vocab)}
    out = np.zeros(len(events), np.int64)
    for m, e in enumerate(events):
        if e.behavior is not None:
            if e.behavior not in code:
                raise RecommendError(
                    f"history {n}: behaviour {e.behavior!r} of item {e.item!r} is not one this model was trained "
                    f"with (it knows {vocab}); use one of those names"
                )
            out[m] = code[e.behavior]
    return out


def _gap_codes(events: list[Event], n: int) -> np.ndarray | None:
    """time_gap buckets over the history's timestamps, exactly as training computes them per user."""
    given = [e.timestamp is not None for e in events]
    if not any(given):
        return None
    if not all(given):
        missing = [e.item for e, g in zip(events, given, strict=True) if not g][:5]
        raise RecommendError(
            f"history {n}: some events have a timestamp and some do not (without: items {missing}); the time "
            f"gaps need every event's time: give all of them, or none"
        )
    seconds, _ = parse_timestamps(pa.array([str(e.timestamp).strip() for e in events], pa.string()))  # unix seconds
    for e, s in zip(events, seconds, strict=True):
        if not np.isfinite(s):
            raise RecommendError(
                f"history {n}: timestamp {e.timestamp!r} of item {e.item!r} is neither unix seconds nor a "
                f"date-time (e.g. 1700000000 or 2023-11-14T22:13:20)"
            )
    back = np.flatnonzero(np.diff(seconds) < 0)
    if len(back):
        e = events[int(back[0]) + 1]
        raise RecommendError(
            f"history {n}: event {int(back[0]) + 2} (item {e.item!r}, time {e.timestamp!r}) is earlier than the "
            f"event before it; list events oldest first"
        )
    return time_gap_buckets(seconds, np.array([0, len(events)], dtype=np.int64))
