"""Non-learned baselines evaluated under the same protocol as every model."""

from __future__ import annotations

from torch import Tensor


class PopularityScorer:
    """Most-popular ranking: an item's score is its number of training events (ties broken by expectation)."""

    def __init__(self, item_counts: Tensor) -> None:
        self.counts = item_counts.float()  # (N + 1,) training events per item; 0 at padding

    def __call__(self, inputs: Tensor, features: dict[str, Tensor] | None = None) -> Tensor:
        return self.counts.to(inputs.device).expand(inputs.shape[0], -1).clone()  # (B, N + 1)
