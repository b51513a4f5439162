"""Recurrent encoders.

LSTMEncoder is the reference article's baseline: a 2-layer LSTM over the embedded behaviour
sequence (Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997).
GRUEncoder is GRU4Rec (Hidasi et al., ICLR 2016).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from seqexp.model.encoders.base import SequenceEncoder, check_depth_and_dropouts


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


class RecurrentEncoder(SequenceEncoder):
    """A stacked RNN (`rnn_class`); the left padding never enters the recurrent state (see `forward`)."""

    causal: ClassVar[bool] = True
    rnn_class: ClassVar[type[nn.RNNBase]]

    def __init__(self, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        check_depth_and_dropouts(num_layers, dropout=dropout)  # formerly dropout=1 trained nothing, silently
        super().__init__(hidden_size)
        self.rnn = self.rnn_class(
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


class LSTMEncoder(RecurrentEncoder):
    """The reference article's baseline: stacked LSTM layers (defaults: 2 layers of 128)."""

    rnn_class = nn.LSTM

    def __init__(self, hidden_size: int = 128, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__(hidden_size, num_layers, dropout)


class GRUEncoder(RecurrentEncoder):
    """GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks", ICLR 2016) in its
    modern form: a GRU over the whole history, trained with full-softmax cross-entropy at every position
    (as in RecBole's GRU4Rec with CE loss), instead of the paper's session-parallel mini-batches and
    BPR/TOP1 ranking losses over sampled items."""

    rnn_class = nn.GRU

    def __init__(self, hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.3) -> None:
        super().__init__(hidden_size, num_layers, dropout)
