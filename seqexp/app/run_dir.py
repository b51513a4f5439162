"""The run dir a job writes: never another run's, and resumed only by the run that wrote it.

    results.json (completed)      refused unless trainer.resume (continue it) or trainer.overwrite=true
    checkpoints/ without results  a killed or interrupted run: refused unless resumed or overwritten
    results.json (failed)         reused: the failed run's files are moved to replaced-<time>/ first
    checkpoints/last.pt           what trainer.resume continues; it stores the run's identity (data fingerprint,
                                  model / split / eval config, seed, windows, precision, gradient clipping,
                                  overrides) and a resume must match it (seqexp/app/resume.py)

trainer.resume: false | true (last.pt must exist) | auto (resume when last.pt exists, else start: for
benchmarks and requeued cluster jobs that restart in the same dir). A job SLURM requeued (SLURM_RESTART_COUNT > 0)
reads false as auto: it is the same job, continuing in its own dir.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from seqexp.errors import ConfigError, RunDirInUse

log = logging.getLogger(__name__)

OWN_FILES = ("results.json", "traceback.txt", "prep_report.json", "checkpoints", "export")  # what a run writes


@dataclass
class RunDirClaim:
    """Whether this job may write the run dir's results: the failure policy asks before recording a failure."""

    run_dir: Path
    owned: bool = False  # the guard passed: the dir is this job's (fresh, resumed, or the old run moved aside)
    published: bool = False  # this job's results.json is written: a later error must not replace it

    def may_record_failure(self, error: BaseException) -> bool:
        if self.published or getattr(error, "keeps_run_dir", False):
            return False
        if self.owned or status(self.run_dir) == "failed":
            return True
        # before the claim (a config mistake): only in a fresh dir. A killed, interrupted or finished run's dir keeps
        # its files (a "failed" written there made the next plain run replace the run it would have refused)
        return not any((self.run_dir / name).exists() for name in OWN_FILES)

    def keep_earlier_record(self) -> None:
        """Before a failure is recorded over a results.json this job did not write, it and traceback.txt move to
        replaced-<time>/: a failed run's first traceback when a config mistake is made resuming it (formerly
        overwritten), and a completed run's results when the resume that continues it fails (formerly replaced by
        the failure record). The checkpoints stay, so that the corrected command can still resume it."""
        if self.published or not (self.run_dir / "results.json").exists():
            return
        try:
            _move_aside(self.run_dir, ("results.json", "traceback.txt"), "keeping the earlier record of")
        except OSError as e:  # the new record still reaches the dir and the console
            log.warning("could not keep the earlier record of %s (%s)", self.run_dir, e.strerror or e)


def requeued() -> bool:
    """Whether this process is a SLURM job that the cluster requeued (preempted, or timed out and resubmitted by
    submitit): the same job again, in its own run dir."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0
    except ValueError:
        return False


def resume_mode(cfg: DictConfig) -> str:
    """trainer.resume as "no" | "yes" | "auto"; a requeued SLURM job reads false as auto (formerly the requeued job
    was refused its own run dir, "already holds a run", and the sweep lost it)."""
    value = cfg.trainer.get("resume", False)
    if value in (False, None, "false", "False"):
        if requeued():
            log.warning("SLURM requeued this job (SLURM_RESTART_COUNT>0): it continues its run dir's last.pt, if any")
            return "auto"
        return "no"
    if value in (True, "true", "True"):
        return "yes"
    if value == "auto":
        return "auto"
    raise ConfigError(f"trainer.resume={value!r}: use false, true, or auto (resume when checkpoints/last.pt exists)")


def check_run_dir(cfg: DictConfig) -> str:
    """Read-only (every rank runs it): "fresh", "resume" or "replace", or RunDirInUse naming the run it would lose."""
    run_dir = Path(str(cfg.paths.output_dir))
    mode, last = resume_mode(cfg), run_dir / "checkpoints" / "last.pt"
    if mode == "yes" and not last.exists():
        raise ConfigError(
            f"trainer.resume=true but {last} does not exist: resume in the killed run's own dir, "
            f"`seqexp-train <its overrides> hydra.run.dir=<that run dir> trainer.resume=true` (or trainer.resume=auto)"
        )
    if mode != "no" and last.exists():
        asked = cfg.trainer.get("resume", False) not in (False, None, "false", "False")  # not a requeue's auto
        if asked and cfg.trainer.get("overwrite", False) is True:  # formerly overwrite was ignored: run continued
            resume = "true" if mode == "yes" else "auto"
            raise ConfigError(
                f"trainer.overwrite=true and trainer.resume={resume} contradict each other for {run_dir}, which holds "
                f"a resumable run: give trainer.overwrite=true to replace it (its files move to replaced-<time>/), or "
                f"trainer.resume to continue it, not both"
            )
        return "resume"
    held = [name for name in OWN_FILES if (run_dir / name).exists()]
    if not held:
        return "fresh"
    overwrite = cfg.trainer.get("overwrite", False)
    if not isinstance(overwrite, bool):  # a command-line `no` is the string "no", which Python reads as true
        raise ConfigError(f"trainer.overwrite={overwrite!r} must be true or false; {run_dir} was left as it is")
    if overwrite or status(run_dir) == "failed" or (requeued() and status(run_dir) != "completed"):
        return "replace"  # a requeued job without a snapshot starts again; its own first files move aside
    what = status(run_dir) or "killed or still running"
    raise RunDirInUse(
        f"the run dir {run_dir} already holds a run ({what}: {', '.join(held)}); its results and checkpoints were "
        f"left as they are. Continue it with trainer.resume=true, replace it with trainer.overwrite=true (the old "
        f"files move to replaced-<time>/), or pick another dir with hydra.run.dir=<dir>"
    )


def claim_run_dir(claim: RunDirClaim, mode: str, main_process: bool) -> None:
    """Rank 0 makes the dir, checks it is writable and moves a replaced run's files aside; then the dir is ours."""
    run_dir = claim.run_dir
    if main_process:
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
        if mode == "replace":
            _move_aside(run_dir)
    claim.owned = True


def _move_aside(run_dir: Path, names: tuple[str, ...] = OWN_FILES, what: str = "replacing the run in") -> Path:
    """Nothing a user had is deleted: the replaced run's files go to replaced-<time>/ inside the run dir."""
    target = run_dir / f"replaced-{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    target.mkdir(exist_ok=True)
    for name in names:
        if (run_dir / name).exists():
            shutil.move(str(run_dir / name), str(target / name))
    log.warning("%s %s: its files were moved to %s", what, run_dir, target)
    return target


def status(run_dir: Path) -> str | None:
    """The status results.json records (completed, failed, interrupted), or None."""
    try:
        return json.loads((run_dir / "results.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
