"""What the training benchmarks share: reuse a finished run, or train one in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def loss_overrides(model: str, loss: str) -> list[str]:
    """Overrides that train `model` with conf/model/loss/<loss>.yaml ("full": the full softmax). A card whose loss is
    a defaults entry (esasrec) swaps it with `model/loss=...`; the others hold an inline full softmax, which
    `+model/loss=...` replaces (and "full" needs no override)."""
    card = yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())
    if any(isinstance(entry, dict) and "loss" in entry for entry in card.get("defaults", [])):
        return [f"model/loss={loss}"]
    return [] if loss == "full" else [f"+model/loss={loss}"]


def finished(run_dir: Path) -> dict | None:
    """The run's results.json when it completed, else None."""
    results = run_dir / "results.json"
    if results.exists() and (r := json.loads(results.read_text())).get("status") == "completed":
        return r
    return None


def train(overrides: list[str], threads: int, label: str) -> bool:
    """`python -m seqexp.app.train <overrides>` with `threads` OpenMP threads; False (and its stderr) on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "seqexp.app.train", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        print(f"{label} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    return proc.returncode == 0
