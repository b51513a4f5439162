"""The leaderboard and W&B: log it into a summary run, or build it from W&B runs (public API, online)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqexp.compare.format import cells, describe, header
from seqexp.compare.leaderboard import Row
from seqexp.compare.runs import RunRecord, record_from_results

log = logging.getLogger(__name__)
HISTORY_KEYS = ("epoch", "valid/ndcg@10", "wall_seconds")


def record_from_wandb_run(
    state: str, summary: dict[str, Any], source: str, history: Iterable[dict[str, Any]] = ()
) -> RunRecord:
    """A W&B run's state and summary (seqexp-train writes the results under summary["results"]) -> RunRecord.
    This is the interface the API path uses; it is tested on offline runs read back with `wandb leet`."""
    results = summary.get("results")
    if not isinstance(results, dict):
        return RunRecord(
            source,
            "unfinished" if state == "running" else "failed",
            error=f"W&B state {state!r}, no seqexp results in its summary",
        )
    return record_from_results(results, source, history=[dict(h) for h in history])


def records_from_wandb(project_path: str, group: str | None = None) -> list[RunRecord]:
    """All runs of ENTITY/PROJECT (optionally one group), through the W&B public API; needs network."""
    import wandb

    api = wandb.Api()
    runs = api.runs(project_path, filters={"group": group} if group else None)
    return [
        record_from_wandb_run(
            run.state, dict(run.summary), run.path and "/".join(run.path), run.scan_history(keys=list(HISTORY_KEYS))
        )
        for run in runs
        if run.job_type != "compare"
    ]


def log_leaderboard(
    rows: list[Row],
    others: list[RunRecord],
    plot: Path | None,
    project: str = "seqexp",
    entity: str | None = None,
    group: str | None = None,
    mode: str = "offline",
    run_dir: str | None = None,
) -> str | None:
    """One W&B run (job_type=compare) holding the leaderboard table (and the plot); returns its dir."""
    try:
        import wandb

        run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            job_type="compare",
            name="leaderboard",
            mode=mode,
            dir=run_dir,
            reinit="finish_previous",
        )
        payload: dict[str, Any] = {"leaderboard": wandb.Table(columns=header(rows), data=[cells(r) for r in rows])}
        if plot is not None:
            payload["leaderboard_plot"] = wandb.Image(str(plot))
        run.log(payload)
        run.summary["not_averaged"] = [describe(r) for r in others]
        run_path = run.dir
        run.finish()
        return run_path
    except Exception as e:  # tracking never costs the local leaderboard
        msg = f"logging the leaderboard to W&B failed ({type(e).__name__}: {e}); the local output is complete"
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
        return None
