"""A failed job leaves its failure where its results would be: results.json (status "failed" or "interrupted")
and traceback.txt in its own run dir, so that a sweep's siblings go on and the sweep report and
`seqexp-compare` can list it."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seqexp.io import write_json, write_text
from seqexp.ranks import is_main

log = logging.getLogger(__name__)


def record_failure(cfg: DictConfig, error: BaseException, overrides: list[str]) -> Path | None:
    """Write results.json and traceback.txt for `error` in the run dir (rank 0 only); returns the run dir, or
    None when there is nowhere to write. Whether to record at all is the caller's policy (app.train.task_wrapper)."""
    if not is_main():
        return None
    try:
        run_dir = Path(str(cfg.paths.output_dir))
        write_text(run_dir / "traceback.txt", "".join(traceback.format_exception(error)))
        write_json(run_dir / "results.json", _failure_record(cfg, error, overrides))
    except Exception as e:  # unwritable or full disk: the error itself still reaches the user
        log.warning("could not record the failure in the run dir (%s: %s)", type(e).__name__, e)
        return None
    return run_dir


def _failure_record(cfg: DictConfig, error: BaseException, overrides: list[str]) -> dict:
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # a bad interpolation may be the failure itself
        config = OmegaConf.to_container(cfg, resolve=False)
    return {
        "status": "interrupted" if isinstance(error, KeyboardInterrupt) else "failed",
        "error": f"{type(error).__name__}: {error}",
        "traceback": "traceback.txt",
        "model": str(cfg.model.get("name", "?")),
        "data": str(cfg.data.get("name", "?")),
        "seed": _seed(cfg),
        "overrides": overrides,
        "config": config,
    }


def _seed(cfg: DictConfig) -> int | str:
    try:
        return int(cfg.get("seed", 0))
    except (TypeError, ValueError):
        return str(cfg.get("seed"))
