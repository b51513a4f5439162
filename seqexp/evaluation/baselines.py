"""Non-learned baselines evaluated under the same protocol as every model."""

from __future__ import annotations

import torch
from torch import Tensor


class PopularityScorer:
    """Most-popular ranking: an item's score is its number of training events (ties broken by expectation).

    Factored like a model (`user_states` @ `item_table().T`: a 1 per user times the counts, the same float
    scores) so that eval.item_chunk ranks it in chunks too."""

    def __init__(self, item_counts: Tensor) -> None:
        self.counts = item_counts.float()  # (N + 1,) training events per item; 0 at padding

    def __call__(self, inputs: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        return self.counts.to(inputs.device).expand(inputs.shape[0], -1).clone()  # (B, N + 1)

    def user_states(self, inputs: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        return torch.ones(inputs.shape[0], 1, device=inputs.device)  # (B, 1)

    def item_table(self) -> Tensor:
        return self.counts[:, None]  # (N + 1, 1)

    def user_independent_scores(self) -> Tensor:
        """(N + 1,) the same for every user: with eval.item_chunk it is ranked without a users x items matrix
        (seqexp.evaluation.shared_scores)."""
        return self.counts
