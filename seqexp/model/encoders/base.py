"""The one interface every encoder implements (DESIGN.md, "The encoder interface")."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


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
