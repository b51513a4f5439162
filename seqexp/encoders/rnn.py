"""Recurrent encoders.

LSTMEncoder is the reference article's baseline: a 2-layer LSTM over the embedded behaviour
sequence (Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from seqexp.encoders.base import SequenceEncoder


def _left_to_right(x: Tensor, lengths: Tensor) -> Tensor:
    """Move each row's real events from the end (left padding) to the start (right padding). x: (B, L, D)."""
    L = x.shape[1]
    idx = (torch.arange(L, device=x.device)[None, :] + (L - lengths)[:, None]) % L  # (B, L)
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))


def _right_to_left(x: Tensor, lengths: Tensor) -> Tensor:
    """Inverse of `_left_to_right`: the first `length` positions of each row move back to the end."""
    L = x.shape[1]
    idx = (torch.arange(L, device=x.device)[None, :] + lengths[:, None]) % L  # (B, L)
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))


class LSTMEncoder(SequenceEncoder):
    """Stacked LSTM; the left padding never enters the recurrent state (see `forward`)."""

    causal: ClassVar[bool] = True

    def __init__(self, hidden_size: int = 128, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__(hidden_size)
        self.rnn = nn.LSTM(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        lengths = padding_mask.sum(dim=1)  # (B,)
        # Run on right-padded rows so every sequence starts from the zero state at its first real event;
        # the outputs computed after the last event are garbage and are zeroed by the mask below.
        # (Same outputs as pack_padded_sequence at real positions, at about half its cost on CPU.)
        out, _ = self.rnn(_left_to_right(x, lengths))  # (B, L, D), right-padded
        out = _right_to_left(out, lengths)  # (B, L, D), left-padded again
        return self.dropout(out) * padding_mask[:, :, None]
