"""Statistics for the leaderboard: seed intervals and paired per-user tests against a baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Summary:
    n: int
    mean: float
    std: float  # sample std over seeds (ddof=1); nan for one seed
    ci_low: float  # 95% t-interval of the mean; nan for one seed
    ci_high: float


def summarize(values: list[float] | np.ndarray) -> Summary:
    v = np.asarray(values, dtype=np.float64)
    n, mean = len(v), float(v.mean())
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass
class Paired:
    n_users: int
    mean_diff: float  # mean over users of (model - baseline) per-user NDCG@10
    t_pvalue: float  # paired t-test
    wilcoxon_pvalue: float  # Wilcoxon signed-rank (zero differences dropped); nan when all differences are 0
    boot_low: float  # 95% bootstrap interval of mean_diff (users resampled)
    boot_high: float


class NotComparable(ValueError):
    """Two groups of runs cannot be paired: different data, protocol or users."""


def paired_test(model: np.ndarray, baseline: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Paired:
    """Paired tests on per-user values (same users, same order). Users whose value is undefined (null, stored as
    NaN: e.g. a list metric of a user shown fewer than two items) on either side are left out; formerly one of them
    made every number of the test nan."""
    model, baseline = np.asarray(model, np.float64), np.asarray(baseline, np.float64)
    if model.shape != baseline.shape:
        raise NotComparable(f"per-user arrays differ in length ({len(model)} vs {len(baseline)})")
    defined = np.isfinite(model) & np.isfinite(baseline)
    if not defined.any():
        raise NotComparable("no user has the paired metric defined in both rows")
    model, baseline = model[defined], baseline[defined]
    diff = model - baseline
    if np.all(diff == 0):  # identical per user: no evidence of a difference (scipy's Wilcoxon would say nan)
        return Paired(len(diff), 0.0, 1.0, 1.0, 0.0, 0.0)
    t_p = float(stats.ttest_rel(model, baseline).pvalue)
    w_p = float(stats.wilcoxon(model, baseline, zero_method="wilcox").pvalue)
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return Paired(len(diff), float(diff.mean()), t_p, w_p, float(low), float(high))
