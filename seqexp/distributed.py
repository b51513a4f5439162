"""One job on several processes (DDP via `torchrun`, or submitit tasks on SLURM).

Accelerate owns the process group; this module adds what a recommender needs on top of it:
- the run dir, W&B run and files belong to rank 0 (`is_main`);
- training batches are split across ranks (each rank takes its slice of every global batch);
- evaluation is sharded by user (contiguous blocks of rows) and gathered, so that the metrics equal a
  single-process evaluation of the same weights.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from seqexp.data.loader import EvalTensors
from seqexp.evaluation import EvalResult, Scorer, evaluate


def export_slurm_environment() -> None:
    """Inside a SLURM job with several tasks (hydra/launcher=slurm, tasks_per_node > 1), set RANK, WORLD_SIZE,
    MASTER_ADDR/PORT from SLURM's variables so that Accelerate starts the process group, as torchrun would."""
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return  # torchrun already set it up, or a single task
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return  # several SLURM tasks but not launched by submitit: use torchrun inside the allocation
    import submitit

    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def rank_slice(batch: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch of row indices."""
    rank, size = world()
    return batch if size == 1 else torch.tensor_split(batch, size)[rank]


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Contiguous block [i, j) of n rows for `rank`: blocks in rank order tile 0..n exactly."""
    edges = np.linspace(0, n, size + 1).round().astype(int)
    return int(edges[rank]), int(edges[rank + 1])


@torch.no_grad()
def evaluate_sharded(scorer: Scorer, tensors: EvalTensors, **kwargs: Any) -> EvalResult:
    """`evaluate` on this rank's block of users, gathered: per-user values in the original row order,
    means over all users, coverage over the union of everybody's top-K."""
    rank, size = world()
    if size == 1:
        return evaluate(scorer, tensors, **kwargs)
    i, j = shard_bounds(len(tensors), rank, size)
    part = evaluate(scorer, tensors.rows(i, j), **kwargs)
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, (part.per_user, part.recommended, part.seconds))
    per_user = {k: np.concatenate([p[0][k] for p in parts]) for k in part.per_user}
    recommended = np.logical_or.reduce([p[1] for p in parts])
    metrics = {k: float(v.mean()) if len(v) else 0.0 for k, v in per_user.items()}
    coverage_key = next(k for k in part.metrics if k.startswith("coverage@"))
    metrics[coverage_key] = float(recommended[1:].sum()) / (len(recommended) - 1)
    return EvalResult(metrics, per_user, tensors.users.numpy(), max(p[2] for p in parts), recommended)
