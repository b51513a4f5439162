"""Experiment tracking. W&B is optional and never fatal: any tracking failure becomes a warning,
and the run and its local results (results.json, checkpoint) carry on.

Metric names (DESIGN.md): `train/loss`, `valid/ndcg@10`, `test/hr@10`, ... with `epoch` as the step.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """{'model': {'encoder': {'num_layers': 2}}} -> {'model.encoder.num_layers': 2} (lists kept whole)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


class NullTracker:
    """Tracks nothing (`logger=none`)."""

    def start(self, run_dir: Path, config: Mapping[str, Any], name: str, tags: list[str]) -> None:
        pass

    def log(self, metrics: Mapping[str, float], epoch: int) -> None:
        pass

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def summary(self, values: Mapping[str, Any]) -> None:
        pass

    def log_artifact(self, path: Path, name: str, kind: str) -> None:
        pass

    def log_checkpoint_artifact(self, path: Path, name: str) -> None:
        """The best checkpoint as a model artifact, when this tracker was configured to upload it."""
        if getattr(self, "log_checkpoint", False):
            self.log_artifact(path, name=name, kind="model")

    def finish(self, failed: bool = False) -> None:
        pass


class WandbTracker(NullTracker):
    """One W&B run per job, offline by default (`logger.mode`)."""

    def __init__(
        self,
        project: str = "seqexp",
        entity: str | None = None,
        mode: str = "offline",
        group: str | None = None,
        job_type: str = "train",
        tags: list[str] | None = None,
        init_timeout: float = 60.0,
        log_checkpoint: bool = False,
    ) -> None:
        self.project, self.entity, self.mode, self.group = project, entity, mode, group
        self.log_checkpoint = log_checkpoint  # upload the best checkpoint as an artifact (log_checkpoint_artifact)
        self.init_timeout = init_timeout
        self.job_type, self.tags = job_type, list(tags or [])
        self.run: Any = None

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # tracking must never lose a run
            self._warn(
                f"W&B {what} failed ({type(e).__name__}: {e}); the run goes on and its results stay in the run dir"
            )
            return None

    @staticmethod
    def _warn(msg: str) -> None:
        warnings.warn(msg, stacklevel=4)
        log.warning(msg)

    def start(self, run_dir: Path, config: Mapping[str, Any], name: str, tags: list[str]) -> None:
        """Start the W&B run. When an online start fails (no network, bad API key), the run is tracked
        offline in the run dir instead, and the warning gives the `wandb sync` command that uploads it."""

        def _init(mode: str) -> Any:
            import wandb

            run = wandb.init(
                project=self.project,
                entity=self.entity,
                mode=mode,
                group=self.group,
                job_type=self.job_type,
                tags=sorted(set(self.tags + tags)),
                name=name,
                config=flatten(config),
                dir=str(run_dir),
                reinit="finish_previous",
                settings=wandb.Settings(init_timeout=self.init_timeout),
            )
            run.define_metric("epoch")
            for prefix, summary in (("train/*", "min"), ("valid/*", "max")):
                run.define_metric(prefix, step_metric="epoch", summary=summary)
            return run

        os.makedirs(run_dir, exist_ok=True)
        try:
            self.run = _init(self.mode)
        except Exception as e:
            if self.mode != "online":
                self._warn(
                    f"W&B init failed ({type(e).__name__}: {e}); the run goes on untracked, "
                    f"its results stay in {run_dir}"
                )
                return
            self.run = self._guard("offline fallback", _init, "offline")
            if self.run is not None:
                self._warn(
                    f"W&B online init failed ({type(e).__name__}: {e}); tracking offline instead. "
                    f"Upload later with: wandb sync {Path(self.run.dir).parent}"
                )

    def log(self, metrics: Mapping[str, float], epoch: int) -> None:
        if self.run is not None:
            self._guard("log", self.run.log, {**metrics, "epoch": epoch})

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.run is not None:
            import wandb

            self._guard("table", lambda: self.run.log({key: wandb.Table(columns=columns, data=rows)}))

    def summary(self, values: Mapping[str, Any]) -> None:
        if self.run is not None:
            self._guard("summary", self.run.summary.update, dict(values))

    def log_artifact(self, path: Path, name: str, kind: str) -> None:
        """Upload a file (the best checkpoint, `logger.log_checkpoint=true`) as a W&B artifact."""
        if self.run is not None:
            import wandb

            def _log() -> None:
                artifact = wandb.Artifact(name, type=kind)
                artifact.add_file(str(path))
                self.run.log_artifact(artifact)

            self._guard("artifact", _log)

    def finish(self, failed: bool = False) -> None:
        if self.run is not None:
            self._guard("finish", self.run.finish, exit_code=1 if failed else 0)
            self.run = None
