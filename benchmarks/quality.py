"""Every encoder with its default settings against the reference numbers (issue #7): ml-100k with 3 seeds,
Amazon Beauty (the BERT4Rec authors' file) with 1 seed; leave-one-out, full ranking, max length 50. Each data
set is evaluated under its anchor's protocol: ml-100k as RecBole ran it (seen items NOT filtered,
../shared/peer/RESULTS.md; `--ml100k-filter-seen` for the filtered variant), Beauty as published (seen items
filtered). Prints a markdown table beside the anchors and writes benchmarks/results/quality.md.

    python benchmarks/quality.py --ml100k ../shared/data/ml-100k --beauty ../shared/data/beauty-bert4rec [--jobs 2]

Runs `seqexp-train` in subprocesses (--jobs at a time, one torch thread each); a finished run is reused, so an
interrupted benchmark continues where it stopped. Extra Hydra overrides after the options apply to every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _history import seconds_to  # benchmarks/_history.py
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path
from _runs import finished, finished_as_asked  # benchmarks/_runs.py

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["lstm", "gru", "sasrec", "bert4rec"]
# test NDCG@10 anchors: RecBole 1.2.1 on this machine (../shared/peer/RESULTS.md) and Klenitskiy & Vasilev,
# RecSys 2023 on Beauty (../shared/data/README.md); the LSTM has no published counterpart
ANCHORS = {
    ("ml100k", "lstm"): ("RecBole GRU4Rec", 0.0600),  # the nearest recurrent model RecBole has
    ("ml100k", "gru"): ("RecBole GRU4Rec", 0.0600),
    ("ml100k", "sasrec"): ("RecBole SASRec", 0.0564),
    ("ml100k", "bert4rec"): ("RecBole BERT4Rec", 0.0484),
    ("beauty", "sasrec"): ("SASRec+ (RecSys'23)", 0.0327),
    ("beauty", "bert4rec"): ("BERT4Rec (RecSys'23)", 0.0187),
}
# RecBole's best validation NDCG@10 in its 20-minute runs (../shared/peer/RESULTS.md, per-epoch column): the wall
# time we need to reach it is compared with RecBole's 1,200 s
ANCHOR_VALID = {"lstm": 0.065, "gru": 0.065, "sasrec": 0.055, "bert4rec": 0.056}


def run(data: str, path: str, model: str, seed: int, args: argparse.Namespace) -> dict | None:
    run_dir = args.workdir / f"{data}-{model}-s{seed}-filter{int(args.filter_seen[data])}"
    results = run_dir / "results.json"
    overrides = [
        f"data={data}", f"data.path={path}", f"model={model}", f"seed={seed}",
        f"eval.filter_seen={str(args.filter_seen[data]).lower()}", "trainer=long", "logger=none",
        "trainer.progress_bar=false", "trainer.num_threads=1", "trainer.resume=auto", "trainer.precision=no",
        f"hydra.run.dir={run_dir}", f"paths.cache_dir={args.workdir / 'cache'}", *args.override,
        *(args.beauty_override if data == "beauty" else []),
    ]  # fmt: skip
    done = finished(run_dir) if args.collect_only else finished_as_asked(run_dir, overrides)
    if done is not None or args.collect_only:
        return done
    cmd = [sys.executable, "-m", "seqexp.app.train", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise SystemExit(f"{data}/{model}/seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(results.read_text())


def _out_of_time(result: dict) -> bool:
    return bool(result["training"].get("out_of_time"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ml100k", help="folder holding ml-100k.inter (skipped when not given)")
    ap.add_argument("--beauty", help="folder holding beauty.txt (skipped when not given)")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-quality"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality.md")
    ap.add_argument("--ml100k-filter-seen", action="store_true", help="filter seen items on ml-100k too")
    ap.add_argument("--collect-only", action="store_true", help="tabulate finished runs only; start none")
    ap.add_argument(
        "--beauty-override",
        action="append",
        default=[],
        help="a Hydra override for the Beauty runs only, e.g. +model/loss=sampled (repeat for several)",
    )
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    args.filter_seen = {"ml100k": args.ml100k_filter_seen, "beauty": True}
    plan = [("ml100k", args.ml100k, m, s) for m in args.models for s in (0, 1, 2) if args.ml100k]
    plan += [("beauty", args.beauty, m, 0) for m in args.models if args.beauty]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda p: (p, run(*p, args)), plan))
    rows = []
    for data in ("ml100k", "beauty"):
        for model in args.models:
            runs = [r for (d, _, m, _), r in results if (d, m) == (data, model) and r is not None]
            if not runs:
                continue
            ndcg = np.array([r["metrics"]["test/ndcg@10"] for r in runs])
            hr = np.mean([r["metrics"]["test/hr@10"] for r in runs])
            mrr = np.mean([r["metrics"]["test/mrr@10"] for r in runs])
            anchor, value = ANCHORS.get((data, model), ("–", None))
            gap = f"{ndcg.mean() - value:+.4f}" if value is not None else "–"
            spread = f" ± {ndcg.std(ddof=1):.4f}" if len(ndcg) > 1 else ""
            wall = np.mean([r["timings"]["total_s"] for r in runs])
            epochs = "/".join(
                f"{r['training']['epochs_run']} ({r['training']['best_epoch']}){'†' if _out_of_time(r) else ''}"
                for r in runs
            )
            to_best = np.mean([seconds_to(r) for r in runs])
            to_anchor = "–"
            if data == "ml100k":
                reached = [seconds_to(r, ANCHOR_VALID[model]) for r in runs]
                to_anchor = "/".join("never" if t is None else f"{t:.0f}" for t in reached)
            rows.append(
                f"| {data} | {model} | {len(runs)} | {ndcg.mean():.4f}{spread} | {hr:.4f} | {mrr:.4f} | {anchor} "
                f"{format(value, '.4f') if value is not None else ''} | {gap} | {epochs} | {to_best:.0f} | "
                f"{to_anchor} | {wall:.0f} |"
            )
    text = "\n".join(
        [
            "# Quality against the anchors (test metrics, full ranking, max length 50)",
            "",
            f"Command: `python benchmarks/quality.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {args.jobs} runs at a time, one "
            "torch thread each; trainer=long (early stopping on validation NDCG@10).",
            "",
            f"Seen items filtered: ml-100k {args.filter_seen['ml100k']} (RecBole's protocol: false), Beauty true.",
            "",
            "| data | model | seeds | NDCG@10 (mean ± sd over seeds) | HR@10 | MRR@10 | anchor NDCG@10 | gap | "
            "epochs (best) | s to best valid | s to RecBole's best valid | wall s per run |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "s to RecBole's best valid: training + validation seconds until valid NDCG@10 first reached RecBole's best "
            "(GRU4Rec 0.065 for lstm and gru, SASRec 0.055, BERT4Rec 0.056; RecBole ran 1,200 s), per seed.",
            "",
            "† stopped by its time budget (`trainer.max_minutes`), not by early stopping: not converged.",
            "",
            "Overrides of each run (from its results.json):",
            "",
            *[
                f"- {d} {m} seed {seed}: `{' '.join(r.get('overrides', []))}`"
                for (d, _, m, seed), r in results
                if r is not None
            ],
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
