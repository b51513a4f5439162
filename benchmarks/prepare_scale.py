"""Time data preparation end to end on generated Taobao-format CSVs, per engine; print a cost curve.

    python benchmarks/prepare_scale.py --events 1000000,10000000,100000000 --engines duckdb,arrow \
        [--arrow-max 10000000] [--workdir /tmp/seqexp-scale] [--keep]

Each measurement runs `prepare` in a fresh Python process, so the peak RSS is that of preparation
alone (read -> clean -> sequence -> cache write). The second run finds the cache entry. The CSV of each size
is deleted after its runs unless --keep (100M events is ~2.6 GB of text, plus DuckDB's scratch while it runs).
Targets (issue #17): 100M events <= 6 GB peak RSS and <= 10 minutes on 2 cores; the cached rerun <= 5 s.
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

from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from omegaconf import OmegaConf
from seqexp.data.prepare import prepare
base, preset = OmegaConf.load("conf/data/_base.yaml"), OmegaConf.load("conf/data/taobao.yaml")
preset.pop("defaults")
cfg = OmegaConf.to_container(OmegaConf.merge(base, preset))
cfg.update(path=sys.argv[1], filename=None, paths=None, engine=sys.argv[3])
data = prepare(cfg, sys.argv[2])
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
print(json.dumps({"wall_s": wall, "peak_rss_mib": rss, "events": data.n_events, "users": data.n_users,
                  "items": data.n_items, "rules": [(r.rule, r.dropped) for r in data.report.rules]}))
"""


TAOBAO_ITEMS = 4_162_024  # the real UserBehavior.csv's catalogue


def generate(path: Path, n_events: int, seed: int = 0) -> None:
    """A Taobao UserBehavior-like CSV from benchmarks/make_taobao_like.py (the realistic generator: power-law
    items over the real file's 4,162,024-item catalogue, sessions, pv/cart/fav/buy), plus a truncated last line
    as in the rdav27_ sample, so that the malformed-row rule has work to do."""
    generator = Path(__file__).with_name("make_taobao_like.py")
    subprocess.run(
        [sys.executable, str(generator), "--events", str(n_events), "--items", str(TAOBAO_ITEMS),
         "--out", str(path), "--seed", str(seed)],
        check=True,
    )  # fmt: skip
    with open(path, "a") as f:
        f.write("301780,543546,4\n")


def run_child(csv_path: Path, cache: Path, engine: str) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(csv_path), str(cache), engine]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{")))


def measure(n: int, engines: list[str], args: argparse.Namespace) -> list[dict]:
    csv_path = args.workdir / f"taobao_{n}.csv"
    if not csv_path.exists():
        t = time.perf_counter()
        generate(csv_path, n)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - t:.1f} s")
    rows = []
    for engine in engines:
        if engine == "arrow" and n > args.arrow_max:
            continue
        cache = args.workdir / f"cache-{engine}"
        shutil.rmtree(cache, ignore_errors=True)
        cold, warm = run_child(csv_path, cache, engine), run_child(csv_path, cache, engine)
        rows.append({"n": n, "engine": engine, "mib": csv_path.stat().st_size / 2**20, "cold": cold, "warm": warm})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    if not args.keep:
        csv_path.unlink()
    return rows


def table(results: list[dict]) -> list[str]:
    lines = [
        "| events | engine | CSV MiB | wall s | peak RSS GiB | s / M events | GiB / M events | cached rerun s "
        "| cached RSS GiB | users | items |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, w, m = r["cold"], r["warm"], r["n"] / 1e6
        rss, wrss = c["peak_rss_mib"] / 1024, w["peak_rss_mib"] / 1024
        lines.append(
            f"| {r['n']:,} | {r['engine']} | {r['mib']:,.0f} | {c['wall_s']:.1f} | {rss:.2f} | {c['wall_s'] / m:.2f} "
            f"| {rss / m:.3f} | {w['wall_s']:.1f} | {wrss:.2f} | {c['users']:,} | {c['items']:,} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="1000000,10000000", help="comma-separated sizes")
    ap.add_argument("--engines", default="duckdb,arrow")
    ap.add_argument("--arrow-max", type=int, default=10_000_000, help="largest size the arrow engine is run on")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-scale"))
    ap.add_argument("--keep", action="store_true", help="keep the generated CSVs")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prepare_scale.md")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [int(x) for x in args.events.split(",")]:
        results += measure(n, args.engines.split(","), args)
    dropped = ", ".join(f"{rule} {n:,}" for rule, n in results[-1]["cold"]["rules"])
    text = "\n".join(
        [
            "# Preparation at scale: Taobao-format CSVs, arrow (in memory) vs duckdb (out of core) engine",
            "",
            f"Command: `python benchmarks/prepare_scale.py --events {args.events} --engines {args.engines}`  ",
            f"Machine: {platform.machine()}, {platform.processor() or platform.system()}, "
            f"{len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}; peak RSS = ru_maxrss of "
            "the preparing process",
            "",
            *table(results),
            "",
            f"Rules ({results[-1]['n']:,} events, {results[-1]['engine']}): {dropped}",
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
