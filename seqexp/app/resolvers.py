"""OmegaConf resolvers used by conf/ (registered when seqexp.app.conf_dir is imported, as seqexp.app.train does,
before Hydra composes).

${seqexp.run_stamp:}     a run folder's name: time stamp, process id and host, the same in every rank of one
                         `torchrun` job
${seqexp.gpus_if_any:1}  the given GPU count when CUDA is visible, else 0 (Ray's num_gpus per job)
${seqexp.synthetic_file:${data.generate}}  the synthetic log's file name for these generator settings
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings

from omegaconf import DictConfig, OmegaConf

STAMP = "%Y-%m-%d_%H-%M-%S"


def run_stamp() -> str:
    """Now, this process's id and its host, except under torchrun: there every rank is a child of the same elastic
    agent, so the agent's start time and id name one shared run dir (rank 0 writes it; the others write nothing of
    their own). Id and host keep apart runs started in the same second (W&B agents launched together, on one node
    or in containers): formerly they shared one dir, one was refused, and the other's .hydra/ held its config."""
    if "LOCAL_RANK" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ:
        started = _process_start_time(os.getppid())
        if started is not None:
            return time.strftime(STAMP, time.localtime(started)) + f"_ddp{os.getppid()}-{_host()}"
    return time.strftime(STAMP) + f"_{os.getpid()}-{_host()}"


def _host() -> str:
    """4 hex digits of the host name: containers that share a log volume often run their jobs as the same pid."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


def _process_start_time(pid: int) -> float | None:
    """Unix start time of a process from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime: field 22 of stat, after pid and (comm)
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def gpus_if_any(n: int = 1) -> int:
    import torch

    return int(n) if torch.cuda.is_available() else 0


def register() -> None:
    OmegaConf.register_new_resolver("seqexp.run_stamp", run_stamp, replace=True)
    # conf/hydra/launcher/ray.yaml shares its name with the plugin's schema on purpose: Hydra 1.3 validates
    # it against that schema (a typo fails) and warns that this matching is deprecated; the warning is noise.
    warnings.filterwarnings("ignore", message=r"(?s).*'hydra/launcher/ray' is validated against ConfigStore schema")
    OmegaConf.register_new_resolver("seqexp.gpus_if_any", gpus_if_any, replace=True)
    OmegaConf.register_new_resolver("seqexp.synthetic_file", synthetic_file, replace=True)


def synthetic_file(generate: DictConfig) -> str:
    from seqexp.data.synthetic import synthetic_file_name

    return synthetic_file_name(OmegaConf.to_container(generate, resolve=True))  # type: ignore[arg-type]
