"""One job on several processes (DDP via `torchrun`, or submitit tasks on SLURM).

Accelerate owns the process group; rank facts live in `seqexp.ranks`, sharded evaluation in
`seqexp.evaluation.protocol`. This module turns SLURM's task variables into the ones torchrun would set.
"""

from __future__ import annotations

import os


def export_slurm_environment() -> None:
    """Inside a SLURM job with several tasks (hydra/launcher=slurm, tasks_per_node > 1), set RANK, WORLD_SIZE,
    MASTER_ADDR/PORT from SLURM's variables so that Accelerate starts the process group, as torchrun would."""
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return  # torchrun already set it up, or a single task
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return  # several SLURM tasks but not launched by submitit: use torchrun inside the allocation
    import submitit

    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
