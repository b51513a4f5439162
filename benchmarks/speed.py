"""Training and evaluation speed per encoder (issue #7), beside RecBole 1.2.1 measured in the same session.

    python benchmarks/speed.py --ml100k ../shared/data/ml-100k --beauty ../shared/data/beauty-bert4rec \
        --peer ../shared/peer [--variants fp32 bf16 compile] [--threads 2]

Three tables, each run one at a time (never in parallel: timings are compared), every run in its own
`seqexp-train` subprocess so that its peak RSS is its own:

1. ml-100k, every encoder with its defaults under RecBole's protocol (seen items not filtered), trained to
   convergence (trainer=long): s/epoch, training sequences/s and targets/s, evaluation users/s, wall time to
   the best validation NDCG@10 and to RecBole's best validation NDCG@10, peak RSS.
2. ml-100k with RecBole's own settings for GRU4Rec / SASRec / BERT4Rec (../shared/peer/configs: batch 256,
   lr 1e-3, same widths, dropouts and heads) for a few epochs, beside RecBole re-run here with a wall-time cap
   (`--peer`): the throughput ratio. RecBole trains one sample per prefix with a loss at its last position;
   we train one sequence per user with a loss at every position, so the fair unit is training targets
   (positions that carry a loss) per second — RecBole's samples/s is its targets/s.
3. Amazon Beauty (54,542 items), every encoder x variant for `--beauty-batches` batches of one epoch (s/epoch
   extrapolated to the whole epoch) plus a full validation pass: full softmax and `+model/loss=sampled`
   (each card asks for them by name: `_runs.loss_overrides`).

Variants: fp32 (default), bf16 (`trainer.precision=bf16` autocast), compile (`trainer.compile=true`). With CUDA
visible the runs use it (`trainer.device=auto`); writes benchmarks/results/speed_<cpu|gpu>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _history import seconds_to  # benchmarks/_history.py
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path
from _runs import loss_overrides  # benchmarks/_runs.py

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["lstm", "gru", "sasrec", "bert4rec"]
VARIANTS = {
    "fp32": ["trainer.precision=no"],
    "bf16": ["trainer.precision=bf16"],
    "compile": ["trainer.precision=no", "trainer.compile=true"],
}
Report = Callable[[list[str]], None]  # rewrites the results file with a section's rows so far
PEER_OF = {"gru": "GRU4Rec", "sasrec": "SASRec", "bert4rec": "BERT4Rec", "lstm": "GRU4Rec"}
# RecBole's settings (../shared/peer/configs/base.yaml + <model>.yaml) in our config keys
RECBOLE_SETTINGS = {
    "gru": [
        "model.batch_size=256", "model.optimizer.lr=1e-3", "model.embedding_dropout=0.3", "model.encoder.dropout=0.3",
    ],
    "sasrec": [
        "model.batch_size=256", "model.optimizer.lr=1e-3", "model.encoder.num_heads=2",
        "model.encoder.inner_size=256", "model.encoder.dropout=0.5", "model.encoder.attention_dropout=0.5",
        "model.encoder.layer_norm_eps=1e-12",
    ],
    "bert4rec": ["model.batch_size=256", "model.optimizer.lr=1e-3", "model.objective.mask_prob=0.2"],
}  # fmt: skip
# RecBole's best validation NDCG@10 in ../shared/peer/RESULTS.md, used when the peer is not re-run here
RECBOLE_BEST_VALID = {"GRU4Rec": 0.065, "SASRec": 0.055, "BERT4Rec": 0.056}


def run_train(name: str, overrides: list[str], args: argparse.Namespace) -> tuple[dict, float, float]:
    """One `seqexp-train` subprocess -> (results.json, its peak RSS in MiB, wall seconds)."""
    run_dir = args.workdir / name
    cmd = [
        sys.executable, "-m", "seqexp.app.train", "logger=none", "trainer.progress_bar=false",
        f"trainer.num_threads={args.threads}", f"hydra.run.dir={run_dir}", "trainer.overwrite=true",
        f"paths.cache_dir={args.workdir / 'cache'}", *overrides, *args.override,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OMP_WAIT_POLICY": "PASSIVE"}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "stderr.log"
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS, not the session's
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{name} failed:\n{log.read_text()[-3000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    return results, usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def epoch_seconds(res: dict) -> float:
    """Median seconds of a whole training epoch (a batch-limited epoch is extrapolated)."""
    full = res["training"]["batches_per_epoch"]
    per = sorted(h["train/epoch_seconds"] * full / max(h["train/batches"], 1) for h in res["history"])
    return per[len(per) // 2]


def median_rate(res: dict, key: str) -> float:
    values = sorted(h[key] for h in res["history"])
    return values[len(values) // 2]


def run_peer(args: argparse.Namespace) -> dict[str, dict]:
    """Re-run RecBole's GRU4Rec/SASRec/BERT4Rec with a wall-time cap; {name: its JSON line}."""
    env = {**os.environ, "CAP": str(args.peer_cap), "THREADS": str(args.threads)}
    out = subprocess.run(
        ["bash", str(args.peer / "run_peer.sh"), "GRU4Rec", "SASRec", "BERT4Rec"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if not rows:
        raise SystemExit(f"the peer run printed no results (run {args.peer}/setup.sh first?):\n{out.stderr[-2000:]}")
    return {r["name"]: r for r in rows}


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def ml100k_defaults(args: argparse.Namespace, peer: dict[str, dict], report: Report) -> list[str]:
    head = [
        "## ml-100k: defaults, trained to the best validation NDCG@10 (RecBole's protocol: seen items not filtered)",
        "",
        "| model | test NDCG@10 | epochs (best) | s/epoch | train seq/s | train targets/s | eval users/s | "
        "s to best valid | s to RecBole's best valid | total wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    for model in args.models:
        res, rss, wall = run_train(
            f"ml100k-{model}",
            ["data=ml100k", f"data.path={args.ml100k}", f"model={model}", "trainer=long", "eval.filter_seen=false"],
            args,
        )  # fmt: skip
        peer_name = PEER_OF[model]
        target = peer.get(peer_name, {}).get("best_valid", {}).get("ndcg@10") or RECBOLE_BEST_VALID[peer_name]
        tr, th = res["training"], res["throughput"]
        rows.append(
            f"| {model} | {res['metrics']['test/ndcg@10']:.4f} | {tr['epochs_run']} ({tr['best_epoch']}) | "
            f"{epoch_seconds(res):.2f} | {median_rate(res, 'train/sequences_per_second'):,.0f} | "
            f"{median_rate(res, 'train/targets_per_second'):,.0f} | {th['eval_users_per_s']:,.0f} | "
            f"{fmt(seconds_to(res))} | {peer_name} {target:.3f}: {fmt(seconds_to(res, target))} | "
            f"{wall:.0f} | {rss:,.0f} |"
        )
        report(head + rows + [""])
    return head + rows + [""]


def ml100k_recbole_settings(args: argparse.Namespace, peer: dict[str, dict], report: Report) -> list[str]:
    head = [
        f"## ml-100k with RecBole's settings ({args.epochs} epochs; RecBole capped at {args.peer_cap} s)",
        "",
        "Targets/s = positions that carry a loss per second (RecBole: one per training sample).",
        "",
        "| model | RecBole model | our s/epoch | our seq/s | our targets/s | RecBole s/epoch | RecBole targets/s | "
        "ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    for model in [m for m in args.models if m in RECBOLE_SETTINGS]:
        res, _, _ = run_train(
            f"ml100k-{model}-recbole-settings",
            ["data=ml100k", f"data.path={args.ml100k}", f"model={model}", "eval.filter_seen=false",
             f"trainer.max_epochs={args.epochs}", f"trainer.patience={args.epochs}", *RECBOLE_SETTINGS[model]],
            args,
        )  # fmt: skip
        ours = median_rate(res, "train/targets_per_second")
        p = peer.get(PEER_OF[model])
        theirs = p["dataset"]["train_samples"] / p["median_full_epoch_s_est"] if p else None
        rows.append(
            f"| {model} | {PEER_OF[model]} | {epoch_seconds(res):.2f} | "
            f"{median_rate(res, 'train/sequences_per_second'):,.0f} | {ours:,.0f} | "
            f"{fmt(p and p['median_full_epoch_s_est'])} | {fmt(theirs, ',.0f')} | "
            f"{fmt(theirs and ours / theirs, '.1f')}{'x' if theirs else ''} |"
        )
        report(head + rows + [""])
    return head + rows + [""]


def beauty(args: argparse.Namespace, peer: dict[str, dict], report: Report) -> list[str]:
    head = [
        f"## Amazon Beauty (40,226 users, 54,542 items): {args.beauty_batches} training batches, s/epoch extrapolated",
        "",
        "| model | loss | variant | s/epoch | train seq/s | train targets/s | eval users/s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    for model in args.models:
        for loss in ("full", "sampled"):
            for variant in args.variants:
                res, rss, _ = run_train(
                    f"beauty-{model}-{loss}-{variant}",
                    ["data=beauty", f"data.path={args.beauty}", f"model={model}", "trainer.max_epochs=1",
                     f"trainer.limit_train_batches={args.beauty_batches}", "trainer.save_checkpoint=false",
                     *loss_overrides(model, loss), *VARIANTS[variant]],
                    args,
                )  # fmt: skip
                row = res["history"][0]
                rows.append(
                    f"| {model} | {loss} | {variant} | {epoch_seconds(res):,.0f} | "
                    f"{row['train/sequences_per_second']:,.0f} | {row['train/targets_per_second']:,.0f} | "
                    f"{len(res['per_user']['values']) / res['timings']['test_eval_s']:,.0f} | {rss:,.0f} |"
                )
                report(head + rows + [""])
    return head + rows + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ml100k", help="folder holding ml-100k.inter (skipped when not given)")
    ap.add_argument("--beauty", help="folder holding beauty.txt (skipped when not given)")
    ap.add_argument("--peer", type=Path, help="../shared/peer: re-run RecBole here for a same-session ratio")
    ap.add_argument("--peer-cap", type=int, default=150, help="RecBole wall-time cap per model (s)")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument(
        "--sections", nargs="+", default=["recbole", "defaults", "beauty"], choices=["recbole", "defaults", "beauty"]
    )
    ap.add_argument("--variants", nargs="+", default=["fp32"], choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the RecBole-settings runs")
    ap.add_argument("--beauty-batches", type=int, default=40, help="training batches per Beauty measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (RecBole's runs used 2)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-speed"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    peer = run_peer(args) if args.peer and "recbole" in args.sections else {}
    # the file is rewritten after every section, so an interrupted benchmark keeps what it measured
    out = args.out or ROOT / "benchmarks" / "results" / f"speed_{'gpu' if device != 'cpu' else 'cpu'}.md"
    sections: list[str] = []

    def report(partial: list[str]) -> None:
        emit(_document(args, device, sections + partial, time.perf_counter() - t0), out)

    for name, wanted, build in (
        ("recbole", args.ml100k, ml100k_recbole_settings),
        ("defaults", args.ml100k, ml100k_defaults),
        ("beauty", args.beauty, beauty),
    ):
        if wanted and name in args.sections:
            sections += build(args, peer, report)


def _document(args: argparse.Namespace, device: str, sections: list[str], seconds: float) -> str:
    return "\n".join(
        [
            f"# Speed per encoder ({device})",
            "",
            f"Command: `python benchmarks/speed.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()} {device}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, "
            f"{args.threads} threads per run, one run at a time; load average when written {os.getloadavg()[0]:.1f}; "
            f"{seconds:.0f} s so far.",
            "",
            *sections,
        ]
    )


if __name__ == "__main__":
    main()
