"""Where a full-ranking evaluation batch spends its time, at a catalogue's size (issue #7 profile).

    python benchmarks/eval_breakdown.py [--items 54543 --batch 512 --dim 64 --threads 1]

Random hidden states and item vectors of Amazon Beauty's size; each stage of seqexp.evaluation.protocol.evaluate timed
alone (median of --repeats), beside the way it was done before (every row's rank counted over the catalogue).
Random vectors are a pessimistic case for the bounded count: few targets reach the top 20, as with a weak model.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

from seqexp.evaluation.metrics import mask_scores, ranking_metrics, target_positions

ROOT = Path(__file__).resolve().parents[1]


def _int64_counts(scores: torch.Tensor, targets: torch.Tensor) -> None:
    t = scores.gather(1, targets[:, None])
    (scores > t).sum(dim=1), (scores == t).sum(dim=1)


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=54543, help="catalogue size + padding (Beauty: 54,543)")
    ap.add_argument("--batch", type=int, default=512, help="eval.batch_size")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seen", type=int, default=9, help="history items masked per user (Beauty: 8.8 on average)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    h, items = torch.randn(args.batch, args.dim, generator=gen), torch.randn(args.items, args.dim, generator=gen)
    targets = torch.randint(1, args.items, (args.batch,), generator=gen)
    rows = torch.arange(args.batch).repeat_interleave(args.seen)
    cols = torch.randint(1, args.items, (args.batch * args.seen,), generator=gen)
    scores = h @ items.T
    mask_scores(scores, rows, cols)
    top = scores.topk(20, dim=1).values
    stages = {
        "scores = h @ E^T (one matmul)": lambda: h @ items.T,
        "mask padding + seen items (in place)": lambda: mask_scores(scores, rows, cols),
        "top-20 (bounds the ranks; its first 10 = coverage set)": lambda: scores.topk(20, dim=1),
        "target rank: exact counts for rows that reach the top 20": lambda: target_positions(scores, targets, top),
        "before: count every row, int32": lambda: target_positions(scores, targets),
        "before: count every row, int64 (first version)": lambda: _int64_counts(scores, targets),
        "before: separate top-10 for coverage": lambda: scores.topk(10, dim=1),
        "metrics from ranks": lambda: ranking_metrics(*target_positions(scores, targets, top)),
    }
    ms = {name: timed(fn, args.repeats) * 1000 for name, fn in stages.items()}
    current = sum(v for k, v in ms.items() if not k.startswith("before"))
    rows_md = [f"| {k} | {v:.1f} | {100 * v / current:.0f}% |" for k, v in ms.items()]
    text = "\n".join(
        [
            f"# Evaluation batch breakdown ({args.batch} users x {args.items:,} items, D={args.dim})",
            "",
            f"Command: `python benchmarks/eval_breakdown.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} shared cores, {args.threads} torch "
            f"thread(s), load average {os.getloadavg()[0]:.1f}; median of {args.repeats}.",
            "",
            "| stage | ms per batch | share of the current total |",
            "|---|---|---|",
            *rows_md,
            "",
        ]
    )
    emit(text, ROOT / "benchmarks" / "results" / "eval_breakdown.md")


if __name__ == "__main__":
    main()
