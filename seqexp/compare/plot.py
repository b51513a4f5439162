"""The leaderboard plot: test NDCG@10 with intervals, and validation NDCG@10 per epoch and per second."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from seqexp.compare.leaderboard import Row  # noqa: E402


def plot_leaderboard(rows: list[Row], path: str | Path) -> Path:
    fig, (bars, per_epoch, per_second) = plt.subplots(1, 3, figsize=(13, 3.8), dpi=80)
    labels = [f"{r.model}{' ' + r.variant if r.variant else ''}\n{r.data}" for r in rows]
    ndcg = [r.summaries["test/ndcg@10"] for r in rows]
    means = [s.mean for s in ndcg]
    # one seed has no interval: no error bar (nan would hide the bar)
    errors = [
        [s.mean - s.ci_low if s.n > 1 else 0.0 for s in ndcg],
        [s.ci_high - s.mean if s.n > 1 else 0.0 for s in ndcg],
    ]
    bars.barh(range(len(rows)), means, xerr=errors, color="tab:blue", alpha=0.8, capsize=3)
    bars.set_yticks(range(len(rows)), labels, fontsize=7)
    bars.invert_yaxis()
    bars.set_xlabel("test NDCG@10 (mean, 95% CI over seeds)")
    for i, row in enumerate(rows):
        color = f"C{i % 10}"
        for n, run in enumerate(row.runs):
            points = [h for h in run.history if "valid/ndcg@10" in h and "epoch" in h]  # a damaged entry: no point
            epochs = [h["epoch"] for h in points]
            values = [h["valid/ndcg@10"] for h in points]
            seconds = [h.get("wall_seconds", float("nan")) for h in points]
            label = labels[i].replace("\n", " · ") if n == 0 else None
            per_epoch.plot(epochs, values, color=color, alpha=0.7, lw=1, label=label)
            per_second.plot(seconds, values, color=color, alpha=0.7, lw=1)
    per_epoch.set_xlabel("epoch")
    per_second.set_xlabel("training + validation seconds")
    for ax in (per_epoch, per_second):
        ax.set_ylabel("valid NDCG@10")
        ax.grid(alpha=0.3)
    per_epoch.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
