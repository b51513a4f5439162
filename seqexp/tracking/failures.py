"""A failed job leaves its failure where its results would be: results.json (status "failed") and
traceback.txt in its own run dir, so that a sweep's siblings go on and the sweep report can list it."""

from __future__ import annotations

import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seqexp.io import write_json
from seqexp.ranks import is_main


def record_failure(cfg: DictConfig, error: BaseException) -> Path | None:
    """Write results.json and traceback.txt for `error` in the run dir (rank 0 only); returns the run dir."""
    if not is_main():
        return None
    try:
        run_dir = Path(str(cfg.paths.output_dir))
    except Exception:  # the run dir itself did not resolve: nowhere to write
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    (run_dir / "traceback.txt").write_text(text)
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # a bad interpolation may be the failure itself
        config = OmegaConf.to_container(cfg, resolve=False)
    write_json(
        run_dir / "results.json",
        {
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": "traceback.txt",
            "model": str(cfg.model.get("name", "?")),
            "data": str(cfg.data.get("name", "?")),
            "seed": int(cfg.get("seed", 0)),
            "overrides": _overrides(),
            "config": config,
        },
    )
    return run_dir


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
