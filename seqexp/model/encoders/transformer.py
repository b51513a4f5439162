"""Self-attention encoders on HuggingFace `transformers` backbones, built from their config classes
(never downloaded): the item embeddings come from the model, the backbone receives `inputs_embeds`.

Positions are counted from the most recent event by default (position 0 = the last event), as the original
SASRec effectively does by left-padding every sequence to `max_len`; `positions="from_start"` counts them from the
oldest event in the window instead (BERT's convention). Either way the outputs at real events do not depend on how
much left padding a batch has.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model
from transformers.activations import ACT2FN

from seqexp.errors import ConfigError
from seqexp.model.encoders.base import (
    POSITIONS,
    SequenceEncoder,
    check_attention_layout,
    positive_number,
    whole_at_least,
)


class BackboneEncoder(SequenceEncoder):
    """Runs a HuggingFace backbone on `inputs_embeds` with the padding mask and learned positions counted
    `from_end` (the most recent event = 0) or `from_start` (the oldest event in the window = 0)."""

    def __init__(self, hidden_size: int, max_len: int, backbone: nn.Module, positions: str = "from_end") -> None:
        super().__init__(hidden_size)
        if positions not in POSITIONS:
            raise ConfigError(
                f"model.encoder.positions={positions!r} is not one of {sorted(POSITIONS)}; "
                "from_end counts from the most recent event, from_start from the oldest one in the window"
            )
        self.max_len = max_len
        self.position_ids = POSITIONS[positions]
        self.backbone = backbone
        # items are embedded outside: the backbone's own (1-row) token table is never read; frozen, so that DDP
        # does not wait for a gradient it will never get
        backbone.get_input_embeddings().weight.requires_grad_(False)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        out = self.backbone(
            inputs_embeds=x,  # (B, L, D)
            attention_mask=padding_mask.long(),
            position_ids=self.position_ids(padding_mask, self.max_len),  # (B, L)
        ).last_hidden_state  # (B, L, D)
        return out * padding_mask[:, :, None]  # padded queries attend to nothing real: zero them


class SASRecEncoder(BackboneEncoder):
    """SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018): causal self-attention
    blocks with learned positions, on a GPT-2 backbone (pre-LayerNorm blocks, causal mask).

    Trained here with full-softmax cross-entropy at every position, the SASRec+ variant that Klenitskiy &
    Vasilev ("Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023) show
    beats both the original binary-cross-entropy SASRec and BERT4Rec.
    """

    causal: ClassVar[bool] = True

    def __init__(
        self,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 1,
        inner_size: int | None = None,
        dropout: float = 0.2,
        attention_dropout: float = 0.2,
        max_len: int = 50,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        positions: str = "from_end",
    ) -> None:
        check_layout(hidden_size, num_layers, num_heads, dropout, attention_dropout, activation)
        if inner_size is not None:
            whole_at_least(inner_size, "inner_size", 1, " (null keeps the width model.embedding_dim)")
        layer_norm_eps, initializer_range = checked_numbers(layer_norm_eps, initializer_range)
        config = GPT2Config(
            vocab_size=1,  # items are embedded outside: the backbone only sees inputs_embeds
            n_positions=max_len,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=hidden_size if inner_size is None else inner_size,  # SASRec's point-wise feed-forward: width d
            activation_function=activation,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=attention_dropout,
            layer_norm_epsilon=layer_norm_eps,
            initializer_range=initializer_range,
            scale_attn_weights=True,
            use_cache=False,
            add_cross_attention=False,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        super().__init__(hidden_size, max_len, GPT2Model(config), positions)


class BERT4RecEncoder(BackboneEncoder):
    """BERT4Rec (Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
    Representations from Transformer", CIKM 2019): a bidirectional Transformer encoder on `BertModel`,
    trained with the cloze (masked-item) objective."""

    causal: ClassVar[bool] = False

    def __init__(
        self,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        intermediate_size: int = 256,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        max_len: int = 50,
        activation: str = "gelu",
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        positions: str = "from_end",
    ) -> None:
        check_layout(hidden_size, num_layers, num_heads, dropout, attention_dropout, activation)
        whole_at_least(intermediate_size, "intermediate_size", 1)
        layer_norm_eps, initializer_range = checked_numbers(layer_norm_eps, initializer_range)
        config = BertConfig(
            vocab_size=1,  # items are embedded outside: the backbone only sees inputs_embeds
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=intermediate_size,
            hidden_act=activation,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=attention_dropout,
            max_position_embeddings=max_len,
            type_vocab_size=1,
            initializer_range=initializer_range,
            layer_norm_eps=layer_norm_eps,
            is_decoder=False,
            add_cross_attention=False,
            use_cache=False,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
        )
        super().__init__(hidden_size, max_len, BertModel(config, add_pooling_layer=False), positions)


def checked_numbers(layer_norm_eps: object, initializer_range: object) -> tuple[float, float]:
    """Both as positive floats (the HF configs take no int: `initializer_range=1` was a StrictDataclass traceback)."""
    return (
        positive_number(layer_norm_eps, "layer_norm_eps", "1e-6"),
        positive_number(initializer_range, "initializer_range", "0.02"),
    )


def check_layout(
    hidden_size: int, num_layers: int, num_heads: int, dropout: float, attention_dropout: float, activation: str
) -> None:
    """One line naming the key, before the HF backbone raises from deep inside its config."""
    check_attention_layout(hidden_size, num_layers, num_heads, dropout=dropout, attention_dropout=attention_dropout)
    if activation not in ACT2FN:
        raise ConfigError(
            f"model.encoder.activation={activation!r} is not an activation of transformers; use one of "
            f"{sorted(ACT2FN)} (e.g. gelu, relu)"
        )
