"""Same metrics before and after a refactor: every encoder on the synthetic default and on ml-100k, bit for bit.

    python benchmarks/same_metrics.py --out /tmp/before.json [--ml100k ../shared/data/ml-100k]
    (change the code)
    python benchmarks/same_metrics.py --out /tmp/after.json --compare /tmp/before.json

Each run is short (a few epochs, one thread, CPU) so that the whole check takes minutes; the point is equality of
every valid/test metric, the per-user test values and the training loss history, not quality. Prints one table row
per run with the largest absolute difference. This is a benchmark script, not a test (ml-100k is not in the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lstm", "gru", "sasrec", "bert4rec")


def _run(overrides: list[str], tmp: Path) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from seqexp.app.train import CONF_DIR, train

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                f"paths.output_dir={tmp / 'run'}",
                f"paths.data_dir={tmp / 'data'}",
                f"paths.cache_dir={tmp / 'cache'}",
                "logger=none",
                "trainer.progress_bar=false",
                "trainer.num_threads=1",
                "trainer.precision=no",  # fp32 on every machine: bit-for-bit comparisons need one precision
                *overrides,
            ],
        )
    metrics, objects = train(cfg)
    results = objects["results"]
    return {
        "metrics": metrics,
        "per_user": results["per_user"]["values"],
        "loss": [row["train/loss"] for row in results["history"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="write the metrics of every run here (JSON)")
    parser.add_argument("--ml100k", help="folder of ml-100k.inter (e.g. ../shared/data/ml-100k)")
    parser.add_argument("--compare", help="an earlier --out file: print the largest difference per run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "offline")
    cases = {f"synthetic/{m}": [f"model={m}", "trainer.max_epochs=3"] for m in MODELS}
    if args.ml100k:
        for m in MODELS:
            cases[f"ml100k/{m}"] = [
                f"model={m}",
                "data=ml100k",
                f"data.path={Path(args.ml100k).resolve()}",
                "trainer.max_epochs=2",
                "trainer.limit_train_batches=20",
            ]
    import tempfile

    out: dict[str, Any] = {}
    for name, overrides in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = {"overrides": overrides, **_run(overrides, Path(tmp))}
        print(f"ran {name}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(out, indent=1))
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        print("| run | metrics compared | max abs difference | identical |")
        print("|---|---|---|---|")
        all_same = True
        for name, now in out.items():
            old = before.get(name)
            if old is None:
                print(f"| {name} | - | not in {args.compare} | - |")
                continue
            diffs = [abs(now["metrics"][k] - old["metrics"][k]) for k in old["metrics"]]
            diffs += [abs(a - b) for a, b in zip(now["per_user"], old["per_user"], strict=True)]
            diffs += [abs(a - b) for a, b in zip(now["loss"], old["loss"], strict=True)]
            same = all(now[k] == old[k] for k in ("metrics", "per_user", "loss"))
            all_same &= same
            print(f"| {name} | {len(old['metrics'])} + {len(old['per_user'])} users | {max(diffs):.3g} | {same} |")
        return 0 if all_same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
