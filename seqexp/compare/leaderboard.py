"""Group runs into leaderboard rows and compare each row with the baseline."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from seqexp.compare.runs import CompareError, RunRecord, canonical
from seqexp.compare.seeds import drop_repeated_seeds
from seqexp.compare.stats import NotComparable, Paired, Summary, paired_test, summarize
from seqexp.compare.validate import DIVERSITY, METRICS, PAIRED_DEFAULT, direction, finite, lower_is_better
from seqexp.data.splits import ADDED_LATER

PAIRING_PROTOCOL = ("split", "split_config", "ranking", "filter_seen", "ties")  # what must match for a paired test


@dataclass
class Row:
    data: str
    model: str
    variant: str
    runs: list[RunRecord]
    summaries: dict[str, Summary] = field(default_factory=dict)
    metric: str = "test/ndcg@10"  # the metric that ranks the rows and gives `relative_change`
    relative_change: float = math.nan  # of the mean of `metric` against the baseline row
    paired: Paired | None = None
    note: str = ""  # why there is no paired test, when there is none
    versus: str = ""  # the baseline row compared with, when it is not the baseline model's plain row ("lstm lr=0.01")
    paired_metric: str = PAIRED_DEFAULT  # the per-user metric of the paired test
    columns: tuple[str, ...] = ()  # metrics shown beside METRICS (--diversity)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs if r.seed is not None)

    def mean_of(self, attr: str) -> float:
        values = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return float(np.mean(values)) if values else math.nan

    def per_user_mean(self) -> tuple[list[str], np.ndarray]:
        """Per-user values of `paired_metric` averaged over this row's seeds (users in the first run's order)."""
        ids = self.runs[0].per_user_ids
        stacked = [_align(r, ids, self.paired_metric) for r in self.runs]
        return ids, np.mean(stacked, axis=0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "data": self.data,
            "model": self.model,
            "variant": self.variant,
            "seeds": self.seeds,
            "parameters": self.mean_of("parameters"),
            "train_seconds": self.mean_of("train_seconds"),
            "sequences_per_second": self.mean_of("sequences_per_second"),
            "ranked_by": self.metric,
            "metric_direction": direction(self.metric),
            "relative_change": self.relative_change,
            "versus": self.versus,
            "note": self.note,
        }
        for name, s in self.summaries.items():
            out[name] = {"mean": s.mean, "std": s.std, "ci95": [s.ci_low, s.ci_high]}
        if self.paired is not None:
            p = self.paired
            out["paired_vs_baseline"] = {
                "metric": self.paired_metric,
                "users": p.n_users,
                "mean_diff": p.mean_diff,
                "t_pvalue": p.t_pvalue,
                "wilcoxon_pvalue": p.wilcoxon_pvalue,
                "bootstrap95": [p.boot_low, p.boot_high],
            }
        return out


def _align(run: RunRecord, ids: list[str], metric: str = PAIRED_DEFAULT) -> np.ndarray:
    values = run.per_user_values(metric)
    if run.per_user_ids == ids:
        return values
    index = dict(zip(run.per_user_ids, values, strict=True))
    if set(index) != set(ids):
        raise NotComparable(f"{run.source} was evaluated on other users")
    return np.asarray([index[u] for u in ids])


def build_rows(
    runs: list[RunRecord],
    baseline: str = "lstm",
    metric: str = "test/ndcg@10",
    columns: tuple[str, ...] = (),
    paired_metric: str = PAIRED_DEFAULT,
    baseline_variant: Sequence[str] = (),
) -> list[Row]:
    """One row per (data, model, variant) over completed runs, ranked by `metric` best first (ascending where lower
    is better: validate.LOWER_IS_BETTER), with `columns` shown beside METRICS; each compared with the baseline
    model's row of the same data set: the row whose runs have every override of `baseline_variant` (two variants
    of one encoder compared), else its variant-free row when there is one. The paired tests use the per-user values
    of `paired_metric` (test NDCG@10, or a per-user beyond-accuracy metric such as test/novelty@10). A seed found
    twice in one row counts once (drop_repeated_seeds)."""
    completed = _name_data_by_fingerprint([r for r in drop_repeated_seeds(runs) if r.status == "completed"])
    shared = set.intersection(*(set(r.overrides) for r in completed)) if completed else set()
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for r in completed:
        own = [o for o in r.overrides if o not in shared]  # what sets this run apart, and its recorded settings
        r.variant = " ".join([*own, *([r.config_label] if r.config_label else [])])
        groups[r.key].append(r)
    rows = [
        Row(d, m, v, rs, metric=metric, paired_metric=paired_metric, columns=columns)
        for (d, m, v), rs in sorted(groups.items())
    ]
    names = tuple(dict.fromkeys((*METRICS, metric, *columns)))
    for row in rows:
        row.summaries = {name: summarize([r.metrics[name] for r in row.runs]) for name in names}
    for row in rows:
        base, why = _baseline_row(rows, row, baseline, baseline_variant)
        if base is None:
            row.note = why
        elif base is row:
            row.note = "baseline"
        else:
            row.versus = f"{baseline} {base.variant}" if base.variant and not baseline_variant else ""
            _compare(row, base)
    sign = 1.0 if lower_is_better(metric) else -1.0  # best first: ascending where lower is better
    return sorted(rows, key=lambda r: (r.data, sign * r.summaries[metric].mean))


def check_metric(runs: list[RunRecord], metric: str) -> None:
    """CompareError unless every completed run reports `metric` as a number (what --metric may name)."""
    completed = [r for r in runs if r.status == "completed"]
    lacking = [r for r in completed if not isinstance(r.metrics.get(metric), int | float)]
    if lacking:
        common = sorted(set.intersection(*(set(r.metrics) for r in completed)))
        raise CompareError(
            f"--metric {metric!r} is not in the results of {len(lacking)} of {len(completed)} runs "
            f"(e.g. {lacking[0].source}); choose one of: {', '.join(common)}"
        )
    broken = [r for r in completed if not finite(r.metrics[metric])]
    if broken:  # formerly a nan mean, ranked anywhere, and every comparison a bare "–"
        raise CompareError(
            f"--metric {metric!r} is {broken[0].metrics[metric]!r}, not a finite number, in {len(broken)} of "
            f"{len(completed)} runs (e.g. {broken[0].source}); rank by another metric, or move those runs aside"
        )


def check_paired_metric(runs: list[RunRecord], metric: str) -> None:
    """CompareError unless every completed run stores `metric` per user (what --paired-metric may name)."""
    if metric == PAIRED_DEFAULT:
        return
    completed = [r for r in runs if r.status == "completed"]
    lacking = [r for r in completed if metric not in r.per_user_metrics]
    if lacking:
        common = sorted(set.intersection(*(set(r.per_user_metrics) for r in completed)))
        raise CompareError(
            f"--paired-metric {metric!r} is not stored per user by {len(lacking)} of {len(completed)} runs "
            f"(e.g. {lacking[0].source}); choose {PAIRED_DEFAULT}{' or one of: ' + ', '.join(common) if common else ''}"
            " (results.json written before the beyond-accuracy metrics hold only per-user NDCG@10)"
        )


def diversity_columns(runs: list[RunRecord]) -> tuple[str, ...]:
    """The --diversity columns every completed run reports (ild@10 only where the data has categories)."""
    completed = [r for r in runs if r.status == "completed"]
    found = tuple(m for m in DIVERSITY if all(finite(r.metrics.get(m)) for r in completed))
    if not found:
        raise CompareError(
            "--diversity: no beyond-accuracy metrics (test/gini@10, test/novelty@10, ...) are reported by every run; "
            "results.json written before they existed lack them: rerun those runs"
        )
    return found


def check_baseline(runs: list[RunRecord], baseline: str, variant: Sequence[str] = ()) -> None:
    """CompareError when an explicitly named --baseline model (with --baseline-variant: a run of it with all those
    overrides) has no completed run (a typo, most often)."""
    completed = [r for r in runs if r.status == "completed"]
    models = sorted({r.model for r in completed})
    if baseline not in models:
        raise CompareError(f"--baseline {baseline!r} has no completed run here; the models are: {', '.join(models)}")
    own = [r for r in completed if r.model == baseline]
    if variant and not any(_has_variant(r, variant) for r in own):
        seen = sorted({" ".join([*r.overrides, *r.config_label.split()]) or "(no overrides)" for r in own})
        raise CompareError(
            f"--baseline-variant {' '.join(variant)!r}: no completed {baseline} run has all of these overrides; "
            f"its runs have: {'; '.join(seen)} (seed=, model=, data=, data.path, paths. and the keys --same-variant "
            "names are never part of a variant)"
        )


def _extra_overrides(run: RunRecord, variant: Sequence[str]) -> int:
    """How many overrides `run` has beyond `variant`; -1 when it lacks one of them. The settings of its config label
    count as overrides (a row told apart by its recorded config is named like one set on the command line)."""
    own = {canonical(o) for o in [*run.overrides, *run.config_label.split()]}
    wanted = {canonical(o) for o in variant}  # `+key=value` and `key=value` set the same value; 1e-3 = 0.001
    return len(own - wanted) if wanted <= own else -1


def _has_variant(run: RunRecord, variant: Sequence[str]) -> bool:
    return _extra_overrides(run, variant) >= 0


def _baseline_row(rows: list[Row], row: Row, baseline: str, variant: Sequence[str] = ()) -> tuple[Row | None, str]:
    """(the baseline model's row on `row`'s data, or None and why). With `variant`: the matching row with the fewest
    other overrides (so that `dropout=0.2` picks that row over `dropout=0.2 lr=3e-3`). Else, among the rows
    evaluated like `row` (the same protocol) when there are any: the one with `row`'s own variant (a sweep over
    `model=lstm,gru trainer.max_epochs=2,4` compares like with like), else the variant-free one, else the only one;
    several others are ambiguous (formerly the first in sort order was taken, unnamed)."""
    data = row.data
    candidates = [r for r in rows if r.data == data and r.model == baseline]
    if variant:
        extra = {id(r): max(_extra_overrides(run, variant) for run in r.runs) for r in candidates}
        matching = [r for r in candidates if all(_has_variant(run, variant) for run in r.runs)]
        fewest = [r for r in matching if extra[id(r)] == min(extra[id(m)] for m in matching)]
        if len(fewest) > 1:
            raise CompareError(
                f"--baseline-variant {' '.join(variant)!r} matches {len(fewest)} {baseline} rows on {data} "
                f"({'; '.join(r.variant or '(no variant)' for r in fewest)}); name the overrides that tell them apart"
            )
        return (fewest[0], "") if fewest else (None, f"no {baseline!r} runs with {' '.join(variant)} on {data}")
    alike = [r for r in candidates if _pairable(row, r)] or candidates
    if not alike:
        return None, f"no {baseline!r} runs on {data}"
    plain = next((r for r in alike if not r.variant), None)
    if row.model == baseline:  # a variant of the baseline model against its plain row; the plain row is the baseline
        return plain or row, ""
    chosen = next((r for r in alike if r.variant == row.variant), None) or plain
    if chosen is None and len(alike) > 1:
        shown = "; ".join(r.variant for r in alike[:3])
        return None, f"{len(alike)} {baseline!r} rows on {data} ({shown}): choose one with --baseline-variant"
    return chosen or alike[0], ""


def _pairable(row: Row, base: Row) -> bool:
    try:
        _check_pairable(row, base)
    except NotComparable:
        return False
    return True


def _name_data_by_fingerprint(runs: list[RunRecord]) -> list[RunRecord]:
    """Runs whose data set has one name but different contents (two CSV files, other cleaning settings, another
    generated log) never share a row or a baseline: in the copies returned, their data is `name@<fingerprint>`."""
    fingerprints: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        fingerprints[r.data].add(r.fingerprint)
    return [
        replace(r, data=f"{r.data}@{str(r.fingerprint)[:8] if r.fingerprint else '?'}")
        if len(fingerprints[r.data]) > 1
        else r
        for r in runs
    ]


def _compare(row: Row, base: Row) -> None:
    try:
        _check_pairable(row, base)
    except NotComparable as e:  # no change either: other data or another protocol makes the means incomparable
        row.note = f"not compared: {e}"
        return
    b = base.summaries[row.metric].mean
    row.relative_change = (row.summaries[row.metric].mean - b) / b if b else math.nan
    try:
        ids, model_values = row.per_user_mean()
        base_values = np.mean([_align(r, ids, row.paired_metric) for r in base.runs], axis=0)
        row.paired = paired_test(model_values, base_values)
    except NotComparable as e:
        row.note = f"not paired: {e}"


def _protocol_value(run: RunRecord, key: str) -> Any:
    """run.protocol[key]; a split config recorded before a split key existed reads as that key's default."""
    value = run.protocol.get(key)
    if key == "split_config" and isinstance(value, dict):
        return dict(sorted({**ADDED_LATER, **value}.items()))
    return value


def _check_pairable(row: Row, base: Row) -> None:
    fingerprints = {r.fingerprint for r in row.runs + base.runs}
    if len(fingerprints) > 1:
        raise NotComparable("different data fingerprints (another file or other cleaning settings)")
    protocols = {tuple(str(_protocol_value(r, k)) for k in PAIRING_PROTOCOL) for r in row.runs + base.runs}
    if len(protocols) > 1:
        raise NotComparable(f"different evaluation protocols ({', '.join(PAIRING_PROTOCOL)})")
