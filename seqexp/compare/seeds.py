"""A seed counts once per leaderboard row: a run dir copied, or one seed rerun in another dir, is skipped with a
warning that names the run kept."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from seqexp.compare.configs import label_configs
from seqexp.compare.runs import RunRecord
from seqexp.compare.validate import METRICS


def drop_repeated_seeds(runs: list[RunRecord]) -> list[RunRecord]:
    """`runs` with each completed run that repeats a seed of its row turned into a skipped record that names the run
    kept: the first in path order (the same on every machine; file times change when runs are copied). A run dir
    copied, or one seed rerun in another dir, is one seed: counted twice, it would narrow mean ± sd and weigh that
    seed twice in the per-user means the paired test compares. Rows are (data, model, variant), as build_rows makes
    them; run it after --same-variant."""
    label_configs(runs)  # runs of other recorded settings are other rows, not repeated seeds
    kept: dict[tuple[Any, ...], RunRecord] = {}
    for r in sorted((r for r in runs if r.status == "completed"), key=lambda r: r.source):
        kept.setdefault(_seed_key(r), r)
    return [
        _repeated(r, kept[_seed_key(r)]) if r.status == "completed" and kept[_seed_key(r)] is not r else r for r in runs
    ]


def _seed_key(run: RunRecord) -> tuple[Any, ...]:
    """What puts two runs in one leaderboard row (the data set's contents too), and their seed."""
    return run.data, run.fingerprint, run.model, tuple(sorted(run.overrides)), run.config_label, run.seed


def _repeated(run: RunRecord, first: RunRecord) -> RunRecord:
    """`run` as a skipped record: its seed is already counted from `first`."""
    variant = f" with {' '.join(run.overrides)}" if run.overrides else ""
    why = (
        f"seed {run.seed} of {run.data} / {run.model}{variant} is already counted from {first.source} (kept: the "
        f"first in path order; {_difference(run, first)}); a seed counts once: move or delete one of the two run "
        "dirs, or rerun it with another seed"
    )
    return replace(run, status="skipped", error=why)


def _difference(run: RunRecord, first: RunRecord) -> str:
    """How the test results of two runs of one seed differ, in words (the leaderboard's metrics named first)."""
    tests = dict.fromkeys((*METRICS, *sorted(k for k in {*run.metrics, *first.metrics} if k.startswith("test/"))))
    differ = [k for k in tests if run.metrics.get(k) != first.metrics.get(k)]
    if differ:
        name = differ[0]
        return f"the test metrics differ: {name} {first.metrics.get(name)} kept, {run.metrics.get(name)} skipped"
    if not np.array_equal(run.per_user_ndcg, first.per_user_ndcg):
        return "the per-user test values differ"
    return "same test metrics: a copy?"
