"""Find runs and read them into `RunRecord`s: from run dirs (results.json) or from W&B runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# Overrides that do not change what a run measures: they never split leaderboard rows.
IGNORED_OVERRIDES = (
    "seed=",
    "hydra.",
    "paths.",
    "logger",
    "trainer.progress_bar",
    "trainer.num_threads",
    "data.path",
    "data=",
    "model=",
    "task_name",
    "trainer.resume",
)


@dataclass
class RunRecord:
    source: str  # run dir or W&B run path
    status: str  # completed | failed | unfinished
    model: str = "?"
    data: str = "?"
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)  # those that change what the run measures
    variant: str = ""  # set by the leaderboard: the overrides not shared by every compared run
    group: str | None = None  # the W&B group the run was logged in
    metrics: dict[str, float] = field(default_factory=dict)
    per_user_ids: list[str] = field(default_factory=list)
    per_user_ndcg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fingerprint: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    parameters: int | None = None
    train_seconds: float | None = None
    sequences_per_second: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    error: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.data, self.model, self.variant


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Every folder at or below `paths` that holds a results.json, or a .hydra/ but no results.json
    (a run that never finished); sorted, without duplicates."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        for marker in [p / "results.json", *p.rglob("results.json")]:
            if marker.exists():
                found.add(marker.parent)
        for hydra_dir in [p / ".hydra", *p.rglob(".hydra")]:
            if hydra_dir.is_dir():
                found.add(hydra_dir.parent)
    return sorted(found)


def read_run_dir(run_dir: Path) -> RunRecord:
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(overrides_file.read_text()) or []) if overrides_file.exists() else []
    results_path = run_dir / "results.json"
    if not results_path.exists():
        return RunRecord(
            str(run_dir), "unfinished", overrides=notable(overrides), error="no results.json (killed or still running)"
        )
    return record_from_results(json.loads(results_path.read_text()), str(run_dir), overrides)


def record_from_results(
    res: dict[str, Any], source: str, overrides: list[str] | None = None, history: list[dict[str, float]] | None = None
) -> RunRecord:
    """A results.json payload (or the same fields from a W&B run's summary) -> RunRecord."""
    kept = notable(res.get("overrides") or overrides or [])
    if res.get("status") != "completed":
        return RunRecord(
            source,
            res.get("status", "failed"),
            model=res.get("model", "?"),
            data=res.get("data", "?"),
            seed=res.get("seed"),
            overrides=kept,
            error=res.get("error", ""),
        )
    return RunRecord(
        source=source,
        status="completed",
        model=res["model"],
        data=res["data"],
        seed=res["seed"],
        overrides=kept,
        metrics=res["metrics"],
        per_user_ids=[str(u) for u in res["per_user"]["user_ids"]],
        per_user_ndcg=np.asarray(res["per_user"]["values"], dtype=np.float64),
        fingerprint=res["data_fingerprint"],
        protocol=res["protocol"],
        parameters=res["training"]["parameters"],
        train_seconds=res["timings"]["train_s"],
        sequences_per_second=res["throughput"]["train_sequences_per_s"],
        group=res.get("wandb_group"),
        history=history if history is not None else res.get("history", []),
    )


def notable(overrides: list[str]) -> list[str]:
    """The overrides that change what a run measures (seed, paths, logging and the like excluded)."""
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(IGNORED_OVERRIDES))


def read_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    return [read_run_dir(d) for d in find_run_dirs(paths)]
