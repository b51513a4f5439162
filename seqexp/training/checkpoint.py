"""Checkpoints that load with `torch.load(weights_only=True)`: tensors and plain Python values only.

    checkpoints/best.pt   the best-validation weights + what recommend needs (item ids, config)
    checkpoints/last.pt   a resumable snapshot written after every epoch (weights, optimiser, RNG, loop state)

Both are written atomically (temp file + rename): a job killed mid-write leaves the previous file intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqexp.errors import CheckpointError
from seqexp.io import atomic_write

FORMAT = "seqexp-checkpoint-v1"


def atomic_save(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **payload}, f))


def save_checkpoint(path: Path, state_dict: dict[str, torch.Tensor], **meta: Any) -> None:
    atomic_save(path, {"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, **meta})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with weights_only=True; a missing, truncated or foreign file is a `CheckpointError` saying so."""
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {path}: pass the run dir of a finished `seqexp-train` run "
            f"(trained with trainer.save_checkpoint=true)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{path} is not a readable seqexp checkpoint ({type(e).__name__}: {str(e)[:200]}); it may be truncated "
            f"or from another program: retrain, or point at another run"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seqexp checkpoint (format {FORMAT} expected)")
    return ckpt


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a best.pt holds (memory-mapped: the weights are not read), or None when it cannot be read."""
    try:
        epoch = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("epoch")
    except Exception:
        return None
    return epoch if isinstance(epoch, int) else None
