"""eSASRec: SASRec's next-item objective on LiGR Transformer layers, trained with a sampled softmax.

Tikhonovich, Zelinskiy, Petrov, Spirina, Semenov, Savchenko, Kuliev, "eSASRec: Enhancing Transformer-based
Recommendations in a Modular Fashion", RecSys 2025 (arXiv 2508.06450): of the modular changes to SASRec they
benchmark, the best combination keeps SASRec's causal next-item objective, replaces the Transformer layers by
LiGR layers and the loss by a sampled softmax (`conf/model/esasrec.yaml`; its loss is
`conf/model/loss/sampled_per_position.yaml`).

LiGR layers come from Borisyuk et al., "From Features to Transformers: Redefining Ranking for Scalable
Impact" (LinkedIn, arXiv 2502.03417): a pre-LayerNorm block whose two residual branches are each scaled by a
learned sigmoid gate read from the un-normalised residual stream,

    h' = h  + sigmoid(h  G1 + g1) * Dropout(MHA(LN1(h)))                       (attention, causal here)
    out = h' + sigmoid(h' G2 + g2) * Dropout(W2 Dropout(SiLU(W1 LN2(h')) * (W3 LN2(h'))))   (SwiGLU FFN)

written after the authors' own implementation (RecTools `LiGRLayer`, `SwigluFeedForward`, the code the
eSASRec paper's benchmark runs): gates are D x D linear maps with bias, the SwiGLU feed-forward has width
`ff_multiplier * D` and no biases, attention projections have biases, no final LayerNorm after the last layer
(`final_norm=True` adds one, as SASRec's last block),
learned position embeddings counted from the most recent event added to the input, then dropout, and
Xavier-normal initialisation of every weight matrix (`initializer_range=0.02` draws them from N(0, 0.02)
instead, BERT's and GPT-2's `initializer_range`: Xavier gives std 0.08-0.13 at D = 64). The class defaults keep the
authors' layers; the `model=esasrec` card turns on both the final norm and N(0, 0.02), chosen by their rank across
four logs (benchmarks/results/defaults_rank.md).

Deviations, and why:
- Padded queries: RecTools lets every query attend to itself besides the causal and padding masks, which
  keeps left-padded rows (no real key at all) finite; the same is done here, and padded outputs are then
  zeroed, as for the other seqexp encoders. Real positions never see padding, so nothing real changes.
- The item table and its initialisation belong to `SequenceRecommender` (seqexp's N(0, init_std) for every
  encoder, so comparisons differ only in the encoder); RecTools Xavier-initialises it too.
- The loss (YAML): `SampledSoftmax(per_position=true)` draws 256 uniform negatives for every position, as
  RecTools does. A draw shared by the whole batch is cheaper but weaker: on ml-100k (1,682 items) this card with
  shared negatives reached valid NDCG@10 0.050 after 8 epochs where the same encoder with the full softmax
  reached 0.090.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqexp.errors import ConfigError
from seqexp.model.encoders.base import (
    SequenceEncoder,
    check_attention_layout,
    positions_from_the_end,
    positive_number,
    whole_at_least,
)


class SwiGLUFeedForward(nn.Module):
    """SwiGLU feed-forward (Shazeer, "GLU Variants Improve Transformer", 2020), as in LiGR:
    W2 Dropout(SiLU(W1 x) * W3 x), inner width `inner_size`."""

    def __init__(self, hidden_size: int, inner_size: int, dropout: float, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, inner_size, bias=bias)  # W1: through SiLU
        self.up_proj = nn.Linear(hidden_size, inner_size, bias=bias)  # W3: the linear half
        self.down_proj = nn.Linear(inner_size, hidden_size, bias=bias)  # W2
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.dropout(F.silu(self.gate_proj(x)) * self.up_proj(x)))  # (B, L, D)


class CausalSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention under a boolean (B, 1, L, L) mask (True = may attend),
    on `F.scaled_dot_product_attention`; the same parameters as `nn.MultiheadAttention` (q, k, v, out
    projections with bias)."""

    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.attention_dropout = attention_dropout
        nn.init.zeros_(self.qkv.bias)  # as nn.MultiheadAttention
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # (B, H, L, d)
        p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)  # (B, H, L, d)
        return self.out(y.transpose(1, 2).reshape(B, L, D))  # (B, L, D)


class LiGRLayer(nn.Module):
    """One LiGR layer (Borisyuk et al., arXiv 2502.03417; module docstring): pre-LN attention and SwiGLU
    branches, each added through a sigmoid gate read from the un-normalised input of its branch."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        ff_multiplier: int,
        dropout: float,
        attention_dropout: float,
        layer_norm_eps: float = 1e-5,
        ff_bias: bool = False,
    ) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attention = CausalSelfAttention(hidden_size, num_heads, attention_dropout)
        self.attn_gate = nn.Linear(hidden_size, hidden_size)  # G1, g1
        self.attn_dropout = nn.Dropout(dropout)
        self.ff_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.feed_forward = SwiGLUFeedForward(hidden_size, ff_multiplier * hidden_size, dropout, ff_bias)
        self.ff_gate = nn.Linear(hidden_size, hidden_size)  # G2, g2
        self.ff_dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, allowed: Tensor) -> Tensor:
        """h (B, L, D), allowed (B, 1, L, L) bool -> (B, L, D)."""
        attn = self.attention(self.attn_norm(h), allowed)
        h = h + torch.sigmoid(self.attn_gate(h)) * self.attn_dropout(attn)
        ff = self.feed_forward(self.ff_norm(h))
        return h + torch.sigmoid(self.ff_gate(h)) * self.ff_dropout(ff)


def attention_mask(padding_mask: Tensor) -> Tensor:
    """(B, L) True at real events -> (B, 1, L, L) True where query t may read key s: s <= t and s is real,
    and always s = t, so that a padded query (no real key before it) still has one key and stays finite."""
    L = padding_mask.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=padding_mask.device).tril()  # (L, L)
    eye = torch.eye(L, dtype=torch.bool, device=padding_mask.device)
    return ((causal & padding_mask[:, None, :]) | eye)[:, None]  # (B, 1, L, L)


class ESASRecEncoder(SequenceEncoder):
    """eSASRec's encoder (Tikhonovich et al., RecSys 2025): learned positions from the end + dropout, then
    `num_layers` causal LiGR layers (module docstring). Outputs at padded positions are zero."""

    causal: ClassVar[bool] = True

    def __init__(
        self,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 1,
        ff_multiplier: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        max_len: int = 50,
        layer_norm_eps: float = 1e-5,
        ff_bias: bool = False,
        final_norm: bool = False,
        initializer_range: float | None = None,
    ) -> None:
        _check(hidden_size, num_layers, num_heads, ff_multiplier, dropout, attention_dropout, init=initializer_range)
        layer_norm_eps = positive_number(layer_norm_eps, "layer_norm_eps", "1e-5")  # < 0 formerly a NaN loss
        super().__init__(hidden_size)
        self.max_len = max_len
        self.position_embedding = nn.Embedding(max_len, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            LiGRLayer(hidden_size, num_heads, ff_multiplier, dropout, attention_dropout, layer_norm_eps, ff_bias)
            for _ in range(num_layers)
        )
        # optional LayerNorm on the output (GPT-2 / SASRec's last LayerNorm; RecTools' LiGR stack has none)
        self.final_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if final_norm else nn.Identity()
        for p in self.parameters():  # every weight matrix; biases as built
            if p.dim() < 2:
                continue
            if initializer_range is None:  # RecTools: Xavier-normal
                nn.init.xavier_normal_(p)
            else:  # GPT-2 / BERT: N(0, initializer_range)
                nn.init.normal_(p, std=initializer_range)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        """x (B, L, D), padding_mask (B, L) True at real events (left padding) -> (B, L, D)."""
        h = self.dropout(x + self.position_embedding(positions_from_the_end(padding_mask, self.max_len)))
        allowed = attention_mask(padding_mask)  # (B, 1, L, L)
        for layer in self.layers:
            h = layer(h, allowed)
        return self.final_norm(h) * padding_mask[:, :, None]  # padded queries read only themselves: zero them


def _check(
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    ff_multiplier: int,
    dropout: float,
    attention_dropout: float,
    init: float | None,
) -> None:
    """One clear error per impossible setting, naming the key: the shared attention checks, then eSASRec's own."""
    check_attention_layout(hidden_size, num_layers, num_heads, dropout=dropout, attention_dropout=attention_dropout)
    whole_at_least(ff_multiplier, "ff_multiplier", 1)
    if init is not None:
        try:
            positive_number(init, "initializer_range", "0.02")
        except ConfigError as e:
            raise ConfigError(f"{e} (a std), or null for Xavier-normal") from None
