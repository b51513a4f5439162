"""The one interface every encoder implements (DESIGN.md, "The encoder interface")."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from seqexp.errors import ConfigError


class SequenceEncoder(nn.Module):
    """(B, L, D) input embeddings -> (B, L, D) hidden states. Knows nothing of items or losses.

    Subclasses set `causal` (True: position t sees only positions <= t) and call
    `super().__init__(hidden_size)`. Inputs are left-padded: `padding_mask` (B, L) is True at real
    events, and the most recent event is at position L - 1. Outputs must be finite everywhere,
    padding positions included.
    """

    causal: ClassVar[bool]

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size  # D: the model sizes its item embeddings to match

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def positions_from_the_end(padding_mask: Tensor, max_positions: int) -> Tensor:
    """(B, L) position ids L-1 .. 0: the most recent event (at L - 1) gets position 0 (SASRec's convention for left
    padding: outputs at real events do not depend on how much padding a batch has). Shared by the encoders."""
    B, L = padding_mask.shape
    _check_length(L, max_positions)
    return torch.arange(L - 1, -1, -1, device=padding_mask.device).expand(B, L)


def positions_from_the_start(padding_mask: Tensor, max_positions: int) -> Tensor:
    """(B, L) position ids 0 .. n-1 over each row's n real events: its oldest event in the window gets position 0
    (BERT's convention, and the RecSys'23 BERT4Rec/SASRec code's with right padding). Padding reads position 0;
    it is masked out of attention anyway. Outputs at real events do not depend on the padding either."""
    _check_length(padding_mask.shape[1], max_positions)
    return (padding_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def _check_length(length: int, max_positions: int) -> None:
    if length > max_positions:
        raise ConfigError(
            f"the encoder was built for {max_positions} positions but got sequences of length {length}; "
            f"build it with max_len >= data.max_len (the YAML sets max_len: ${{data.max_len}})"
        )


POSITIONS = {"from_end": positions_from_the_end, "from_start": positions_from_the_start}


def check_attention_layout(hidden_size: int, num_layers: int, num_heads: int, **dropouts: float) -> None:
    """The settings every self-attention encoder shares, refused in one line naming the key before a layer is built:
    heads that do not divide the width (with the divisors that do), no layers, a dropout outside [0, 1)."""
    if num_heads < 1 or hidden_size % num_heads:
        divisors = [d for d in range(1, min(hidden_size, 16) + 1) if hidden_size % d == 0]
        raise ConfigError(
            f"model.encoder.num_heads={num_heads} must divide the width model.encoder.hidden_size={hidden_size} "
            f"(= model.embedding_dim); use one of {divisors}"
        )
    check_depth_and_dropouts(num_layers, **dropouts)


def check_depth_and_dropouts(num_layers: int, **dropouts: float) -> None:
    """No layers, or a dropout outside [0, 1) (1 zeroes every output: nothing learns), refused naming the key."""
    if num_layers < 1:
        raise ConfigError(f"model.encoder.num_layers={num_layers} must be >= 1")
    for key, p in dropouts.items():
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"model.encoder.{key}={p} must be in [0, 1)")


def positive_number(value: object, key: str, example: str) -> float:
    """model.encoder.<key> as a float > 0 (a whole number too: `initializer_range=1` is 1.0), else one line naming
    it (formerly the HF config's "expected float, got int" or a NaN loss after training started)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(
            f"model.encoder.{key}={value!r} is not a number, e.g. model.encoder.{key}={example}"
        ) from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"model.encoder.{key}={value} must be a positive number, e.g. {example}")
    return number


def whole_at_least(value: object, key: str, least: int, hint: str = "") -> int:
    """model.encoder.<key> as a whole number >= least, else one line naming it (text or 1.5 formerly reached torch)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"model.encoder.{key}={value!r} must be a whole number >= {least}{hint}")
    return value
