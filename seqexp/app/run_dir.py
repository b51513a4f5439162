"""The run dir a job writes: never another run's, and resumed only by the run that wrote it.

results.json + checkpoints/   a finished (or killed) run: refused unless trainer.resume=true
                              (continue it) or trainer.overwrite=true (replace it)
checkpoints/last.pt           what trainer.resume=true continues; it stores the run's identity (data
                              fingerprint, model / split / eval config, seed) and a resume must match it
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from seqexp.errors import ConfigError, ResumeMismatch, RunDirInUse
from seqexp.tracking.trackers import flatten
from seqexp.training.checkpoint import load_checkpoint

# config that must be the same for a snapshot to be continued (trainer.* budgets may change: that is what a
# resume with a larger trainer.max_epochs is for); the data itself is compared by its fingerprint
IDENTITY_KEYS = ("model", "split", "eval", "seed", "optimized_metric", "data.max_len", "data.train_stride")


def claim_run_dir(cfg: DictConfig) -> Path:
    """Create the run dir, check that it is writable and that it does not hold another run this job would
    overwrite; returns it."""
    run_dir = Path(str(cfg.paths.output_dir))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".seqexp-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"cannot write to the run dir {run_dir} ({e.strerror or e}); choose a writable one with "
            f"hydra.run.dir=<dir> (or paths.log_dir=<dir>)"
        ) from None
    trainer = cfg.trainer
    if trainer.get("resume", False) or trainer.get("overwrite", False):
        return run_dir
    taken = [p.name for p in (run_dir / "results.json", run_dir / "checkpoints") if p.exists()]
    if taken and _status(run_dir) != "failed":
        raise RunDirInUse(
            f"the run dir {run_dir} already holds a run ({', '.join(taken)}; status {_status(run_dir) or 'unfinished'}"
            f"); nothing was changed. Continue it with trainer.resume=true, replace it with trainer.overwrite=true, "
            f"or pick another dir with hydra.run.dir=<dir>"
        )
    return run_dir


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "results.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def run_identity(cfg: DictConfig, data_fingerprint: str) -> dict[str, Any]:
    """What a snapshot must match to be continued: the data fingerprint and the flattened identity config."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    flat = flatten(resolved)
    config = {k: v for k, v in flat.items() if any(k == key or k.startswith(key + ".") for key in IDENTITY_KEYS)}
    return {"data_fingerprint": data_fingerprint, "config": config}


def load_resume_snapshot(cfg: DictConfig, last_path: Path) -> dict[str, Any] | None:
    """trainer.resume=true: the snapshot in this run dir's checkpoints/last.pt (None without resume)."""
    if not cfg.trainer.get("resume", False):
        return None
    if not last_path.exists():
        raise ConfigError(
            f"trainer.resume=true but {last_path} does not exist: resume in the killed run's own dir, "
            f"`seqexp-train <its overrides> hydra.run.dir=<that run dir> trainer.resume=true`"
        )
    return load_checkpoint(last_path)


def check_same_run(saved: dict[str, Any], identity: dict[str, Any], last_path: Path) -> None:
    """Refuse to continue a snapshot written with other data or another model / split / eval config."""
    before = saved.get("identity")
    fix = (
        f"resume with the run's own overrides ({last_path.parent.parent / '.hydra' / 'overrides.yaml'} lists "
        f"them), or start a new run (another hydra.run.dir, or trainer.overwrite=true)"
    )
    if before is None:
        raise ResumeMismatch(f"{last_path} records no run identity (written by an older seqexp); {fix}")
    if before["data_fingerprint"] != identity["data_fingerprint"]:
        raise ResumeMismatch(
            f"trainer.resume=true: {last_path} was trained on other data (data fingerprint "
            f"{before['data_fingerprint'][:12]}, this command's data gives {identity['data_fingerprint'][:12]}: "
            f"another data.path, file content or data.* cleaning setting); {fix}"
        )
    old, new = before["config"], identity["config"]
    for key in sorted(set(old) | set(new)):
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            raise ResumeMismatch(
                f"trainer.resume=true: {last_path} was written with {key}={old.get(key, '<unset>')}, this command "
                f"has {key}={new.get(key, '<unset>')}; {fix}"
            )
