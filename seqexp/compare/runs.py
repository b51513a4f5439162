"""Find runs and read them into `RunRecord`s: from run dirs (results.json) or from W&B runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqexp.compare.configs import flat_config
from seqexp.compare.validate import FIELDS, PAIRED_DEFAULT, mismatch, problem, shape_problem
from seqexp.errors import CompareError
from seqexp.evaluation.protocol import NO_RESULT_CHANGE

# Overrides that do not change what a run measures, or that name it elsewhere (seed, data, model): never a variant.
IGNORED_OVERRIDES = ("seed=", "data.path", "data=", "model=", "task_name", *NO_RESULT_CHANGE)


@dataclass
class RunRecord:
    source: str  # run dir or W&B run path
    status: str  # completed | failed | unfinished | skipped (unreadable, not ours, never trained)
    model: str = "?"
    data: str = "?"
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)  # those that change what the run measures
    variant: str = ""  # set by the leaderboard: the overrides not shared by every compared run
    group: str | None = None  # the W&B group the run was logged in
    metrics: dict[str, float] = field(default_factory=dict)
    per_user_ids: list[str] = field(default_factory=list)
    per_user_ndcg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    per_user_metrics: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. test/novelty@10, same user order
    fingerprint: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    parameters: int | None = None
    train_seconds: float | None = None
    sequences_per_second: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    error: str = ""
    config: dict[str, str] = field(default_factory=dict)  # recorded settings (configs.flat_config), for telling apart
    config_label: str = ""  # set by configs.label_configs: the recorded settings that set it apart from its row
    recorded_overrides: tuple[str, ...] = ()  # `overrides` as read, before --same-variant drops any

    @property
    def key(self) -> tuple[str, str, str]:
        return self.data, self.model, self.variant

    def per_user_values(self, metric: str = PAIRED_DEFAULT) -> np.ndarray:
        """Per-user values of `metric` in the order of per_user_ids (test NDCG@10 or a per_user_metrics key)."""
        return self.per_user_ndcg if metric == PAIRED_DEFAULT else self.per_user_metrics[metric]


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Every folder at or below `paths` that holds a results.json, or a .hydra/ but no results.json
    (a run that never finished); sorted, without duplicates. A path may also be a results.json itself."""
    found: set[Path] = set()
    paths = list(paths)
    for p in map(Path, paths):
        if not p.exists():
            raise CompareError(f"{p} does not exist; give run dirs or folders holding them")
        if p.is_file():
            if p.name != "results.json":
                raise CompareError(f"{p} is a file; give a run dir (or its results.json) or a folder of run dirs")
            found.add(p.parent)
            continue
        here = {m.parent for m in [p / "results.json", *p.rglob("results.json")] if m.exists()}
        here |= {h.parent for h in [p / ".hydra", *p.rglob(".hydra")] if h.is_dir()}
        if not here and len(paths) > 1:  # one empty folder among several: a typo or the wrong sweep, not silence
            raise CompareError(f"no run dirs under {p} (a run dir holds results.json or .hydra/); drop it or fix it")
        found |= here
    return sorted(found)


def read_run_dir(run_dir: Path) -> RunRecord:
    """One run dir -> RunRecord; a results.json we cannot read or do not recognise gives a "skipped" record
    that says why (one bad file never costs the leaderboard of the others)."""
    try:
        overrides = _read_overrides(run_dir / ".hydra" / "overrides.yaml")
    except _Unreadable as e:
        return RunRecord(str(run_dir), "skipped", error=str(e))
    results_path = run_dir / "results.json"
    if not results_path.exists():
        return RunRecord(
            str(run_dir), "unfinished", overrides=notable(overrides), error="no results.json (killed or still running)"
        )
    try:
        payload = json.loads(results_path.read_text(encoding="utf-8"))
    except OSError as e:
        return RunRecord(str(run_dir), "skipped", error=f"cannot read {results_path}: {e.strerror or e}")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        return RunRecord(str(run_dir), "skipped", error=f"{results_path} is not valid JSON (truncated?): {e}")
    return record_from_results(payload, str(run_dir), overrides)


class _Unreadable(Exception):
    pass


def _read_overrides(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise _Unreadable(f"cannot read {path}: {e}") from e
    if not isinstance(overrides, list):
        raise _Unreadable(f"{path} is not a list of overrides")
    return [str(o) for o in overrides]


def record_from_results(
    res: Any, source: str, overrides: list[str] | None = None, history: list[dict[str, float]] | None = None
) -> RunRecord:
    """A results.json payload (or the same fields from a W&B run's summary) -> RunRecord.
    Only a payload that passes `validate.problem` is "completed"; others are "failed" (the run said so),
    or "skipped" with the reason (not ours, not finished, never trained)."""
    shape = shape_problem(res)
    if shape:
        return RunRecord(source, "skipped", error=shape)
    kept = notable(_valid(res, "overrides") or overrides or [])
    status = res["status"]
    if status != "completed":
        return RunRecord(
            source,
            "failed" if status == "failed" else "skipped",
            model=_valid(res, "model") or "?",
            data=_valid(res, "data") or "?",
            seed=_valid(res, "seed"),
            overrides=kept,
            error=str(res.get("error") or "") if status == "failed" else f"status {status!r}, not 'completed'",
        )
    why = problem(res)
    if why:
        return RunRecord(source, "skipped", model=_valid(res, "model") or "?", seed=_valid(res, "seed"), error=why)
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
        per_user_metrics={  # absent from results.json written before the beyond-accuracy metrics
            str(k): np.asarray(v, dtype=np.float64) for k, v in (res.get("per_user_metrics") or {}).items()
        },
        fingerprint=res["data_fingerprint"],
        protocol=res["protocol"],
        parameters=res["training"]["parameters"],
        train_seconds=res["timings"]["train_s"],
        sequences_per_second=res["throughput"]["train_sequences_per_s"],
        group=res.get("wandb_group"),
        history=history if history is not None else res.get("history") or [],
        config=flat_config(res.get("config")),
        recorded_overrides=tuple(kept),
    )


def _valid(res: dict[str, Any], key: str) -> Any:
    """res[key] when it has the type validate.FIELDS gives it, else None (what a run that is not ranked still shows:
    its model and seed, never a value that breaks the listing)."""
    value = res.get(key)
    return None if mismatch(value, FIELDS[key]) else value


def notable(overrides: list[str]) -> list[str]:
    """The overrides that change what a run measures (seed, paths, logging and the like excluded), each with its
    number written one way (`canonical`)."""
    return sorted(canonical(o) for o in overrides if not o.lstrip("+~").startswith(IGNORED_OVERRIDES))


def canonical(override: str) -> str:
    """`key=value` written one way: without `+`/`++` (they add the key, to the same value) and with a plain number or
    boolean as Hydra reads it: `lr=1e-3`, `+lr=0.001` and `lr=0.0010` are one variant (`lr=0.001`), `flag=True`
    and `flag=true` too, as are `dropout=0` and `dropout=0.0`; any other value is kept as typed."""
    key, sep, value = override.lstrip("+").partition("=")
    text = value.strip()
    if not sep:
        return override
    if text.lower() in ("true", "false"):
        return f"{key}={text.lower()}"
    if re.fullmatch(r"[+-]?\d+", text):
        return f"{key}={int(text)}"
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        number = float(text)  # a whole number written as 0.0 or 1e3 is the 0 or 1000 of another run
        return f"{key}={int(number) if number.is_integer() else number!r}"
    return f"{key}={value}"


def read_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    """Every run below `paths`; CompareError when there is none (a typo in the path, the wrong folder)."""
    paths = list(paths)
    run_dirs = find_run_dirs(paths)
    if not run_dirs:
        where = ", ".join(map(str, paths))
        raise CompareError(f"no run dirs under {where} (a run dir holds results.json or .hydra/)")
    return [_replaced(d) if _moved_aside(d, paths) else read_run_dir(d) for d in run_dirs]


def _moved_aside(run_dir: Path, paths: list[str | Path]) -> bool:
    """A run that trainer.overwrite=true (or a rerun of a failed run) moved into <run dir>/replaced-<time>/, found
    by searching a folder above it: not a seed of its variant. Given as a path itself, it is compared."""
    for p in map(Path, paths):
        try:
            parts = run_dir.relative_to(p).parts
        except ValueError:
            continue
        if any(part.startswith("replaced-") for part in parts):
            return True
    return False


def _replaced(run_dir: Path) -> RunRecord:
    why = "a replaced run, moved aside when its dir was reused; give this folder itself to compare it"
    return RunRecord(str(run_dir), "skipped", error=why)
