"""Losses over the catalogue, computed at the positions an objective selected.

Each takes hidden states h (P, D), targets (P,), the item table E (N + 1, D; row 0 = padding) and optionally
`candidates` (N + 1,) bool: the items a prediction may name (items without training events are left out when
their vectors come from text, so that training does not push never-seen items down).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FullSoftmax(nn.Module):
    """Cross-entropy over every item of the catalogue (the default; exact, and cheap below ~100k items)."""

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        pass

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        logits = h @ item_table.T  # (P, N + 1)
        logits[:, 0] = float("-inf")  # never predict padding
        if candidates is not None:
            logits = logits.masked_fill(~candidates[None, :], float("-inf"))
        return F.cross_entropy(logits.float(), targets)


class SampledSoftmax(nn.Module):
    """Sampled softmax for catalogues too large for a full softmax (Jean et al., "On Using Very Large Target
    Vocabulary for Neural Machine Translation", ACL 2015): the target competes with `num_negatives` items
    drawn once per batch, uniformly or by training popularity. With `logq_correction`, every candidate's
    logit is lowered by log(num_negatives * q(item)), which removes the sampling bias towards popular items
    (Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations", RecSys 2019).
    Negatives that happen to equal a row's target are ignored for that row.
    """

    def __init__(self, num_negatives: int = 1000, distribution: str = "uniform", logq_correction: bool = True) -> None:
        super().__init__()
        if distribution not in ("uniform", "popularity"):
            raise ValueError(f"model.loss.distribution={distribution!r}: use uniform or popularity")
        self.num_negatives = num_negatives
        self.distribution = distribution
        self.logq_correction = logq_correction
        self.register_buffer("probs", torch.zeros(0), persistent=False)  # (N + 1,), 0 at padding

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        """Set the sampling distribution once the catalogue (and, for popularity, the training counts) is known."""
        if self.distribution == "popularity":
            if item_counts is None:  # e.g. a model rebuilt for inference: no training, no sampling
                return
            probs = item_counts.double().clamp(min=0) + 1.0  # +1: every item can be drawn
        else:
            probs = torch.ones(n_items + 1, dtype=torch.float64)
        probs[0] = 0.0
        self.probs = (probs / probs.sum()).float()

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        if self.probs.numel() != item_table.shape[0]:
            raise RuntimeError("SampledSoftmax has no sampling distribution: build the model with item_counts")
        negatives = torch.multinomial(self.probs, self.num_negatives, replacement=True)  # (K,)
        pos = (h * item_table[targets]).sum(dim=-1, keepdim=True)  # (P, 1)
        neg = h @ item_table[negatives].T  # (P, K)
        if self.logq_correction:
            log_kq = torch.log(self.probs * self.num_negatives)
            pos = pos - log_kq[targets][:, None]
            neg = neg - log_kq[negatives][None, :]
        neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))  # accidental hits
        if candidates is not None:
            neg = neg.masked_fill(~candidates[negatives][None, :], float("-inf"))
        logits = torch.cat([pos, neg], dim=1).float()  # the target is class 0
        return F.cross_entropy(logits, torch.zeros_like(targets))
