"""Fixed-length, left-padded tensors built once per split; a batch is an index slice of them.

Left padding keeps every user's most recent event at position L - 1, so that the prediction for a
history is always read from the last position. Histories longer than `max_len` keep their most
recent `max_len` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from seqexp.data.sequences import PreparedData
from seqexp.data.splits import EvalSet, Split, ranges_to_index


def left_padded_windows(flat: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """(M, length) int64: the last `length` values of each range flat[starts[r]:ends[r]], padded with 0 on the left."""
    idx = ends[:, None] - length + np.arange(length)[None, :]  # (M, length) absolute positions
    valid = idx >= starts[:, None]
    return np.where(valid, flat[np.clip(idx, 0, max(len(flat) - 1, 0))], 0).astype(np.int64)


@dataclass
class TrainTensors:
    """Training windows of max_len + 1 events: an objective turns each into (inputs, targets)."""

    windows: torch.Tensor  # (M, L + 1) item indices, 0 = padding
    n_targets: int  # positions that carry a next-item target (for throughput figures)
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (M, L + 1) codes, 0 = padding
    is_target: torch.Tensor | None = None  # (M, L + 1) bool: events that may carry a loss (split.target_behaviors)

    def __len__(self) -> int:
        return self.windows.shape[0]


@dataclass
class EvalTensors:
    users: torch.Tensor  # (M,) user indices
    inputs: torch.Tensor  # (M, L) history windows
    targets: torch.Tensor  # (M,) item indices
    seen_offsets: torch.Tensor  # (M + 1,) CSR offsets into seen_items
    seen_items: torch.Tensor  # (S,) every item of each row's full history (for eval.filter_seen)
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (M, L) codes of the history events

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def slice(self, i: int, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows i..j: (inputs (B, L), targets (B,), seen_rows (S_b,), seen_cols (S_b,)) with rows in 0..B-1."""
        a, b = int(self.seen_offsets[i]), int(self.seen_offsets[j])
        lengths = self.seen_offsets[i + 1 : j + 1] - self.seen_offsets[i:j]
        rows = torch.repeat_interleave(torch.arange(j - i), lengths)
        return self.inputs[i:j], self.targets[i:j], rows, self.seen_items[a:b]

    def rows(self, i: int, j: int) -> EvalTensors:
        """Rows i..j as their own EvalTensors (one rank's shard)."""
        a, b = int(self.seen_offsets[i]), int(self.seen_offsets[j])
        return EvalTensors(
            users=self.users[i:j],
            inputs=self.inputs[i:j],
            targets=self.targets[i:j],
            seen_offsets=self.seen_offsets[i : j + 1] - a,
            seen_items=self.seen_items[a:b],
            features=self.feature_slice(i, j),
        )

    def feature_slice(self, i: int, j: int) -> dict[str, torch.Tensor]:
        return {name: f[i:j] for name, f in self.features.items()}


def train_tensors(
    data: PreparedData,
    split: Split,
    max_len: int,
    stride: int | None = None,
    features: dict[str, np.ndarray] | None = None,
    is_target: np.ndarray | None = None,
) -> TrainTensors:
    """One window per user (the most recent max_len + 1 training events), or, with `stride`, also windows
    ending `stride`, 2 * `stride`, ... events earlier until the user's first event is covered.
    `features`: {name: (E,) codes} windowed alongside the items; `is_target`: (E,) bool, see TrainTensors."""
    starts, ends = split.train_start, split.train_end
    if stride:
        n = ends - starts
        extra = np.maximum(0, -(-(n - (max_len + 1)) // stride))  # ceil((n - L - 1) / stride), >= 0
        reps = 1 + extra
        back = ranges_to_index(np.zeros(len(reps), dtype=np.int64), reps) * stride  # 0, S, 2S, ... per user
        starts, ends = np.repeat(starts, reps), np.repeat(ends, reps) - back
    windows = left_padded_windows(data.items, starts, ends, max_len + 1)
    n_real = (windows > 0).sum(axis=1)
    keep = n_real >= 2  # a window needs an input and a target
    side = {
        k: torch.from_numpy(left_padded_windows(v, starts, ends, max_len + 1)[keep])
        for k, v in (features or {}).items()
    }
    target = None
    if is_target is not None:
        target = torch.from_numpy(left_padded_windows(is_target.astype(np.int64), starts, ends, max_len + 1)[keep] > 0)
    n_targets = int(target[:, 1:].sum()) if target is not None else int(np.maximum(n_real - 1, 0).sum())
    return TrainTensors(torch.from_numpy(windows[keep]), n_targets, side, target)


def eval_tensors(
    data: PreparedData, eval_set: EvalSet, max_len: int, features: dict[str, np.ndarray] | None = None
) -> EvalTensors:
    inputs = left_padded_windows(data.items, eval_set.history_start, eval_set.history_end, max_len)
    side = {
        k: torch.from_numpy(left_padded_windows(v, eval_set.history_start, eval_set.history_end, max_len))
        for k, v in (features or {}).items()
    }
    lengths = eval_set.history_end - eval_set.history_start
    seen = data.items[ranges_to_index(eval_set.history_start, lengths)]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EvalTensors(
        users=torch.from_numpy(eval_set.users.astype(np.int64)),
        inputs=torch.from_numpy(inputs),
        targets=torch.from_numpy(eval_set.targets.astype(np.int64)),
        seen_offsets=torch.from_numpy(offsets),
        seen_items=torch.from_numpy(seen.astype(np.int64)),
        features=side,
    )
