"""Taobao scale on this machine: training cost at 4.2M vs 54k items (sparse vs dense item table), chunked
evaluation at 4.2M items, one end-to-end epoch on a 10M-event log, and the generator against the real slices.

    python benchmarks/scale.py [--workdir /tmp/seqexp-bigscale] [--events 5_000_000] [--users 5000]
                               [--batches 40] [--e2e-events 10_000_000] [--e2e-users 10000] [--skip-e2e]

Every measurement is its own `seqexp-train` subprocess; its peak RSS comes from os.wait4's rusage (the
child's own getrusage ru_maxrss). Logs come from benchmarks/make_taobao_like.py (also a subprocess, so its
peak RSS is measured too). Users are few (--users) so that full-catalogue test ranking stays in minutes on
2 cores; training speed does not depend on it. Big files are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _taobao_stats as stats  # benchmarks/ is on sys.path when run as a script
import pandas as pd
from _markdown import emit

HERE = Path(__file__).resolve().parent
REAL = HERE.parents[1] / "shared" / "data" / "taobao-userbehavior"
BIG, SMALL = 4_162_024, 54_542  # the real file's catalogue; Amazon Beauty's
MODEL = [
    "model=sasrec",
    "model.embedding_dim=32",
    "+model/loss=sampled",
    "data.max_len=50",
    "seed=0",
    "trainer.save_checkpoint=false",
    "trainer.save_last=false",
]  # no 4.2M-row checkpoints on disk
SPARSE = ["model.sparse_items=true", "model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer"]


def child(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run one subprocess -> (wall seconds, its peak RSS in GiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"failed: {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return time.perf_counter() - t0, usage.ru_maxrss / 2**20  # KiB -> GiB


def make_log(args: argparse.Namespace, name: str, events: int, items: int, users: int) -> tuple[Path, dict]:
    out = args.workdir / f"{name}.csv"
    cmd = [sys.executable, str(HERE / "make_taobao_like.py"), "--events", str(events), "--items", str(items),
           "--users", str(users), "--out", str(out)]  # fmt: skip
    wall, rss = child(cmd, args.workdir / f"{name}.gen.log")
    args.commands.append(" ".join(["python benchmarks/make_taobao_like.py", *cmd[2:]]))
    return out, {"name": name, "wall_s": wall, "rss_gb": rss, "mib": out.stat().st_size / 2**20}


def train(args: argparse.Namespace, name: str, csv: Path, overrides: list[str]) -> dict:
    run_dir = args.workdir / "runs" / name
    cmd = [sys.executable, "-m", "seqexp.app.train", "logger=none", "trainer.progress_bar=false",
           "trainer.precision=no",
           "trainer.num_threads=2", "trainer.overwrite=true", f"hydra.run.dir={run_dir}",
           f"paths.cache_dir={args.workdir / 'cache'}", "data=taobao", f"data.path={csv}",
           "data.filename=null", *MODEL, *overrides]  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    wall, rss = child(cmd, run_dir / "stdout.log")
    args.commands.append(" ".join(["seqexp-train", *cmd[3:]]))
    res = json.loads((run_dir / "results.json").read_text())
    return {"name": name, "wall_s": wall, "rss_gb": rss, "res": res}


def _tp(r: dict, key: str) -> float:
    return r["res"]["throughput"][key]


def training_rows(args: argparse.Namespace, logs: dict[int, Path]) -> list[str]:
    short = ["trainer.max_epochs=1", f"trainer.limit_train_batches={args.batches}", "eval.sample_users=500",
             "eval.item_chunk=65536"]  # fmt: skip
    runs = {}
    for items in (BIG, SMALL):
        for opt, extra in (("sparse", SPARSE), ("dense", [])):
            runs[items, opt] = train(args, f"train_{items}_{opt}", logs[items], [*short, *extra])
    rows = ["| catalogue | item table optimiser | training targets/s | vs 54k items | peak RSS GB | items seen |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for (items, opt), r in runs.items():
        base = _tp(runs[SMALL, opt], "train_targets_per_s")
        rows.append(f"| {items:,} | {opt} | {_tp(r, 'train_targets_per_s'):,.0f} | "
                    f"{_tp(r, 'train_targets_per_s') / base:.0%} | {r['rss_gb']:.2f} | "
                    f"{r['res']['data_summary']['items']:,} |")  # fmt: skip
    args.runs = runs
    return rows


def eval_rows(args: argparse.Namespace, logs: dict[int, Path]) -> list[str]:
    one = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "eval.sample_users=500", *SPARSE]
    runs = [
        (BIG, 512, 65536, args.runs[BIG, "sparse"]),
        (
            BIG,
            2048,
            65536,
            train(args, "eval_big_b2048", logs[BIG], [*one, "eval.batch_size=2048", "eval.item_chunk=65536"]),
        ),  # fmt: skip
        (SMALL, 512, None, train(args, "eval_small_unchunked", logs[SMALL], [*one, "eval.item_chunk=null"])),
    ]
    rows = ["| catalogue | eval.batch_size | eval.item_chunk | scores held (B x chunk x 4 B) | test users/s | "
            "run's peak RSS GB |", "|---|---|---|---|---|---|"]  # fmt: skip
    for _items, batch, chunk, r in runs:
        n = r["res"]["data_summary"]["items"]
        held = batch * (chunk or n + 1) * 4 / 2**30
        rows.append(f"| {n:,} | {batch} | {chunk or 'null (all)'} | {held:.2f} GB | "
                    f"{_tp(r, 'eval_users_per_s'):,.0f} | {r['rss_gb']:.2f} |")  # fmt: skip
    n = args.runs[BIG, "sparse"]["res"]["data_summary"]["items"]
    rows.append(
        f"| {n:,} | 512 | null (all) | {512 * (n + 1) * 4 / 2**30:.2f} GB | not run (scores alone "
        "exceed the 1 GB target) | – |"
    )
    return rows


def e2e_rows(args: argparse.Namespace) -> list[str]:
    """Generate a 10M-event log, then prepare -> one epoch -> validation on a sample -> full chunked test."""
    csv, gen = make_log(args, "e2e", args.e2e_events, BIG, args.e2e_users)
    r = train(args, "e2e", csv, ["trainer.max_epochs=1", "eval.sample_users=2000", "eval.item_chunk=65536",
                                 *SPARSE])  # fmt: skip
    t, d = r["res"]["timings"], r["res"]["data_summary"]
    csv.unlink()
    return ["| step | seconds | peak RSS GB |", "|---|---|---|",
            f"| generate {args.e2e_events:,} events ({gen['mib']:,.0f} MiB CSV) | {gen['wall_s']:.0f} | "
            f"{gen['rss_gb']:.2f} |",
            f"| seqexp-train: prepare | {t['prepare_s']:.0f} | |",
            f"| seqexp-train: 1 epoch ({r['res']['training']['batches_per_epoch']:,} batches) | {t['train_s']:.0f} | |",
            f"| seqexp-train: validation ({2000:,} sampled users) | {t['valid_eval_s']:.0f} | |",
            f"| seqexp-train: test, every user ({d['users']:,}) x {d['items']:,} items | {t['test_eval_s']:.0f} | |",
            f"| seqexp-train: whole run | {r['wall_s']:.0f} | {r['rss_gb']:.2f} |",
            "", f"Prepared: {d['events']:,} events, {d['users']:,} users, {d['items']:,} items. Test NDCG@10 "
            f"{r['res']['metrics']['test/ndcg@10']:.4f}."]  # fmt: skip


def comparison_rows(args: argparse.Namespace) -> list[str]:
    """The generator against the real slices, each at the real slice's size."""
    if not REAL.is_dir():
        return [f"(real slices not found at {REAL}: comparison skipped)"]
    sliced = stats.load(REAL / "rdav27_UserBehavior.csv")
    whole = pd.concat([stats.load(REAL / f"{n}_UserBehavior.csv") for n in ("hotitems", "fattydelivery")])
    a, _ = make_log(args, "cmp_slice", len(sliced), BIG, sliced["user"].nunique())
    b, _ = make_log(args, "cmp_whole", len(whole), BIG, whole["user"].nunique())
    return [*stats.table("Popularity, categories, behaviour mix: the rdav27_ slice (2 h of the global stream) vs "
                         "a generated file with its events and users over 4,162,024 items",
                         stats.item_stats(sliced), stats.item_stats(stats.load(a)), "rdav27_"),
            *stats.table("Histories: the whole-history slices (hotitems_ + fattydelivery_, 157 users) vs a "
                         "generated file with their events and users", stats.user_stats(whole),
                         stats.user_stats(stats.load(b)), "hotitems_ + fattydelivery_")]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-bigscale"))
    ap.add_argument("--events", type=int, default=5_000_000, help="events of each training log")
    ap.add_argument("--users", type=int, default=5000, help="users of each training log (test ranks them all)")
    ap.add_argument("--batches", type=int, default=40, help="trainer.limit_train_batches of the training runs")
    ap.add_argument("--e2e-events", type=int, default=10_000_000)
    ap.add_argument("--e2e-users", type=int, default=10_000)
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.md")
    args = ap.parse_args()
    args.commands = []
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    compare = comparison_rows(args)
    logs, gens = {}, []
    for items in (BIG, SMALL):
        logs[items], g = make_log(args, f"train_{items}", args.events, items, args.users)
        gens.append(g)
    train_t, eval_t = training_rows(args, logs), eval_rows(args, logs)
    e2e = ["(skipped: --skip-e2e)"] if args.skip_e2e else e2e_rows(args)
    shutil.rmtree(args.workdir)
    gen_rows = [f"| {g['name']} | {g['mib']:,.0f} | {g['wall_s']:.0f} | {g['rss_gb']:.2f} |" for g in gens]
    text = "\n".join([
        "# Taobao scale: 4.2M-item training and evaluation, one end-to-end epoch, the generator vs the real file",
        "", "Command: `python benchmarks/scale.py " + " ".join(sys.argv[1:]) + "`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}; total {time.perf_counter() - t0:.0f} s", "",
        "## Training cost against the catalogue (sasrec D=32, +model/loss=sampled, 2,048 negatives)", "",
        *train_t, "",
        "## Evaluation at 4.2M items (exact full ranking in item chunks)", "", *eval_t, "",
        "## One epoch end to end on a 10M-event log (sparse items, sampled loss, chunked evaluation)", "", *e2e, "",
        "## Generator against the real slices", "", *compare,
        "## Generated training logs", "", "| log | MiB | seconds | generator peak RSS GB |", "|---|---|---|---|",
        *gen_rows, "", "## Commands", "", "```bash", *args.commands, "```", ""])  # fmt: skip
    emit(text, args.out)


if __name__ == "__main__":
    main()
