"""item2vec: skip-gram Word2Vec over users' training sequences (Barkan & Koenigstein, "Item2Vec: Neural Item
Embedding for Collaborative Filtering", MLSP 2016), as an initial item table.

Only the training part of each sequence is read (the split's train ranges), never a validation or test target.
Vectors are cached by the prepared data's fingerprint, the split and the settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from seqexp.data.sequences import PreparedData
from seqexp.data.splits import Split
from seqexp.errors import ConfigError
from seqexp.io import sha256_bytes, sha256_json
from seqexp.model.item_init.vector_cache import load_arrays, save_arrays

log = logging.getLogger(__name__)


def training_sentences(data: PreparedData, split: Split) -> list[list[str]]:
    """One sentence per user: the item indices of the training events, as tokens."""
    out = []
    for a, b in zip(split.train_start, split.train_end, strict=True):
        if b - a >= 2:
            out.append(data.items[a:b].astype(str).tolist())
    return out


def item2vec_vectors(
    data: PreparedData, split: Split, dim: int, settings: dict[str, Any], seed: int, cache_dir: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """((N + 1, dim) float32 vectors by item index, (N + 1,) bool: trained). Untrained rows are zero."""
    ranges = sha256_bytes(np.concatenate([split.train_start, split.train_end]).tobytes())
    key_src = [data.fingerprint, split.name, ranges, dim, settings, seed]
    key = sha256_json(key_src)[:24]
    path = cache_dir / "item2vec" / f"{key}.npz" if cache_dir else None
    n = data.n_items + 1
    cached = load_arrays(path, ("vectors", "trained"), {"vectors": (n, dim), "trained": (n,)})
    if cached is not None:
        return cached[0], cached[1]
    try:
        from gensim.models import Word2Vec
    except ImportError as e:
        raise ConfigError('model.item_init=item2vec needs gensim: pip install -e ".[item2vec]"') from e
    sentences = training_sentences(data, split)
    w2v = Word2Vec(
        sentences=sentences,
        vector_size=dim,
        sg=1,  # skip-gram, as in item2vec
        window=int(settings.get("window", 5)),
        negative=int(settings.get("negative", 5)),
        min_count=1,
        epochs=int(settings.get("epochs", 10)),
        workers=1,  # one worker: the vectors are a deterministic function of the seed
        seed=seed,
    )
    vectors = np.zeros((data.n_items + 1, dim), dtype=np.float32)
    trained = np.zeros(data.n_items + 1, dtype=bool)
    for token, row in w2v.wv.key_to_index.items():
        vectors[int(token)] = w2v.wv.vectors[row]
        trained[int(token)] = True
    log.info(
        "item2vec: %d of %d items have a vector (%d training sentences)", trained.sum(), data.n_items, len(sentences)
    )
    save_arrays(path, cache_dir, lambda f: np.savez(f, vectors=vectors, trained=trained))
    return vectors, trained
