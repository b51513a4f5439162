"""Representation quality per encoder and item initialisation on MovieLens-100K: ranking quality, a linear
probe on the exported user vectors, and nearest-neighbour sanity of the item vectors.

    python benchmarks/representations.py --path ../shared/data/ml-100k [--jobs 2] [--models gru] [--inits text]

For every (encoder, model.item_init) it runs `seqexp-train` (subprocesses, --jobs at a time, one torch thread
each), exports the vectors with `seqexp-export`, and then:
  probe        predict each user's most frequent genre (over the user's training events; ml-100k.item `class`)
               from the user vector: scikit-learn logistic regression, 5-fold stratified CV accuracy, beside the
               majority-class rate;
  neighbours   the 5 nearest items by cosine of a few well-known films.
Prints markdown and writes benchmarks/results/representations_ml100k.md. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
FILMS = ["Star Wars", "Toy Story", "Fargo", "Scream"]  # ml-100k.item titles (the year is its own column)


def train_run(model: str, init: str, args: argparse.Namespace) -> Path:
    run_dir = args.workdir / f"{model}-{init}"
    if (run_dir / "results.json").exists() and json.loads((run_dir / "results.json").read_text())[
        "status"
    ] == "completed":
        return run_dir
    cmd = [
        sys.executable, "-m", "seqexp.app.train",
        f"model={model}", "data=ml100k", f"data.path={args.path}", f"model.item_init={init}",
        "logger=none", "trainer=long", "trainer.progress_bar=false",
        "trainer.precision=no", "trainer.num_threads=1", f"seed={args.seed}",
        "trainer.resume=auto",
        f"hydra.run.dir={run_dir}", f"paths.cache_dir={args.workdir / 'cache'}", *args.override,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{model}/{init} failed:\n{proc.stderr[-3000:]}")
    return run_dir


def user_genres(data) -> np.ndarray:
    """Each user's most characteristic genre over the training events (all but the last two): the genre whose
    share in the user's films most exceeds its share overall (plain counts name Drama for most users)."""
    genres = data.item_side["class:token_seq"]
    per_user = [
        Counter(g for i in data.sequence(u)[:-2] for g in str(genres[i - 1] or "").split()) for u in range(data.n_users)
    ]
    overall = sum(per_user, Counter())
    total = sum(overall.values())
    labels = []
    for counts in per_user:
        n = sum(counts.values()) or 1
        lift = {g: (c / n) / (overall[g] / total) for g, c in counts.items() if c >= 3}
        labels.append(max(lift, key=lift.get) if lift else "none")
    return np.array(labels)


def probe(users: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keep = np.isin(labels, [g for g, n in Counter(labels).items() if n >= 5])  # 5-fold needs 5 per class
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, users[keep], labels[keep], cv=folds).mean())


def neighbours(items: pd.DataFrame, titles: dict[str, str], k: int = 5) -> dict[str, list[str]]:
    vectors = np.stack(items["vector"].to_numpy())
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    ids = items["item_id"].tolist()
    by_title = {t: i for i, t in titles.items()}
    out = {}
    for film in FILMS:
        if film not in by_title or by_title[film] not in ids:
            continue
        r = ids.index(by_title[film])
        sims = unit @ unit[r]
        sims[r] = -np.inf
        out[film] = [titles.get(ids[j], ids[j]) for j in np.argsort(-sims)[:k]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", required=True, help="folder holding ml-100k.inter and ml-100k.item")
    ap.add_argument("--models", nargs="+", default=["lstm", "gru", "sasrec", "bert4rec"])
    ap.add_argument("--inits", nargs="+", default=["random", "item2vec", "text"])
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-representations"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "representations_ml100k.md")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    from omegaconf import OmegaConf

    from seqexp.app.export import export_run
    from seqexp.data import load_data

    grid = [(m, i) for m in args.models for i in args.inits]
    with ThreadPoolExecutor(args.jobs) as pool:
        run_dirs = dict(zip(grid, pool.map(lambda mi: train_run(*mi, args), grid), strict=True))

    first = json.loads((run_dirs[grid[0]] / "results.json").read_text())
    data = load_data(OmegaConf.create(first["config"]).data, args.workdir / "cache")
    labels = user_genres(data)
    titles = dict(zip(data.item_ids, data.item_side["movie_title:token_seq"], strict=True))
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    rows, nn_text = [], []
    for (model, init), run_dir in run_dirs.items():
        res = json.loads((run_dir / "results.json").read_text())
        out = export_run(run_dir)
        users = np.stack(pd.read_parquet(out / "users.parquet")["vector"].to_numpy())
        m = res["metrics"]
        acc = probe(users, labels, args.seed)
        t = res["training"]
        rows.append(
            f"| {model} | {init} | {m['test/ndcg@10']:.4f} | {m['test/hr@10']:.4f} | {m['valid/ndcg@10']:.4f} | "
            f"{acc:.3f} | {t['epochs_run']} ({t['best_epoch']}) | {res['timings']['total_s']:.0f} |"
        )
        for film, near in neighbours(pd.read_parquet(out / "items.parquet"), titles).items():
            nn_text.append(f"| {model} | {init} | {film} | {'; '.join(near)} |")
    text = "\n".join(
        [
            "# Representations on MovieLens-100K: item initialisation x encoder",
            "",
            f"Command: `python benchmarks/representations.py --path {args.path}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {args.jobs} runs at a time, "
            f"1 torch thread each; seed {args.seed}; trainer=long (early stopping on valid NDCG@10); "
            "seen items filtered.",
            "",
            "Probe: 5-fold logistic regression from the exported user vector to the user's most characteristic "
            f"genre (largest lift over its overall share, >= 3 films); majority class {majority:.3f}, "
            f"{len(set(labels))} classes.",
            "",
            "| model | item init | test NDCG@10 | test HR@10 | valid NDCG@10 | probe accuracy | epochs (best) "
            "| wall s |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "## Nearest items by cosine (item vectors)",
            "",
            "| model | item init | film | 5 nearest |",
            "|---|---|---|---|",
            *nn_text,
            "",
        ]
    )
    emit(text, args.out)


if __name__ == "__main__":
    main()
