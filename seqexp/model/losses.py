"""Losses over the catalogue, computed at the positions an objective selected.

Each takes hidden states h (P, D), targets (P,), the item table E (N + 1, D; row 0 = padding) and optionally
`candidates` (N + 1,) bool: the items a prediction may name (items without training events are left out when
their vectors come from text, so that training does not push never-seen items down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqexp.errors import ConfigError
from seqexp.model.chunked_softmax import chunked_cross_entropy
from seqexp.model.fused_cross_entropy import fused_cross_entropy

log = logging.getLogger(__name__)


class FullSoftmax(nn.Module):
    """Cross-entropy over every item of the catalogue (the default; exact, and cheap below ~100k items).

    `fused` (default) computes it with its gradient over chunks of positions (seqexp/model/fused_cross_entropy.py):
    the same loss and gradients as the textbook `F.cross_entropy(h @ E.T, t)` (`fused=False`), without holding the
    (P, N + 1) logits whole; 1.4-1.9x faster on a CPU (benchmarks/results/fused_cpu.md)."""

    def __init__(self, fused: bool = True) -> None:
        super().__init__()
        if not isinstance(fused, bool):
            raise ConfigError(f"model.loss.fused={fused!r}: use true (the default) or false")
        self.fused = fused

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        pass

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        blocked = None  # (N + 1,) bool: items never predicted; None = padding only
        if candidates is not None:
            blocked = ~candidates.to(device=h.device, dtype=torch.bool)
            blocked[0] = True
        if self.fused:
            return fused_cross_entropy(h, item_table, targets, blocked)
        logits = h @ item_table.T  # (P, N + 1)
        logits[:, 0] = float("-inf")  # never predict padding
        if blocked is not None:
            logits = logits.masked_fill(blocked[None, :], float("-inf"))
        return F.cross_entropy(logits.float(), targets)


class ChunkedFullSoftmax(nn.Module):
    """The same exact cross-entropy as FullSoftmax (loss and gradients agree to 1e-5), computed over item chunks
    of `chunk_size` with a custom autograd function so that the (P, N + 1) logits are never held whole: for
    exact CE on catalogues where FullSoftmax runs out of memory (seqexp/model/chunked_softmax.py)."""

    def __init__(self, chunk_size: int = 8192) -> None:
        super().__init__()
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"model.loss.chunk_size={chunk_size!r}: use a positive number of items, e.g. 8192")
        self.chunk_size = chunk_size

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        pass

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        if candidates is None:
            allowed = torch.ones(item_table.shape[0], dtype=torch.bool, device=h.device)  # (N + 1,)
        else:
            allowed = candidates.to(device=h.device, dtype=torch.bool).clone()
        allowed[0] = False  # never predict padding
        return chunked_cross_entropy(h, item_table, targets, allowed, self.chunk_size)


class SampledSoftmax(nn.Module):
    """Sampled softmax for catalogues too large for a full softmax (Jean et al., "On Using Very Large Target
    Vocabulary for Neural Machine Translation", ACL 2015): the target competes with `num_negatives` items
    drawn once per batch, uniformly or by training popularity. With `logq_correction`, every candidate's
    logit is lowered by log(num_negatives * q(item)), which removes the sampling bias towards popular items
    (Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations", RecSys 2019).
    Negatives that happen to equal a row's target are ignored for that row.

    `in_batch=True` adds the batch's other targets as negatives (Yi et al. 2019), mixed with the sampled ones as
    in Mixed Negative Sampling (Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks in
    Recommendations", WWW 2020); `num_negatives=0` leaves in-batch negatives only. The in-batch negatives are
    draws from the batch's empirical target distribution q_b (K_b = P draws, so K_b q_b(j) = c_b(j), the
    item's count among the P targets); with both sources every candidate's logit is lowered by the log of its
    expected count among the negatives, log(K q(j) + c_b(j)), which is log(K q) or log(c_b) when one source is
    off. Each distinct in-batch item is one column carrying its multiplicity (+ log c_b), so the loss equals
    the one over all P target columns while the logits are (P, distinct targets). Every column equal to a row's
    target (its own and other rows') is an accidental hit and is ignored.

    `per_position=True` draws `num_negatives` items for every target position instead of once per batch, as
    eSASRec's reference code does (RecTools; Tikhonovich et al., RecSys 2025): on a small catalogue a batch-wide
    draw shares the same few hundred negatives across thousands of positions. Memory grows as P x K x D.

    With `sparse_rows` set (seqexp/model/sparse_items.py) rows are gathered with a sparse gradient and the table
    may have one extra trailing row ([MASK]), which is never gathered.
    """

    gathers_rows = True  # touches only the rows of targets and negatives: usable with a sparse item table

    def __init__(
        self,
        num_negatives: int = 1000,
        distribution: str = "uniform",
        logq_correction: bool = True,
        in_batch: bool = False,
        per_position: bool = False,
    ) -> None:
        super().__init__()
        if distribution not in ("uniform", "popularity"):
            raise ConfigError(f"model.loss.distribution={distribution!r}: use uniform or popularity")
        if not isinstance(num_negatives, int) or num_negatives < (0 if in_batch else 1):
            fix = "0 or more (with in_batch=true)" if in_batch else "1 or more, or set model.loss.in_batch=true"
            raise ConfigError(f"model.loss.num_negatives={num_negatives!r}: use {fix}")
        self.num_negatives = num_negatives
        self.distribution = distribution
        self.logq_correction = logq_correction
        self.in_batch = bool(in_batch)
        if per_position and in_batch:
            raise ConfigError("model.loss.per_position=true draws each position's own negatives: set in_batch=false")
        self.per_position = bool(per_position)
        self.sparse_rows = False
        self.register_buffer("probs", torch.zeros(0), persistent=False)  # (N + 1,), 0 at padding
        self.register_buffer("log_kq", torch.zeros(0), persistent=False)  # (N + 1,) log(K q): once, not per step

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        """Set the sampling distribution once the catalogue (and, for popularity, the training counts) is known."""
        if item_counts is not None and self.num_negatives >= n_items:  # counts: a model built to train
            log.warning(
                "model.loss.num_negatives=%d draws at least as many negatives as the catalogue has items (%d), with "
                "repeats: the full softmax is exact and cheaper here (drop +model/loss=sampled, or model/loss=full on "
                "esasrec), or set model.loss.num_negatives below %d",
                self.num_negatives, n_items, n_items,
            )  # fmt: skip
        if self.distribution == "popularity":
            if item_counts is None:  # e.g. a model rebuilt for inference: no training, no sampling
                return
            probs = item_counts.double().clamp(min=0) + 1.0  # +1: every item can be drawn
        else:
            probs = torch.ones(n_items + 1, dtype=torch.float64)
        probs[0] = 0.0
        self.probs = (probs / probs.sum()).float()
        self.log_kq = torch.log(self.probs * self.num_negatives)  # -inf at padding, never a target

    def _rows(self, item_table: Tensor, index: Tensor) -> Tensor:
        """item_table[index]; a sparse gradient (only these rows) when `sparse_rows` is set."""
        if self.sparse_rows:
            return F.embedding(index, item_table, sparse=True)
        return item_table[index]

    def _draw(self, item_table: Tensor, rows: int = 0) -> Tensor:
        """(K,) negatives for the batch, or (rows, K) with `rows` (one draw per position)."""
        n = self.probs.numel()
        if n == 0 or item_table.shape[0] not in (n, n + 1) or (item_table.shape[0] != n and not self.sparse_rows):
            raise RuntimeError("SampledSoftmax has no sampling distribution: build the model with item_counts")
        if rows:
            return torch.multinomial(self.probs, rows * self.num_negatives, replacement=True).view(rows, -1)
        return torch.multinomial(self.probs, self.num_negatives, replacement=True)  # (K,)

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        if self.in_batch:
            return self._mixed(h, targets, item_table, candidates)
        if self.per_position:
            return self._per_position(h, targets, item_table, candidates)
        negatives = self._draw(item_table)  # (K,)
        pos = (h * self._rows(item_table, targets)).sum(dim=-1, keepdim=True)  # (P, 1)
        neg = h @ self._rows(item_table, negatives).T  # (P, K)
        if self.logq_correction:
            pos = pos - self.log_kq[targets][:, None]
            neg = neg - self.log_kq[negatives][None, :]
        neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))  # accidental hits
        if candidates is not None:
            neg = neg.masked_fill(~candidates[negatives][None, :], float("-inf"))
        logits = torch.cat([pos, neg], dim=1).float()  # the target is class 0
        return F.cross_entropy(logits, torch.zeros_like(targets))

    def _per_position(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None) -> Tensor:
        """Each position's own `num_negatives` draws; see the class docstring."""
        negatives = self._draw(item_table, rows=targets.shape[0])  # (P, K)
        pos = (h * self._rows(item_table, targets)).sum(dim=-1, keepdim=True)  # (P, 1)
        neg = torch.einsum("pd,pkd->pk", h, self._rows(item_table, negatives))  # (P, K)
        if self.logq_correction:
            pos = pos - self.log_kq[targets][:, None]
            neg = neg - self.log_kq[negatives]
        neg = neg.masked_fill(negatives == targets[:, None], float("-inf"))  # accidental hits
        if candidates is not None:
            neg = neg.masked_fill(~candidates[negatives], float("-inf"))
        logits = torch.cat([pos, neg], dim=1).float()  # the target is class 0
        return F.cross_entropy(logits, torch.zeros_like(targets))

    def _mixed(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None) -> Tensor:
        """In-batch (+ sampled) negatives; see the class docstring."""
        batch_items, counts = torch.unique(targets, return_counts=True)  # (U,) sorted, (U,)
        negatives = self._draw(item_table) if self.num_negatives else targets.new_zeros(0)  # (K,)
        pos = (h * self._rows(item_table, targets)).sum(dim=-1, keepdim=True).float()  # (P, 1)
        batch = (h @ self._rows(item_table, batch_items).T).float() + torch.log(counts.float())[None, :]  # (P, U)
        neg = (h @ self._rows(item_table, negatives).T).float()  # (P, K)
        if self.logq_correction:
            log_expected = _log_expected_count(self.probs * self.num_negatives, batch_items, counts)
            pos = pos - log_expected(targets)[:, None]
            batch = batch - log_expected(batch_items)[None, :]
            neg = neg - log_expected(negatives)[None, :]
        batch = batch.masked_fill(batch_items[None, :] == targets[:, None], float("-inf"))  # accidental hits
        neg = neg.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
        if candidates is not None:
            batch = batch.masked_fill(~candidates[batch_items][None, :], float("-inf"))
            neg = neg.masked_fill(~candidates[negatives][None, :], float("-inf"))
        logits = torch.cat([pos, batch, neg], dim=1)  # the target is class 0
        return F.cross_entropy(logits, torch.zeros_like(targets))


def _log_expected_count(sampled: Tensor, batch_items: Tensor, counts: Tensor) -> Callable[[Tensor], Tensor]:
    """items -> log(K q(item) + c_b(item)): `sampled` (N + 1,) holds K q (empty: K = 0), `batch_items` (U,) the
    sorted distinct targets and `counts` (U,) their counts c_b."""

    def log_expected(items: Tensor) -> Tensor:
        at = torch.searchsorted(batch_items, items).clamp(max=batch_items.numel() - 1)
        in_batch = torch.where(batch_items[at] == items, counts[at], 0).float()
        from_sampler = sampled[items].float() if sampled.numel() else torch.zeros_like(in_batch)
        return torch.log(from_sampler + in_batch)

    return log_expected


class CutCrossEntropy(nn.Module):
    """Exact full-softmax cross-entropy through Apple's Cut Cross-Entropy kernels (Wijmans et al., "Cut Your
    Losses in Large-Vocabulary Language Models", ICLR 2025; package `cut-cross-entropy`): logits are computed
    block by block in GPU SRAM and never stored, so memory stays flat in the catalogue. The optional GPU path;
    `ChunkedFullSoftmax` is the portable one (same loss). The padding row 0 is left out of the classifier, so item
    i is class i - 1. `impl`: "cce" (Triton, CUDA) or "torch_compile" (any device, whole logits: for checking)."""

    gathers_rows = False

    def __init__(self, impl: str = "cce") -> None:
        super().__init__()
        self.impl = impl

    def bind(self, n_items: int, item_counts: Tensor | None = None) -> None:
        pass

    def forward(self, h: Tensor, targets: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
        try:
            from cut_cross_entropy import linear_cross_entropy
        except ImportError:
            raise ConfigError(
                "+model/loss=cce needs the cut-cross-entropy package (pip install cut-cross-entropy; Triton on a "
                "CUDA GPU for impl=cce); on CPU use +model/loss=chunked (model/loss=chunked on esasrec), the same "
                "exact loss"
            ) from None
        if candidates is not None:
            raise ConfigError(
                "+model/loss=cce cannot leave items out of the softmax (text side vectors restrict the candidates); "
                "use +model/loss=chunked (model/loss=chunked on esasrec)"
            )
        return linear_cross_entropy(h, item_table[1:], targets - 1, impl=self.impl, reduction="mean")
