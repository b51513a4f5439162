"""What a job knows about the Hydra run around it (all None / empty outside a Hydra app)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from seqexp.errors import ConfigError


def task_overrides() -> list[str]:
    """The command-line overrides of this job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    # as typed: `model.name=${data.nam}` unresolved (resolving here would raise before the config check names it)
    return [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_search_runs_as_multirun() -> None:
    """A search config (hparams_search=..., or a hydra/sweeper other than basic) given without -m would run one
    plain job with the default hyper-parameters and file it like a search: refuse it, saying to add -m."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    choices = HydraConfig.get().runtime.choices
    if choices.get("hparams_search"):
        asked = f"hparams_search={choices['hparams_search']}"
    elif choices.get("hydra/sweeper") not in (None, "basic"):
        asked = f"hydra/sweeper={choices['hydra/sweeper']}"
    else:
        return
    raise ConfigError(
        f"{asked} is a search over many runs, which needs multirun: add -m, `seqexp-train -m "
        f"{' '.join(task_overrides())}` (without -m this would train once with the default hyper-parameters)"
    )


def multirun_name() -> str | None:
    """The multirun's folder name (e.g. train-2026-11-27_12-00-00) inside a Hydra multirun, else None."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    return f"{HydraConfig.get().job.name}-{Path(HydraConfig.get().sweep.dir).name}"


def wandb_sweep_name() -> str | None:
    """Inside a `wandb agent` run: the sweep's id, so that its runs share a group too."""
    sweep_id = os.environ.get("WANDB_SWEEP_ID")
    return f"sweep-{sweep_id}" if sweep_id else None


def run_group() -> str | None:
    """The W&B group of this job when the config leaves it null: its multirun, or its W&B sweep."""
    return multirun_name() or wandb_sweep_name()


def record_job_status(status: str, error: BaseException | None, run_dir: str) -> None:
    """Inside a multirun: this job's outcome for the sweep report (which then never mistakes an earlier run's
    results.json in a reused sweep dir for this job's)."""
    from hydra.core.hydra_config import HydraConfig

    from seqexp.io import write_json
    from seqexp.tracking.sweep_report import job_status_path

    if not in_multirun():
        return
    hydra = HydraConfig.get()
    error_text = f"{type(error).__name__}: {error}" if error is not None else None
    record = {"status": status, "error": error_text, "dir": run_dir, "overrides": list(hydra.overrides.task)}
    write_json(job_status_path(Path(hydra.sweep.dir), hydra.job.num), record)
