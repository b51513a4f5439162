"""bf16 autocast against fp32 on the CPU, per encoder, on Amazon Beauty (issue #16 item 4): the two runs of each
encoder start from the same seed and train side by side (one torch thread each, so the machine's load falls on
both alike) for `--epochs` epochs; the table gives their validation NDCG@10 after every epoch and their
training seconds per epoch.

    python benchmarks/bf16_cpu.py --beauty ../shared/data/beauty-bert4rec [--models lstm gru bert4rec esasrec]

A finished pair is reused (`trainer.resume=auto`), so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _markdown import emit  # benchmarks/_markdown.py
from _runs import ROOT, finished, finished_as_asked, train  # benchmarks/_runs.py

PRECISION = {"fp32": "no", "bf16": "bf16"}


def run(model: str, variant: str, args: argparse.Namespace) -> dict | None:
    run_dir = args.workdir / f"{model}-{variant}"
    overrides = [
            "data=beauty", f"data.path={args.beauty}", f"model={model}",
            "eval.filter_seen=true", "logger=none", "trainer.progress_bar=false", "trainer.num_threads=1",
            "trainer.resume=auto", "trainer.save_checkpoint=false", f"trainer.max_epochs={args.epochs}",
            f"trainer.precision={PRECISION[variant]}", f"hydra.run.dir={run_dir}",
            f"paths.cache_dir={args.workdir / 'cache'}", *args.override,
    ]  # fmt: skip
    if finished_as_asked(run_dir, overrides) is None and not train(overrides, threads=1, label=f"{model} {variant}"):
        return None
    return finished(run_dir)


def rows(model: str, fp32: dict, bf16: dict) -> list[str]:
    out = []
    for a, b in zip(fp32["history"], bf16["history"], strict=False):
        sa, sb = a["train/epoch_seconds"], b["train/epoch_seconds"]
        out.append(
            f"| {model} | {a['epoch']} | {a['valid/ndcg@10']:.4f} | {b['valid/ndcg@10']:.4f} | "
            f"{b['valid/ndcg@10'] - a['valid/ndcg@10']:+.4f} | {sa:.0f} | {sb:.0f} | {sa / sb:.2f}x |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beauty", required=True, help="folder holding beauty.txt")
    ap.add_argument("--models", nargs="+", default=["lstm", "gru", "sasrec", "bert4rec", "esasrec"])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-bf16"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bf16_cpu.md")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    args.workdir = args.workdir.resolve()
    table = []
    for model in args.models:  # the two variants of one encoder run at the same time
        with ThreadPoolExecutor(2) as pool:
            fp32, bf16 = pool.map(lambda v, m=model: run(m, v, args), ["fp32", "bf16"])
        if fp32 is not None and bf16 is not None:
            table += rows(model, fp32, bf16)
    text = "\n".join(
        [
            "# bf16 autocast vs fp32 on the CPU, Amazon Beauty (40,226 users, 54,542 items)",
            "",
            f"Command: `python benchmarks/bf16_cpu.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores; the fp32 and bf16 runs of an "
            "encoder train at the same time, one torch thread each, same seed and batches; each card's defaults.",
            "",
            "| model | epoch | valid NDCG@10 fp32 | valid NDCG@10 bf16 | bf16 - fp32 | train s fp32 | train s bf16 | "
            "speed-up |",
            "|---|---|---|---|---|---|---|---|",
            *table,
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
