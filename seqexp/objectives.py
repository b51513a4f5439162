"""Training objectives: how a window of events becomes (inputs, targets).

An objective declares which kind of encoder it needs (`causal`); building a model with a wrong
pair fails (see `seqexp.model.SequenceRecommender`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor


class NextItemObjective:
    """Next-item prediction at every position: the target at t is the event at t + 1 (causal encoders).

    Training each sequence once with a loss at every position sees the same targets as RecBole's
    one-sample-per-prefix scheme in ~1/L of the forward passes.
    """

    causal: ClassVar[bool] = True

    def training_pair(self, windows: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """windows (B, L + 1) -> inputs (B, L), targets (B, L) with 0 where no loss is taken."""
        inputs = windows[:, :-1]
        targets = windows[:, 1:].masked_fill(inputs == 0, 0)
        return inputs, targets

    def prediction_inputs(self, history: Tensor) -> Tensor:
        """history (B, L) -> what the encoder reads to score the next item; read at position L - 1."""
        return history
