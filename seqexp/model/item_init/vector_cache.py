"""The cache of pretrained item vectors (<cache_dir>/item2vec, <cache_dir>/text_vectors): written atomically, and an
entry that cannot be read back whole (a kill or a full disk mid-write before writes were atomic, a file cut short)
is computed again with a warning, never a raw traceback on every later run."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from seqexp.data.cache import warn_unwritable
from seqexp.io import atomic_write

log = logging.getLogger(__name__)


def load_arrays(
    path: Path | None, names: tuple[str, ...], shapes: dict[str, tuple[int, ...]]
) -> list[np.ndarray] | None:
    """The arrays `names` of the .npz or .npy at `path` when it holds them with these shapes (a dimension of -1 takes
    any size); None when there is no entry or it is unreadable (warned)."""
    if path is None or not path.exists():
        return None
    try:
        stored = np.load(path)
        if isinstance(stored, np.ndarray):  # a .npy: one array
            arrays = [stored]
        else:
            with stored:
                arrays = [np.asarray(stored[name]) for name in names]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        log.warning("the cached vectors %s are unreadable (%s: %s); computing them again", path, type(e).__name__, e)
        return None
    for name, array in zip(names, arrays, strict=True):
        want = shapes.get(name)
        fits = want is None or (
            array.ndim == len(want) and all(w in (-1, s) for w, s in zip(want, array.shape, strict=True))
        )
        if not fits:
            log.warning("the cached %s in %s has shape %s, not %s; computing it again", name, path, array.shape, want)
            return None
    return arrays


def save_arrays(path: Path | None, cache_dir: Path | None, write: Callable[[IO[bytes]], None]) -> None:
    """Write an entry atomically (temp file + rename); an unwritable cache is warned about, the run goes on."""
    if path is None or cache_dir is None:
        return
    try:
        atomic_write(path, write)
    except OSError as e:
        warn_unwritable(cache_dir, e)
