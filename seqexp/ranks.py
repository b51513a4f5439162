"""Which process this is in a multi-process job (DDP via torchrun, or SLURM tasks).

Rank 0 owns the run dir's files and the W&B run; every layer that writes or shards asks here.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Rank 0 of the process group, or, before the group exists (a config error, a refused run dir), the rank
    the launcher gave this process (torchrun's RANK, SLURM's SLURM_PROCID): one process writes the run dir."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) or 0) == 0


def rank_slice(batch: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch of row indices."""
    rank, size = world()
    return batch if size == 1 else torch.tensor_split(batch, size)[rank]


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Contiguous block [i, j) of n rows for `rank`: blocks in rank order tile 0..n exactly."""
    edges = np.linspace(0, n, size + 1).round().astype(int)
    return int(edges[rank]), int(edges[rank + 1])
