"""Per-event side features for the model, as integer codes aligned with `PreparedData.items` (0 = padding).

behavior  the operation type (pv / cart / fav / buy ...): its code in `behavior_vocab` + 1
time_gap  the log-scaled gap to the user's previous event: 1 = first event of the user, then
          2 + floor(log2(1 + seconds)), capped, so that 1 s, 1 min, 1 h, 1 day, 1 week fall in different buckets

The reference article represents each event by its item, its operation type and its operation time;
these codes feed the behaviour and time-gap embeddings of `seqexp.model.recommender.SequenceRecommender`.
"""

from __future__ import annotations

import numpy as np

from seqexp.data.sequences import PreparedData
from seqexp.errors import ConfigError

FEATURES = ("behavior", "time_gap")
MAX_GAP_BUCKET = 33  # 2 + log2(1 + gap) caps at 33: gaps over ~68 years share the last bucket


def feature_sizes(data: PreparedData) -> dict[str, int]:
    """Embedding rows each feature needs (including the padding row 0)."""
    return {"behavior": len(data.behavior_vocab) + 1, "time_gap": MAX_GAP_BUCKET + 1}


def event_features(data: PreparedData, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """{name: (E,) int64 codes} for the requested features; a clear error when the log lacks what one needs."""
    out = {}
    for name in names:
        if name == "behavior":
            if data.behaviors is None:
                raise ConfigError(
                    "model.features includes behavior, but this log has no behaviour column: map one with "
                    "data.columns.behavior=<column>, or drop it from model.features"
                )
            out[name] = data.behaviors.astype(np.int64) + 1
        elif name == "time_gap":
            if data.timestamps is None:
                raise ConfigError(
                    "model.features includes time_gap, but this log has no timestamps: map them with "
                    "data.columns.timestamp=<column>, or drop time_gap from model.features"
                )
            out[name] = time_gap_buckets(data.timestamps, data.offsets)
        else:
            raise ConfigError(f"model.features: unknown feature {name!r}; choose from {list(FEATURES)}")
    return out


def time_gap_buckets(timestamps: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(E,) bucket of the gap between each event and the previous event of the same user."""
    gap = np.diff(timestamps, prepend=timestamps[:1] if len(timestamps) else timestamps)
    buckets = 2 + np.floor(np.log2(1.0 + np.maximum(gap, 0.0))).astype(np.int64)
    buckets = np.minimum(buckets, MAX_GAP_BUCKET)
    buckets[offsets[:-1][offsets[:-1] < len(timestamps)]] = 1  # a user's first event has no previous one
    return buckets


def target_mask(data: PreparedData, target_behaviors: list[str] | None) -> np.ndarray | None:
    """(E,) True at events that may be prediction targets (split.target_behaviors), or None for all."""
    if not target_behaviors:
        return None
    if data.behaviors is None:
        raise ConfigError(
            f"split.target_behaviors={list(target_behaviors)} needs a behaviour column: set data.columns.behavior"
        )
    unknown = set(map(str, target_behaviors)) - set(data.behavior_vocab)
    if unknown:
        raise ConfigError(
            f"split.target_behaviors lists {sorted(unknown)}, which the prepared log does not contain "
            f"(it has {data.behavior_vocab}); check the spelling or data.behaviors"
        )
    codes = [data.behavior_vocab.index(str(b)) for b in target_behaviors]
    return np.isin(data.behaviors, codes)
