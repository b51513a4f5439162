"""Pretrained item representations (`model.item_init`): random (default), item2vec, or text.

    item2vec  skip-gram vectors from the training sequences copied into the item table (rescaled to its init)
    text      sentence-encoder vectors of each item's text: `pretrained.text.mode=side` adds them, through a
              learned projection, to every item vector (cold items get a vector from their text);
              `mode=init` copies their principal components into the item table instead

`pretrained.freeze=true` keeps the item table fixed during training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqexp.data.sequences import PreparedData
from seqexp.data.splits import Split
from seqexp.errors import ConfigError
from seqexp.model.item_init.item2vec import item2vec_vectors
from seqexp.model.item_init.text import default_model_dir, encode_texts, item_texts
from seqexp.model.recommender import SequenceRecommender

log = logging.getLogger(__name__)

KINDS = ("random", "item2vec", "text")  # model.item_init
TEXT_MODES = ("side", "init")  # pretrained.text.mode


def apply_item_init(
    model: SequenceRecommender,
    kind: str,
    data: PreparedData,
    split: Split,
    settings: Any,
    seed: int,
    cache_dir: str | Path | None,
) -> dict[str, Any]:
    """Initialise `model`'s item vectors in place; returns what was done (recorded in results.json)."""
    if kind not in KINDS:
        raise ConfigError(f"model.item_init={kind!r}: choose one of {list(KINDS)}")
    cache = Path(cache_dir) if cache_dir else None
    counts = split.item_counts(data)
    trained = counts > 0
    info: dict[str, Any] = {"kind": kind, "items_in_training": int(trained[1:].sum())}
    table = model.item_embedding.weight
    if kind == "item2vec":
        vectors, has_vector = item2vec_vectors(data, split, table.shape[1], dict(settings.item2vec), seed, cache)
        _copy_rows(table, vectors, has_vector)
        info["items_initialised"] = int(has_vector.sum())
    elif kind == "text":
        text_cfg = settings.text
        texts = item_texts(data.item_side, list(text_cfg.columns) if text_cfg.get("columns") else None, data.n_items)
        model_dir = Path(str(text_cfg.model_dir)) if text_cfg.get("model_dir") else default_model_dir()
        vectors = encode_texts(texts, model_dir, int(text_cfg.batch_size), int(text_cfg.max_length), cache)
        has_text = np.zeros(data.n_items + 1, dtype=bool)
        has_text[1:] = [bool(t) for t in texts]
        padded = np.zeros((data.n_items + 2, vectors.shape[1]), dtype=np.float32)  # rows 0 and N + 1 stay zero
        padded[1 : data.n_items + 1] = _centred_unit_rows(vectors, has_text[1:])
        mode = str(text_cfg.get("mode", "side"))
        if mode == "side":
            model.attach_text(torch.from_numpy(padded), scale=float(table[1:].detach().std()))
            model.candidates = torch.from_numpy(trained | (np.arange(len(trained)) == 0))
            with torch.no_grad():  # an item without training events is its text alone: W t_i, no random part
                table[torch.from_numpy(np.flatnonzero(~trained[1:]) + 1)] = 0.0
        elif mode == "init":
            _copy_rows(table, _principal_components(padded[: data.n_items + 1], table.shape[1]), has_text)
        else:
            raise ConfigError(f"pretrained.text.mode={mode!r}: use {' or '.join(TEXT_MODES)}")
        info.update(mode=mode, model_dir=str(model_dir), items_with_text=int(has_text.sum()), dim=int(vectors.shape[1]))
    if settings.get("freeze") and kind != "random":
        model.item_embedding.weight.requires_grad_(False)
        info["frozen"] = True
    log.info("item init: %s", info)
    return info


def _copy_rows(table: torch.nn.Parameter, vectors: np.ndarray, rows: np.ndarray) -> None:
    """Copy `vectors[rows]` into the table, rescaled to the table's own init scale (std of its real rows)."""
    with torch.no_grad():
        target_std = float(table[1:].std())
        v = torch.from_numpy(vectors[rows]).float()
        v = (v - v.mean(0)) / v.std().clamp(min=1e-8) * target_std
        table[torch.from_numpy(np.flatnonzero(rows))] = v.to(table.dtype)


def _centred_unit_rows(vectors: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Remove the component every item text shares (sentence embeddings are anisotropic: Mu & Viswanath,
    "All-but-the-Top", ICLR 2018), then rescale rows to unit length; rows without text stay zero."""
    out = np.zeros_like(vectors)
    if present.any():
        centred = vectors[present] - vectors[present].mean(0, keepdims=True)
        out[present] = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-8)
    return out


def _principal_components(vectors: np.ndarray, dim: int) -> np.ndarray:
    """(M, H) -> (M, dim): the top principal components (zero-padded when H < dim)."""
    centred = vectors - vectors.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[: min(dim, vt.shape[0])].T
    return np.pad(out, ((0, 0), (0, dim - out.shape[1]))).astype(np.float32)
