"""Every encoder with its default settings on one data set: quality and speed in one table.

    python benchmarks/encoders.py --data ml100k --path ../shared/data/ml-100k            # seen items filtered
    python benchmarks/encoders.py --data ml100k --path ../shared/data/ml-100k --no-filter-seen   # RecBole's protocol

Runs `seqexp-train` in-process, one model after the other (never in parallel: timings are compared),
prints a markdown table and writes it to benchmarks/results/encoders_<data>[_unfiltered].md.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import torch
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path
from hydra import compose, initialize_config_dir

from seqexp.app.train import CONF_DIR, train

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "model",
    "test NDCG@10",
    "test HR@10",
    "test MRR@10",
    "valid NDCG@10",
    "epochs (best)",
    "s/epoch",
    "train seq/s",
    "train targets/s",
    "params",
    "wall s",
]


def run(model: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    overrides = [
        f"model={model}",
        f"data={args.data}",
        "logger=none",
        "trainer.progress_bar=false",
        "trainer.precision=no",  # fp32, as the committed results (trainer.precision=auto would pick bf16)
        f"trainer.max_epochs={args.max_epochs}",
        f"trainer.patience={args.patience}",
        f"eval.filter_seen={str(args.filter_seen).lower()}",
        f"seed={args.seed}",
        f"paths.output_dir={out_dir / model}",
        "trainer.overwrite=true",  # a fresh measurement replaces an earlier one (moved to replaced-<time>/)
        f"paths.cache_dir={out_dir / 'cache'}",
        *args.override,
    ]
    if args.path:
        overrides.append(f"data.path={args.path}")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    t0 = time.perf_counter()
    metrics, objects = train(cfg)
    wall = time.perf_counter() - t0
    res = objects["results"]
    tr, th = res["training"], res["throughput"]
    return [
        model,
        f"{metrics['test/ndcg@10']:.4f}",
        f"{metrics['test/hr@10']:.4f}",
        f"{metrics['test/mrr@10']:.4f}",
        f"{metrics['valid/ndcg@10']:.4f}",
        f"{tr['epochs_run']} ({tr['best_epoch']})",
        f"{res['timings']['train_s'] / tr['epochs_run']:.2f}",
        f"{th['train_sequences_per_s']:.0f}",
        f"{th['train_targets_per_s']:.0f}",
        f"{tr['parameters']:,}",
        f"{wall:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ml100k", help="a conf/data preset")
    parser.add_argument("--path", default=None, help="data.path for the preset")
    parser.add_argument("--models", nargs="+", default=["lstm", "gru", "sasrec", "bert4rec"])
    parser.add_argument("--no-filter-seen", dest="filter_seen", action="store_false")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", default="/tmp/seqexp-bench", help="run dirs go here")
    parser.add_argument("override", nargs="*", help="extra Hydra overrides for every model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # per-epoch progress
    torch.set_num_threads(args.threads)
    rows = [run(m, args, Path(args.out) / args.data) for m in args.models]
    suffix = "" if args.filter_seen else "_unfiltered"
    header = (
        f"# Encoders on {args.data} (seed {args.seed}, eval.filter_seen={args.filter_seen}, "
        f"max_epochs {args.max_epochs}, patience {args.patience})\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, {args.threads} threads. Command: `python benchmarks/encoders.py "
        f"--data {args.data}{' --path ' + args.path if args.path else ''}"
        f"{'' if args.filter_seen else ' --no-filter-seen'}`\n\n"
    )
    table = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    table += "".join("| " + " | ".join(r) + " |\n" for r in rows)
    out = ROOT / "benchmarks" / "results" / f"encoders_{args.data}{suffix}.md"
    emit(header + table, out)  # prose added by hand around the table survives a re-run
    print(f"written to {out}")


if __name__ == "__main__":
    main()
