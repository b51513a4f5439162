"""Checkpoints that load with `torch.load(weights_only=True)`: tensors and plain Python values only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqexp.errors import RecommendError

FORMAT = "seqexp-checkpoint-v1"


def save_checkpoint(path: Path, state_dict: dict[str, torch.Tensor], **meta: Any) -> None:
    """Atomic write (temp file + rename): a killed job leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    torch.save({"format": FORMAT, "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, **meta}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RecommendError(
            f"no checkpoint at {path}: train with trainer.save_checkpoint=true, or pass the run dir of a finished run"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RecommendError(
            f"{path} is not a readable seqexp checkpoint ({type(e).__name__}: {e}); "
            f"it may be truncated or from another program: retrain or point at another run"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise RecommendError(f"{path} is not a seqexp checkpoint (format {FORMAT} expected)")
    return ckpt
