"""The recommender around an encoder: item embeddings -> encoder -> tied output head.

    inputs (B, L) item indices, 0 = padding
      -> E[inputs] (+ behaviour and time-gap embeddings, model.features) (B, L, D) -> dropout
      -> encoder -> h (B, L, D)
      -> scores = h @ E[:N + 1]^T (B, L, N + 1)

The item table E has N + 2 rows: 0 = padding, 1..N = items, N + 1 = [MASK] (for cloze objectives).
Tying the output head to E is what SASRec and BERT4Rec do; it is used for every encoder here so that
comparisons differ only in the encoder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from seqexp.errors import ConfigError
from seqexp.model.encoder_checks import check_encoder_contract
from seqexp.model.encoders.base import SequenceEncoder
from seqexp.model.instantiate import as_trained, instantiate_part
from seqexp.model.loss_choice import built_config
from seqexp.model.losses import FullSoftmax
from seqexp.model.sparse_items import enable_sparse_items, loss_table


class SequenceRecommender(nn.Module):
    def __init__(
        self,
        n_items: int,
        encoder: SequenceEncoder,
        objective: Any,
        loss: nn.Module | None = None,
        embedding_dropout: float = 0.0,
        init_std: float = 0.02,
        item_counts: Tensor | None = None,
        feature_sizes: dict[str, int] | None = None,
        scale_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, SequenceEncoder):
            raise ConfigError(
                f"model.encoder built {type(encoder).__name__}, which is not a SequenceEncoder; "
                f"subclass seqexp.model.encoders.SequenceEncoder"
            )
        if getattr(objective, "causal", None) != encoder.causal:
            kind = "causal" if encoder.causal else "bidirectional"
            raise ConfigError(
                f"model.objective {type(objective).__name__} needs a "
                f"{'causal' if objective.causal else 'bidirectional'} encoder, but {type(encoder).__name__} is "
                f"{kind}; pick the objective that matches model.encoder (next-item for causal, masked-item "
                f"for bidirectional)"
            )
        self.n_items = n_items
        self.mask_index = n_items + 1
        self.encoder = encoder
        self.objective = objective
        self.loss = loss if loss is not None else FullSoftmax()
        self.loss.bind(n_items, item_counts)
        self.item_embedding = nn.Embedding(n_items + 2, encoder.hidden_size, padding_idx=0)
        nn.init.normal_(self.item_embedding.weight, std=init_std)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        # the encoder's input (item + feature embeddings) x sqrt(D) (Vaswani et al. 2017; SASRec's reference code and
        # the RecSys'23 SASRec+ code): the item identity outweighs the learned positions from the first step; the
        # output item table stays unscaled
        self.input_scale = float(encoder.hidden_size) ** 0.5 if scale_embeddings else 1.0
        # per-event side features (operation type, time gap): one table each, row 0 = padding / unknown
        self.feature_embeddings = nn.ModuleDict(
            {
                name: nn.Embedding(rows, encoder.hidden_size, padding_idx=0)
                for name, rows in (feature_sizes or {}).items()
            }
        )
        for table in self.feature_embeddings.values():
            nn.init.normal_(table.weight, std=init_std)
            with torch.no_grad():
                table.weight[0].zero_()
        self.text_projection: nn.Linear | None = None  # set by attach_text (model.item_init=text, side mode)
        self.register_buffer("item_text", None)  # (N + 2, H) frozen text vectors of the items
        self.register_buffer("candidates", None)  # (N + 1,) bool: items a training loss may predict (None: all)
        if self.feature_embeddings and not hasattr(objective, "feature_inputs"):
            raise ConfigError(
                f"model.features needs an objective with feature_inputs/prediction_features; "
                f"{type(objective).__name__} has none"
            )

    @property
    def features(self) -> list[str]:
        return list(self.feature_embeddings)

    def attach_text(self, text_vectors: Tensor, scale: float = 1.0) -> None:
        """Item text as an additive side feature: E'[i] = E[i] + W t_i for every lookup and for the output head,
        so that an item never seen in training is still scored through its text (cold start). With unit-norm
        t_i, W ~ N(0, scale^2) gives W t_i the per-dimension scale of the item table."""
        if self.item_embedding.sparse:
            raise ConfigError(
                "model.item_init=text (side mode) cannot be combined with model.sparse_items=true: the text "
                "projection touches every item row; set model.sparse_items=false or pretrained.text.mode=init"
            )
        self.item_text = text_vectors.float()  # (N + 2, H); rows 0 (padding) and N + 1 ([MASK]) are zero
        self.text_projection = nn.Linear(text_vectors.shape[1], self.encoder.hidden_size, bias=False)
        nn.init.normal_(self.text_projection.weight, std=scale)

    def item_vectors(self) -> Tensor:
        """(N + 2, D): the item table, plus the projected text when attached."""
        if self.text_projection is None:
            return self.item_embedding.weight
        return self.item_embedding.weight + self.text_projection(self.item_text)

    def encode(self, inputs: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        """inputs (B, L), features {name: (B, L) codes} -> hidden states (B, L, D)."""
        if self.text_projection is None:
            x = self.item_embedding(inputs)  # (B, L, D)
        else:
            x = self.item_vectors()[inputs]  # (B, L, D)
        for name, table in self.feature_embeddings.items():
            if features is not None and name in features:  # absent (e.g. a bare item history): unknown = row 0
                x = x + table(features[name])
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return self.encoder(self.embedding_dropout(x), inputs != 0)

    def item_table(self) -> Tensor:
        """(N + 1, D): padding row and real items; the [MASK] row is never a candidate."""
        return self.item_vectors()[: self.n_items + 1]

    def forward(self, inputs: Tensor, targets: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        """Training loss at every position that carries a target (model.loss: full or sampled softmax)."""
        h = self.encode(inputs, features)  # (B, L, D)
        selected = targets > 0  # (B, L)
        if not bool(selected.any()):  # e.g. a batch without any target behaviour: no loss, no NaN
            return h.sum() * 0.0
        table = loss_table(self)  # item_table(), or the whole sparse weight (model.sparse_items)
        if self.candidates is not None:  # items without training events are not pushed down as negatives
            return self.loss(h[selected], targets[selected], table, self.candidates)
        return self.loss(h[selected], targets[selected], table)  # h[selected]: (P, D)

    @torch.no_grad()
    def user_states(self, history: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        """history (B, L) left-padded (+ its features {name: (B, L)}) -> (B, D): the state the next item is
        scored with. The one prediction path: evaluation (`score`), `seqexp-recommend` and `seqexp-export`
        all read it, so that serving computes exactly what the test evaluation computed."""
        keep = trimmed_width(history)
        history = history[:, -keep:]
        features = {k: v[:, -keep:] for k, v in features.items()} if features else features
        inputs = self.objective.prediction_inputs(history, self.mask_index)
        if features and self.feature_embeddings:
            features = {k: self.objective.prediction_features(v) for k, v in features.items()}
        return self.encode(inputs, features)[:, -1]  # (B, D)

    @torch.no_grad()
    def score(self, history: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        """history (B, L) left-padded (+ its features) -> scores over all items (B, N + 1); column 0 is padding."""
        return self.user_states(history, features) @ self.item_table().T

    def training_batch(
        self,
        windows: Tensor,
        features: dict[str, Tensor] | None = None,
        is_target: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """windows (B, L + 1) (+ feature windows, target mask) -> inputs (B, L), targets (B, L), feature inputs.
        Position j's target is always window event j + 1, whatever the objective; `is_target` drops the rest."""
        inputs, targets = self.objective.training_pair(windows, self.mask_index, generator)
        if is_target is not None:
            targets = targets.masked_fill(~is_target[:, 1:], 0)
        side = {}
        if features and self.feature_embeddings:
            side = {k: self.objective.feature_inputs(features[k], inputs, self.mask_index) for k in self.features}
        return inputs, targets, side


def trimmed_width(x: Tensor) -> int:
    """Columns of a left-padded batch worth computing: the longest row's real events plus one padding column
    (so that a cloze model's appended [MASK] never pushes out a real event). Leading columns that are padding
    in every row change no output (tested: left padding never does), only the cost: on short-history data
    (Amazon Beauty: 8.8 events on average, windows of 51) they are most of the work."""
    return columns_to_keep(x.shape[1], int((x != 0).sum(dim=1).max()) if x.numel() else 0)


def columns_to_keep(width: int, longest: int) -> int:
    return min(width, longest + 1)


def build_model(
    model_cfg: Any,
    n_items: int,
    item_counts: Tensor | None = None,
    feature_sizes: dict[str, int] | None = None,
) -> SequenceRecommender:
    """Instantiate `model.encoder`, `model.objective` (and `model.loss`) through their `_target_` and wrap them.
    `item_counts` (N + 1,) training counts feed popularity-sampled losses; `feature_sizes` {name: rows} the
    embedding tables of `model.features`."""
    for key in ("encoder", "objective"):
        if key not in model_cfg or "_target_" not in model_cfg[key]:
            raise ConfigError(f"model.{key}._target_ is not set: name the class to build (see conf/model/lstm.yaml)")
    encoder = instantiate_part(model_cfg, "encoder")
    check_encoder_contract(encoder, model_cfg.get("embedding_dim"))
    objective = instantiate_part(model_cfg, "objective")
    loss = instantiate_part(model_cfg, "loss") if model_cfg.get("loss") else None
    scale_embeddings = model_cfg.get("scale_embeddings", False)
    if not isinstance(scale_embeddings, bool):  # a command-line `no` is the string "no", which bool() reads as True
        raise ConfigError(f"model.scale_embeddings={scale_embeddings!r} must be true or false")
    model = SequenceRecommender(
        n_items,
        encoder,
        objective,
        loss=loss,
        item_counts=item_counts,
        embedding_dropout=float(model_cfg.get("embedding_dropout", 0.0)),
        init_std=float(model_cfg.get("init_std", 0.02)),
        feature_sizes=feature_sizes,
        scale_embeddings=scale_embeddings,
    )
    if model_cfg.get("sparse_items", False):  # row-wise updates of the item table (large catalogues)
        enable_sparse_items(model)
    return model


def restore_model(ckpt: dict[str, Any]) -> SequenceRecommender:
    """A trained model from a checkpoint written by `seqexp-train` (weights, config and serving info)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(ckpt["config"])
    state = ckpt["state_dict"]
    n_items = int(ckpt["n_items"])  # built as training built it: with the loss model.loss_auto chose, if it did
    model_cfg, _ = built_config(as_trained(cfg.model), n_items)
    model = build_model(model_cfg, n_items, feature_sizes=ckpt.get("feature_sizes"))
    if state.get("item_text") is not None:  # model.item_init=text (side mode)
        model.attach_text(state["item_text"])
    if state.get("candidates") is not None:
        model.candidates = state["candidates"]
    model.load_state_dict(state)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
