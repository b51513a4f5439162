"""Wall time of one sweep (4 encoders x 2 seeds on the embedded synthetic data) with Hydra's basic launcher
(jobs one after another) and with the Ray launcher (jobs in parallel as Ray tasks, 1 CPU each here), measured
in one session, one after the other. Prints a markdown table and writes benchmarks/results/sweep_launchers.md.

    python benchmarks/sweep_launchers.py [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
GRID = ["model=lstm,gru,sasrec,bert4rec", "seed=0,1"]


def sweep(launcher: list[str], epochs: int, workdir: Path, threads: int) -> dict:
    env = {**os.environ, "SEQEXP_ROOT": str(workdir), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "seqexp.app.train", "-m", *launcher, *GRID, "logger=none",
           "trainer.progress_bar=false", "trainer.precision=no",
           f"trainer.max_epochs={epochs}", f"trainer.num_threads={threads}"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    results = [json.loads(p.read_text()) for p in workdir.glob("logs/train/multiruns/*/*/results.json")]
    return {
        "wall": wall,
        "jobs": len(results),
        "job_seconds": sum(r["timings"]["total_s"] for r in results),
        "ndcg": {f"{r['model']}-s{r['seed']}": r["metrics"]["test/ndcg@10"] for r in results},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sweep_launchers.md")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, tempfile.TemporaryDirectory() as c:
        basic = sweep([], args.epochs, Path(a), threads=cores)
        basic_1 = sweep([], args.epochs, Path(c), threads=1)
        ray = sweep(["hydra/launcher=ray"], args.epochs, Path(b), threads=1)
    rows = [
        f"| basic: sequential, {cores} torch threads per job | {basic['jobs']} | {basic['wall']:.0f} | "
        f"{basic['job_seconds']:.0f} |",
        f"| basic: sequential, 1 torch thread per job | {basic_1['jobs']} | {basic_1['wall']:.0f} | "
        f"{basic_1['job_seconds']:.0f} |",
        f"| ray: parallel tasks, 1 CPU and 1 thread per job | {ray['jobs']} | {ray['wall']:.0f} | "
        f"{ray['job_seconds']:.0f} |",
    ]
    text = "\n".join(
        [
            "# Sweep wall time: Hydra basic launcher vs Ray launcher",
            "",
            f"Command: `python benchmarks/sweep_launchers.py --epochs {args.epochs}`  ",
            f"Sweep: `seqexp-train -m {' '.join(GRID)} trainer.max_epochs={args.epochs}` on the synthetic data.  ",
            f"Machine: {platform.machine()}, {cores} cores, no GPU; the three sweeps in one session, "
            "one after the other.",
            "",
            "| launcher | jobs | sweep wall s | sum of job wall s |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Ray vs basic with the same 1 thread per job: {basic_1['wall'] / ray['wall']:.2f}x; vs basic with all "
            f"{cores} cores per job: {basic['wall'] / ray['wall']:.2f}x (Ray's wall time includes its start).",
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
