"""Beyond-accuracy metrics of the test top-K lists: how diverse, novel and evenly spread the recommendations are.

The lists are the same top-K lists the accuracy metrics rank (after the padding column and, under
eval.filter_seen, the history are masked); a slot filled with a -inf score (a user with fewer than K
candidates left) is never "shown" and counts nowhere. K is the coverage cut-off (10).

Per user (kept per user, so that seqexp-compare can pair them like NDCG):
- novelty@K: mean self-information -log2 p(i) of the shown items, p(i) the item's share of the training events,
  Laplace-smoothed, p(i) = (c_i + 1) / (sum_j c_j + N), so that an item without training events is finite
  (Castells, Hurley, Vargas, "Novelty and Diversity in Recommender Systems", Recommender Systems Handbook,
  2nd ed. 2015, sec. "popularity-based item novelty"; Zhou et al., PNAS 2010, "Solving the apparent
  diversity-accuracy dilemma of recommender systems", mean self-information).
- avg_pop@K: mean training popularity (number of training events) of the shown items (RecBole
  AveragePopularity; Yin et al., VLDB 2012).
- tail_share@K: share of the shown slots that go to long-tail items. The head is the ceil(HEAD_SHARE * N)
  items with the most training events (ties at the cut broken by the lower item index, so the head has
  exactly that size); every other item, including items without training events, is tail
  (Abdollahpouri et al., "Managing popularity bias in recommender systems with personalized re-ranking",
  FLAIRS 2019: the 20 % "short head").
- ild@K (only when each item has a category): intra-list diversity, the mean pairwise category distance over
  the pairs of shown items (Ziegler et al., WWW 2005; Castells et al. ibid., "intra-list diversity").
  Items carry a set of category tokens (ml-100k genres "Action Comedy" -> {Action, Comedy}; a Taobao category
  is one token); the distance of two items is the Jaccard distance 1 - |A & B| / |A | B| of their sets, which
  is 0/1 "same / different category" for single-valued categories. An item without a category has the empty
  set: distance 0 to another item without one, 1 to an item with one. Fewer than 2 shown items: 0.

Over the whole catalogue (from the exposure counts: how often each item was shown, summed over users and ranks):
- gini@K: Gini index of the exposure of the N items, items never shown included (0 = every item shown equally
  often, (N - 1) / N = one item takes every slot); G = sum_i (2i - N - 1) x_(i) / (N sum_i x_i) over the
  exposures sorted ascending (Fleder & Hosanagar, Management Science 2009; RecBole GiniIndex).
- entropy@K: Shannon entropy of the exposure distribution in bits, -sum_i p_i log2 p_i with p_i the item's
  share of all shown slots (0 = one item only, log2 N = every item equally; RecBole ShannonEntropy, in bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqexp.errors import ConfigError

HEAD_SHARE = 0.2  # the short head: the 20 % most popular items (Pareto, as in Abdollahpouri et al. 2019)
PER_USER = ("novelty", "avg_pop", "tail_share", "ild")  # beyond-accuracy metrics kept per user
CATALOGUE = ("gini", "entropy")  # beyond-accuracy metrics of the exposure over all users
BEYOND = PER_USER + CATALOGUE


@dataclass(frozen=True)
class ItemFacts:
    """What the per-user beyond-accuracy metrics need to know about every item (index 0 = padding)."""

    counts: Tensor  # (N + 1,) float64 training events per item
    tail: Tensor  # (N + 1,) bool: long-tail items (outside the head)
    categories: Tensor | None = None  # (N + 1, T) int64 category token ids per item, 0 = none

    def to(self, device: torch.device | str) -> ItemFacts:
        cats = None if self.categories is None else self.categories.to(device)
        return ItemFacts(self.counts.to(device), self.tail.to(device), cats)


def item_facts(counts: Tensor, categories: Tensor | None = None, head_share: float = HEAD_SHARE) -> ItemFacts:
    """counts (N + 1,) training events per item (padding at 0) [+ category tokens (N + 1, T)] -> ItemFacts."""
    counts = counts.to(torch.float64)
    return ItemFacts(counts, tail_mask(counts, head_share), categories)


def tail_mask(counts: Tensor, head_share: float = HEAD_SHARE) -> Tensor:
    """(N + 1,) bool: True for long-tail items: all but the ceil(head_share * N) most popular items (ties at
    the cut broken by the lower item index); the padding column is neither (False)."""
    n = counts.shape[0] - 1
    head = math.ceil(head_share * n)
    index = torch.arange(1, n + 1)
    order = np.lexsort((index.numpy(), -counts[1:].cpu().numpy()))  # by count descending, then item index
    tail = torch.ones(n + 1, dtype=torch.bool)
    tail[0] = False
    tail[torch.from_numpy(order[:head]) + 1] = False
    return tail


def category_tokens(values: np.ndarray, separator: str | None = " ") -> Tensor:
    """(N,) item side values (str such as "Action Comedy", or None) -> (N + 1, T) int64 token ids (0 = none,
    row 0 = padding): each item's distinct categories, T the most any item has (>= 1). `separator` " " splits a
    value on whitespace (RecBole's token_seq genres), another string splits on it (`Action|Comedy`), None keeps the
    whole value as one category ("Skin Care"; formerly split in two, so "Skin Care" and "Hair Care" counted as
    half alike). Blank values and parts are no category."""
    vocab: dict[str, int] = {}

    def parts(value: object) -> list[str]:
        text = str(value).strip()
        if separator is None:
            return [text] if text else []
        pieces = text.split() if separator == " " else [p.strip() for p in text.split(separator)]
        return [p for p in pieces if p]

    rows = [sorted({vocab.setdefault(t, len(vocab) + 1) for t in parts(v)}) if v is not None else [] for v in values]
    width = max([len(r) for r in rows] + [1])
    out = torch.zeros(len(rows) + 1, width, dtype=torch.int64)
    for i, r in enumerate(rows, start=1):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out


def category_separator(column: str, setting: object) -> str | None:
    """eval.diversity_separator -> what category_tokens splits `column`'s values on: `auto` splits a RecBole
    `:token_seq` column on whitespace and keeps any other column's value whole; null keeps values whole; any other
    text is the separator (" " = whitespace)."""
    if setting == "auto":
        return " " if column.endswith(":token_seq") else None
    if setting is None:
        return None
    if not isinstance(setting, str) or setting == "":
        raise ConfigError(
            f"eval.diversity_separator={setting!r}: use auto, null (each value is one category), or the text "
            f"between a value's categories, e.g. '|' for Action|Comedy"
        )
    return " " if setting.isspace() else setting


def list_metrics(top: Tensor, shown: Tensor, items: ItemFacts, k: int) -> dict[str, Tensor]:
    """top (B, K) item indices, shown (B, K) bool -> per-user values (B,) float64 keyed 'novelty@10' etc."""
    n_shown = shown.sum(1).to(torch.float64)  # (B,)
    denom = n_shown.clamp(min=1.0)
    counts = items.counts[top]  # (B, K)
    p = (counts + 1.0) / (items.counts.sum() + (items.counts.shape[0] - 1))
    out = {
        f"novelty@{k}": torch.where(shown, -torch.log2(p), 0.0).sum(1) / denom,
        f"avg_pop@{k}": torch.where(shown, counts, 0.0).sum(1) / denom,
        f"tail_share@{k}": (items.tail[top] & shown).sum(1).to(torch.float64) / denom,
    }
    if items.categories is not None:
        out[f"ild@{k}"] = intra_list_diversity(items.categories[top], shown)
    return out


def intra_list_diversity(tokens: Tensor, shown: Tensor) -> Tensor:
    """tokens (B, K, T) category token ids (0 = none), shown (B, K) -> (B,) mean Jaccard distance over the
    pairs of shown items (0 when fewer than 2 are shown)."""
    real = tokens > 0  # (B, K, T)
    same = tokens[:, :, None, :, None] == tokens[:, None, :, None, :]  # (B, K, K, T, T)
    inter = (same & real[:, :, None, :, None]).sum((-1, -2)).to(torch.float64)  # (B, K, K) |A & B|
    size = real.sum(-1).to(torch.float64)  # (B, K)
    union = size[:, :, None] + size[:, None, :] - inter  # (B, K, K) |A | B|
    dist = torch.where(union > 0, 1.0 - inter / union.clamp(min=1.0), 0.0)
    k = tokens.shape[1]
    upper = torch.ones(k, k, dtype=torch.bool, device=tokens.device).triu(1)  # pairs i < j
    pairs = upper & shown[:, :, None] & shown[:, None, :]  # (B, K, K)
    n_pairs = pairs.sum((1, 2)).to(torch.float64)
    return torch.where(pairs, dist, 0.0).sum((1, 2)) / n_pairs.clamp(min=1.0)


def exposure_metrics(exposure: np.ndarray, k: int) -> dict[str, float]:
    """exposure (N + 1,) times each item was shown (index 0 = padding, ignored) -> gini@K and entropy@K."""
    x = np.sort(exposure[1:].astype(np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0:
        return {f"gini@{k}": 0.0, f"entropy@{k}": 0.0}
    i = np.arange(1, n + 1, dtype=np.float64)
    gini = float(((2 * i - n - 1) * x).sum() / (n * total))
    p = x[x > 0] / total
    return {f"gini@{k}": gini, f"entropy@{k}": float(-(p * np.log2(p)).sum())}
