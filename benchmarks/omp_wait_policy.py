"""OpenMP wait policy on shared CPU cores: one ml-100k training run with ACTIVE (GNU OpenMP's default: idle
threads spin) and PASSIVE (idle threads sleep) waiting, interleaved, same threads. Why seqexp sets PASSIVE.

    python benchmarks/omp_wait_policy.py --path ../shared/data/ml-100k [--model gru --threads 2 --repeats 2]

Each run is its own `seqexp-train` subprocess (the policy is read when torch loads OpenMP) for 2 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def one_run(policy: str, i: int, args: argparse.Namespace) -> tuple[float, float]:
    """(median training seconds per epoch, validation seconds) of one run."""
    run_dir = args.workdir / f"{policy}-{i}"
    cmd = [
        sys.executable, "-m", "seqexp.app.train", "data=ml100k", f"data.path={args.path}", f"model={args.model}",
        "logger=none", "trainer.progress_bar=false",
        "trainer.precision=no", "trainer.max_epochs=2", f"trainer.num_threads={args.threads}",
        "trainer.save_checkpoint=false", f"hydra.run.dir={run_dir}",
        "trainer.overwrite=true", f"paths.cache_dir={args.workdir / 'cache'}",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_WAIT_POLICY": policy})
    res = json.loads((run_dir / "results.json").read_text())
    return statistics.median(h["train/epoch_seconds"] for h in res["history"]), res["timings"]["valid_eval_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", required=True, help="folder holding ml-100k.inter")
    ap.add_argument("--model", default="gru")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-omp"))
    args = ap.parse_args()
    times: dict[str, list[tuple[float, float]]] = {"ACTIVE": [], "PASSIVE": []}
    for i in range(args.repeats):
        for policy in times:
            times[policy].append(one_run(policy, i, args))
    rows = [
        f"| {p} | {' / '.join(f'{t:.2f}' for t, _ in v)} | {' / '.join(f'{e:.2f}' for _, e in v)} |"
        for p, v in times.items()
    ]
    ratio = statistics.median(t for t, _ in times["ACTIVE"]) / statistics.median(t for t, _ in times["PASSIVE"])
    text = "\n".join(
        [
            f"# OpenMP wait policy ({args.model}, ml-100k, {args.threads} torch threads)",
            "",
            f"Command: `python benchmarks/omp_wait_policy.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} shared cores, load average "
            f"{os.getloadavg()[0]:.1f} at the end (other jobs running: the case that matters).",
            "",
            "| OMP_WAIT_POLICY | s per training epoch (each run) | validation s (each run) |",
            "|---|---|---|",
            *rows,
            "",
            f"ACTIVE / PASSIVE training time: {ratio:.1f}x. seqexp sets PASSIVE unless OMP_WAIT_POLICY is exported.",
            "",
        ]
    )
    emit(text, ROOT / "benchmarks" / "results" / "omp_wait_policy.md")


if __name__ == "__main__":
    main()
