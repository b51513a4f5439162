"""Time data preparation end to end on a generated 10M-event Taobao-format CSV; print a table.

    python benchmarks/prepare_scale.py [--events 10_000_000] [--workdir /tmp/seqexp-scale]

Each measurement runs `prepare` in a fresh Python process, so the peak RSS is that of preparation
alone (read -> clean -> sequence -> cache write). The second run finds the cache entry.
Targets (issue #4): <= 60 s wall and <= 4 GB peak RSS on a 2-core machine; the cached run near-instant.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from omegaconf import OmegaConf
from seqexp.data.prepare import prepare
cfg = OmegaConf.to_container(OmegaConf.load("conf/data/taobao.yaml"))
cfg.update(path=sys.argv[1], filename=None, paths=None)
data = prepare(cfg, sys.argv[2])
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
print(json.dumps({"wall_s": wall, "peak_rss_mib": rss, "events": data.n_events, "users": data.n_users,
                  "items": data.n_items, "rules": [(r.rule, r.dropped) for r in data.report.rules]}))
"""


def generate(path: Path, n_events: int, seed: int = 0) -> None:
    """A Taobao UserBehavior-like CSV (user,item,category,behavior,timestamp; no header), written by Arrow.
    About 1% exact duplicates and a truncated last line, so that the cleaning rules have work to do."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n_events // 100, 10), max(n_events // 20, 10)
    users = rng.integers(1, n_users, n_events)
    items = (rng.zipf(1.3, n_events) % n_items) + 1
    behaviors = np.array(["pv", "cart", "fav", "buy"])[rng.choice(4, n_events, p=[0.89, 0.055, 0.03, 0.025])]
    ts = 1511544000 + rng.integers(0, 9 * 86400, n_events)
    dup = rng.random(n_events) < 0.01
    users[1:][dup[1:]], items[1:][dup[1:]], ts[1:][dup[1:]] = users[:-1][dup[1:]], items[:-1][dup[1:]], ts[:-1][dup[1:]]
    behaviors[1:][dup[1:]] = behaviors[:-1][dup[1:]]
    table = pa.table({"u": users, "i": items, "c": items % 5000, "b": behaviors, "t": ts})
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    with open(path, "a") as f:
        f.write("301780,543546,4\n")  # truncated last line, as in the rdav27_ sample


def run_child(csv_path: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(csv_path), str(cache)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-scale"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prepare_scale.md")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    csv_path = args.workdir / f"taobao_{args.events}.csv"
    if not csv_path.exists():
        t = time.perf_counter()
        generate(csv_path, args.events)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - t:.1f} s")
    cache = args.workdir / "cache"
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    cold, warm = run_child(csv_path, cache), run_child(csv_path, cache)
    rows = [
        "| run | wall s | peak RSS MiB | events | users | items |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in (("first (no cache)", cold), ("second (cache hit)", warm)):
        size = f"{r['events']:,} | {r['users']:,} | {r['items']:,}"
        rows.append(f"| {name} | {r['wall_s']:.1f} | {r['peak_rss_mib']:,.0f} | {size} |")
    dropped = ", ".join(f"{rule} {n:,}" for rule, n in cold["rules"])
    text = "\n".join(
        [
            f"# Preparation at scale: {args.events:,}-event Taobao-format CSV "
            f"({csv_path.stat().st_size / 2**20:,.0f} MiB)",
            "",
            f"Command: `python benchmarks/prepare_scale.py --events {args.events}`  ",
            f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, "
            f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
            "",
            *rows,
            "",
            f"Rules (first run): {dropped}",
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
