"""Model selection on one validation or on the mean of the last k (`trainer.selection_window`), seed by seed.

On a flat, noisy validation curve the best single validation is partly luck: it picks an epoch whose score was
high by chance (and a lone high restarts patience, or ends the run 'patience' epochs later). Averaging the last k
validations selects the end of a good stretch instead. CPU training is deterministic for a seed, so the runs of
one seed follow the same curve under every window: only which epoch is kept, and when patience ends the run,
differ; the test numbers are paired per seed and per user (seqexp-compare --baseline-variant).

    python benchmarks/selection_window.py --path ../shared/data/ml-100k [--models bert4rec] [--windows 1 3]
        [--seeds 0 1 2] [--jobs 2]

Writes benchmarks/results/selection_window.md. The window is a protocol choice made before looking at test: this
script reports test for each window to show what the choice does, it never picks one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _markdown import emit  # benchmarks/_markdown.py
from _runs import ROOT, finished, finished_as_asked, train  # benchmarks/_runs.py
from defaults_rank import DATASETS  # data set -> (overrides, folder): the same protocol as there


def run_dir(args: argparse.Namespace, model: str, window: int, seed: int) -> Path:
    return args.workdir / f"{args.data}-{model}-window{window}-seed{seed}"


def run(args: argparse.Namespace, model: str, window: int, seed: int) -> dict | None:
    """results.json of one finished run (trained here unless it already finished); None when it failed."""
    where = run_dir(args, model, window, seed)
    overrides = [
            *DATASETS[args.data][0], f"data.path={args.path}", f"model={model}", f"seed={seed}",
            f"trainer.selection_window={window}", "logger=none", "trainer.progress_bar=false", "trainer.num_threads=1",
            "trainer.resume=auto", "trainer.save_checkpoint=false", f"hydra.run.dir={where}",
            f"paths.cache_dir={args.workdir / 'cache'}", *args.override,
    ]  # fmt: skip
    label = f"{model}/window {window}/seed {seed}"
    if finished_as_asked(where, overrides) is None and not train(overrides, threads=1, label=label):
        return None
    return finished(where)


def table(args: argparse.Namespace, results: dict[tuple[str, int, int], dict | None]) -> list[str]:
    metric = "valid/ndcg@10"
    lines = [
        "| model | window | seed | best epoch (run) | valid NDCG@10 there | window mean there | test NDCG@10 | "
        "test HR@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = [
        "",
        "| model | window | test NDCG@10 mean ± sd | best epoch mean | epochs run mean |",
        "|---|---|---|---|---|",
    ]
    for model in args.models:
        for window in args.windows:
            tests, bests, runs = [], [], []
            for seed in args.seeds:
                res = results[(model, window, seed)]
                if res is None:
                    lines.append(f"| {model} | {window} | {seed} | failed | – | – | – | – |")
                    continue
                best = res["training"]["best_epoch"]
                row = next(h for h in res["history"] if h["epoch"] == best)
                mean = row.get(f"{metric}_mean{window}", row[metric])
                test = res["metrics"]["test/ndcg@10"]
                tests.append(test)
                bests.append(best)
                runs.append(res["training"]["epochs_run"])
                lines.append(
                    f"| {model} | {window} | {seed} | {best} ({runs[-1]}) | {row[metric]:.4f} | {mean:.4f} | "
                    f"{test:.4f} | {res['metrics']['test/hr@10']:.4f} |"
                )
            if tests:
                sd = statistics.stdev(tests) if len(tests) > 1 else float("nan")
                summary.append(
                    f"| {model} | {window} | {statistics.mean(tests):.4f} ± {sd:.4f} ({len(tests)} seeds) | "
                    f"{statistics.mean(bests):.1f} | {statistics.mean(runs):.1f} |"
                )
    return lines + summary


def paired(args: argparse.Namespace, model: str) -> list[str]:
    """seqexp-compare's per-user paired tests of every window against window 1 (or the smallest window run)."""
    dirs = [
        str(run_dir(args, model, w, s))
        for w in args.windows
        for s in args.seeds
        if finished(run_dir(args, model, w, s))
    ]
    base = min(args.windows)
    cmd = [
        "seqexp-compare", *dirs, "--baseline", model, "--baseline-variant", f"trainer.selection_window={base}",
        "--format", "markdown", "--same-variant", "trainer.resume",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    out = proc.stdout if proc.returncode == 0 else f"seqexp-compare failed:\n\n    {proc.stderr.strip()[-1500:]}"
    shown = " ".join(["seqexp-compare", "<run dirs>", *cmd[1 + len(dirs) :]])
    return ["", f"#### {model}: paired against window {base} (`{shown}`)", "", out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="ml100k", choices=list(DATASETS))
    ap.add_argument("--path", type=Path, required=True, help="the data set's folder (../shared/data/ml-100k)")
    ap.add_argument("--models", nargs="+", default=["bert4rec"])
    ap.add_argument("--windows", nargs="+", type=int, default=[1, 3])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-window"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "selection_window.md")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    args.path, args.workdir = args.path.resolve(), args.workdir.resolve()
    plan = [(m, w, s) for m in args.models for s in args.seeds for w in args.windows]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(plan, pool.map(lambda p: run(args, *p), plan), strict=True))
    text = "\n".join(
        [
            "# Selecting on one validation or on a window of them (`trainer.selection_window`)",
            "",
            f"Command: `python benchmarks/selection_window.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {args.jobs} runs at a time, one "
            f"torch thread each. Data: {args.data}; each card's own settings and patience; window k selects (and "
            "counts patience) on the mean of the last k validations and keeps the last epoch of that stretch.",
            "",
            *table(args, results),
            *[line for model in args.models for line in paired(args, model)],
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
