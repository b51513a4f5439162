"""Training objectives: how a window of events becomes (inputs, targets), and what an encoder reads
at prediction time. Masking is its own module, outside the encoders (as in Transformers4Rec).

An objective declares which kind of encoder it needs (`causal`); building a model with a wrong pair
fails (see `seqexp.model.recommender.SequenceRecommender`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from seqexp.errors import ConfigError


class NextItemObjective:
    """Next-item prediction at every position: the target at t is the event at t + 1 (causal encoders).

    Training each sequence once with a loss at every position sees the same targets as RecBole's
    one-sample-per-prefix scheme in ~1/L of the forward passes.
    """

    causal: ClassVar[bool] = True

    def training_pair(
        self, windows: Tensor, mask_index: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """windows (B, L + 1) -> inputs (B, L), targets (B, L) with 0 where no loss is taken."""
        inputs = windows[:, :-1]
        targets = windows[:, 1:].masked_fill(inputs == 0, 0)
        return inputs, targets

    def prediction_inputs(self, history: Tensor, mask_index: int) -> Tensor:
        """history (B, L) -> what the encoder reads to score the next item; read at position L - 1."""
        return history

    def feature_inputs(self, features: Tensor, inputs: Tensor, mask_index: int) -> Tensor:
        """Feature windows (B, L + 1) -> the features of the input events (B, L)."""
        return features[:, :-1]

    def prediction_features(self, features: Tensor) -> Tensor:
        """History features (B, L), aligned with prediction_inputs."""
        return features


class MaskedItemObjective:
    """Cloze / masked-item prediction (BERT4Rec, Sun et al., CIKM 2019) for bidirectional encoders.

    Each real event is replaced by [MASK] with probability `mask_prob` and predicted from both sides.
    A share `last_item_prob` of the training rows instead masks only their last event: the exact shape of
    the prediction task (history + [MASK]); its absence is a known cause of under-trained BERT4Rec in
    other libraries (the original code adds such samples too). Rows where no event was drawn mask their
    last event (`mask_last_if_none`), so every row carries a loss; on short histories (Amazon Beauty: ~20%
    of rows at mask_prob 0.2) that is a second, larger source of last-item rows. With `mask_last_if_none=False`
    such rows carry no loss, as in the RecSys'23 BERT4Rec code (Klenitskiy & Vasilev). Prediction appends
    [MASK] after the history (dropping the oldest event when the window is full) and reads the score there.
    """

    causal: ClassVar[bool] = False

    def __init__(self, mask_prob: float = 0.2, last_item_prob: float = 0.1, mask_last_if_none: bool = True) -> None:
        self.mask_prob = _probability("model.objective.mask_prob", mask_prob, "(0, 1)")
        self.last_item_prob = _probability("model.objective.last_item_prob", last_item_prob)
        if not isinstance(mask_last_if_none, bool):  # a command-line `no` arrives as the string "no", which is truthy
            raise ConfigError(f"model.objective.mask_last_if_none={mask_last_if_none!r} must be true or false")
        self.mask_last_if_none = mask_last_if_none

    def training_pair(
        self, windows: Tensor, mask_index: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        seq = windows[:, 1:]  # (B, L): the most recent L events
        real = seq > 0
        draw = torch.rand(seq.shape, generator=generator, device=seq.device)
        masked = (draw < self.mask_prob) & real  # (B, L)
        last_only = torch.rand(seq.shape[0], generator=generator, device=seq.device) < self.last_item_prob
        if self.mask_last_if_none:
            last_only |= ~masked.any(dim=1)  # every row predicts something
        masked[last_only] = False
        masked[last_only, -1] = True  # windows end with a real event
        return seq.masked_fill(masked, mask_index), seq.masked_fill(~masked, 0)

    def no_targets_fix(self) -> str:
        """Why an epoch of this objective can have no loss-bearing position, and the fix (for the loop's error)."""
        return (
            f"model.objective.mask_prob={self.mask_prob:g} masks no position and "
            f"model.objective.last_item_prob={self.last_item_prob:g}, "
            f"model.objective.mask_last_if_none={str(self.mask_last_if_none).lower()} add none; raise "
            "model.objective.mask_prob or set model.objective.last_item_prob>0 (or mask_last_if_none=true)"
        )

    def prediction_inputs(self, history: Tensor, mask_index: int) -> Tensor:
        mask_column = torch.full_like(history[:, :1], mask_index)
        return torch.cat([history[:, 1:], mask_column], dim=1)  # (B, L)

    def feature_inputs(self, features: Tensor, inputs: Tensor, mask_index: int) -> Tensor:
        """A masked event's own behaviour and time would give its identity away: they read 0 (unknown),
        exactly like the appended [MASK] at prediction time."""
        return features[:, 1:].masked_fill(inputs == mask_index, 0)

    def prediction_features(self, features: Tensor) -> Tensor:
        return torch.cat([features[:, 1:], torch.zeros_like(features[:, :1])], dim=1)  # (B, L)


def _probability(key: str, value: Any, interval: str = "[0, 1]") -> float:
    """A number in `interval` ("[0, 1]" or the open "(0, 1)"; not a bool, not a string): else a ConfigError."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    inside = number and (0.0 < value < 1.0 if interval == "(0, 1)" else 0.0 <= value <= 1.0)
    if not inside:
        raise ConfigError(f"{key}={value!r} must be a number in {interval}")
    return float(value)
