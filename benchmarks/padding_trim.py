"""Training-step time with and without skipping all-padding columns, per encoder, on one data set.

    python benchmarks/padding_trim.py --data beauty --path ../shared/data/beauty-bert4rec [--steps 40]

Same process, same batches, the two variants interleaved step by step (so machine noise hits both alike);
prints seconds per step and the ratio, and writes benchmarks/results/padding_trim_<data>.md. Not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path
from hydra import compose, initialize_config_dir

from seqexp.app.train import CONF_DIR
from seqexp.data import load_data
from seqexp.data.loader import train_tensors
from seqexp.data.splits import leave_one_out
from seqexp.model.recommender import build_model, columns_to_keep

ROOT = Path(__file__).resolve().parents[1]


def step_seconds(model, optimizer, windows: torch.Tensor, trim: bool, gen: torch.Generator) -> float:
    if trim:
        windows = windows[:, -columns_to_keep(windows.shape[1], int((windows > 0).sum(1).max())) :]
    t0 = time.perf_counter()
    inputs, targets, side = model.training_batch(windows, generator=gen)
    loss = model(inputs, targets, side)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - t0


def profile_steps(model, optimizer, windows: torch.Tensor, name: str, steps: int = 5) -> None:
    """Where a (trimmed) training step spends its time: torch.profiler's operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in range(steps):
            step_seconds(model, optimizer, windows, True, torch.Generator().manual_seed(s))
    print(f"## {name}: {steps} training steps\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="beauty")
    ap.add_argument("--path", required=True)
    ap.add_argument("--models", nargs="+", default=["lstm", "gru", "sasrec", "bert4rec"])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--profile", action="store_true", help="also print torch.profiler's top operators per model")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    for name in args.models:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"data={args.data}", f"data.path={args.path}", f"model={name}"])
        data = load_data(cfg.data, cfg.paths.cache_dir)
        split = leave_one_out(data)
        train = train_tensors(data, split, int(cfg.data.max_len), cfg.data.get("train_stride"))
        model = build_model(cfg.model, data.n_items, torch.from_numpy(split.item_counts(data))).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        bs = int(cfg.model.batch_size)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        times = {True: 0.0, False: 0.0}
        for s in range(args.steps):
            batch = train.windows[order[s * bs : (s + 1) * bs]]
            for trim in (s % 2 == 0, s % 2 == 1):  # alternate which variant goes first
                times[trim] += step_seconds(model, optimizer, batch, trim, torch.Generator().manual_seed(s))
        if args.profile:
            profile_steps(model, optimizer, train.windows[order[:bs]], name)
        full, trimmed = times[False] / args.steps, times[True] / args.steps
        rows.append(f"| {name} | {bs} | {full * 1000:.1f} | {trimmed * 1000:.1f} | {full / trimmed:.2f}x |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"# Skipping all-padding columns: training step time on {args.data}",
            "",
            f"Command: `python benchmarks/padding_trim.py --data {args.data} --path {args.path} "
            f"--steps {args.steps}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch "
            "threads; variants interleaved step by step on the same batches.",
            "",
            "| model | batch | ms/step, full windows | ms/step, trimmed | speed-up |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    emit(text, ROOT / "benchmarks" / "results" / f"padding_trim_{args.data}.md")


if __name__ == "__main__":
    main()
