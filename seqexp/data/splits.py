"""Evaluation splits, expressed as ranges into `PreparedData.items` (no copies of the events).

Leave-one-out by user (the default protocol, DESIGN.md): the last event is the test target, the
second-to-last the validation target, everything before trains. Validation inputs are the training
events; test inputs are the training events plus the validation target (never the test target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqexp.data.prepared import PreparedData


@dataclass
class EvalSet:
    """One target per row: predict `targets[r]` from the events `items[history_start[r]:history_end[r]]`."""

    users: np.ndarray  # (M,) user indices
    history_start: np.ndarray  # (M,) int64, inclusive
    history_end: np.ndarray  # (M,) int64, exclusive; everything the model may see for this target
    targets: np.ndarray  # (M,) item indices

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Split:
    train_start: np.ndarray  # (U,) int64: user u trains on items[train_start[u]:train_end[u]]
    train_end: np.ndarray  # (U,) int64
    valid: EvalSet
    test: EvalSet
    name: str  # recorded in results.json

    def train_items(self, data: PreparedData) -> np.ndarray:
        """All training events, flat: what popularity counts and what the model may fit."""
        lengths = self.train_end - self.train_start
        return data.items[ranges_to_index(self.train_start, lengths)]

    def item_counts(self, data: PreparedData) -> np.ndarray:
        """(N + 1,) training events per item index; 0 at padding."""
        return np.bincount(self.train_items(data), minlength=data.n_items + 1)


def leave_one_out(data: PreparedData) -> Split:
    start, end = data.offsets[:-1], data.offsets[1:]
    if np.any(end - start < 3):
        raise ValueError("leave-one-out needs >= 3 events per user; data.min_seq_len must be >= 3")
    users = np.arange(data.n_users)
    valid = EvalSet(users, start.copy(), end - 2, data.items[end - 2])
    test = EvalSet(users, start.copy(), end - 1, data.items[end - 1])
    return Split(train_start=start.copy(), train_end=end - 2, valid=valid, test=test, name="leave_one_out")


def ranges_to_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate the index ranges [starts[i], starts[i] + lengths[i]) without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    row_offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + (np.arange(total) - row_offsets)
