"""Non-learned baselines evaluated under the same protocol as every model."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class PopularityScorer:
    """Most-popular ranking: an item's score is its number of training events (ties broken by expectation)."""

    def __init__(self, train_items: np.ndarray, n_items: int) -> None:
        counts = np.bincount(train_items, minlength=n_items + 1).astype(np.float32)
        self.counts = torch.from_numpy(counts)  # (N + 1,)

    def __call__(self, inputs: Tensor) -> Tensor:
        return self.counts.to(inputs.device).expand(inputs.shape[0], -1).clone()  # (B, N + 1)
