"""The Beauty recipe search (issue #16): named trials on the BERT4Rec authors' Amazon Beauty file, chosen on the
validation split only; every trial's command, curve summary and (reported, never used to choose) test metrics
go to benchmarks/results/tuning_beauty.md.

    python benchmarks/tune_beauty.py --beauty ../shared/data/beauty-bert4rec --trials sasrec-recsys23 ... [--jobs 2]

Each trial runs `python -m seqexp.app.train` in a subprocess with `trainer.resume=auto`, so an interrupted search
continues where it stopped (a finished trial is reused; one stopped by its time budget continues when the command
gives a larger `trainer.max_minutes`). `--collect-only` tabulates the finished ones.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _history import seconds_to  # benchmarks/_history.py
from _markdown import emit  # benchmarks/_markdown.py
from _runs import ROOT, finished, finished_as_asked, train  # benchmarks/_runs.py

# every trial: early stopping on valid NDCG@10 (seen items filtered, as the published numbers), 40,226 users
BASE = [
    "data=beauty", "eval.filter_seen=true", "logger=none", "trainer.progress_bar=false", "trainer.resume=auto",
    "trainer.save_last=true",
]  # fmt: skip
RECSYS23 = ["model.encoder.dropout=0.1", "model.encoder.attention_dropout=0.1", "model.optimizer.lr=1e-3"]
# the card's sampled softmax replaced by the full one (seqexp.model.losses.FullSoftmax takes no settings)
FULL_SOFTMAX = [
    "model.loss._target_=seqexp.model.losses.FullSoftmax", "~model.loss.num_negatives", "~model.loss.per_position",
    "~model.loss.distribution", "~model.loss.logq_correction",
]  # fmt: skip
# the esasrec card as these trials ran it: RecTools' LiGR layers (no output norm, Xavier weights), before the card took
# the norm and N(0, 0.02) weights (2026-12-02, defaults_rank.md); spelled out so that every trial keeps its meaning
ESASREC_CARD_2026_12_01 = ["model=esasrec", "model.encoder.final_norm=false", "model.encoder.initializer_range=null"]
ESASREC_FULL_SCALED = [*ESASREC_CARD_2026_12_01, *FULL_SOFTMAX, "model.scale_embeddings=true"]
# session 7's eSASRec recipe on RecTools' protocol (Xavier-normal weights); its seeds add seed=N
ESASREC_NORM_VALID2048 = [*ESASREC_FULL_SCALED, "model.encoder.final_norm=true", "split.valid_users=2048"]
# the chosen eSASRec recipe (= experiment=sparse_catalogue_esasrec): the same with sasrec's N(0, 0.02) weights
ESASREC_RECIPE_VALID2048 = [*ESASREC_NORM_VALID2048, "model.encoder.initializer_range=0.02"]
# the bert4rec card with the sparse-catalogue dropout (experiment=sparse_catalogue_bert4rec before session 10)
BERT4REC_DROP01 = ["model=bert4rec", "model.encoder.dropout=0.1", "model.encoder.attention_dropout=0.1"]
BERT4REC_RECSYS23 = ["model.objective.last_item_prob=0", "trainer.grad_clip=null", "trainer.precision=no"]
# experiment=sparse_catalogue_bert4rec as sessions 10-16 ran it (before the learning-rate decay on a plateau and the
# 5-epoch selection window joined it), so that the trials on top of it keep their meaning
BERT4REC_RECIPE_S10 = [
    "experiment=sparse_catalogue_bert4rec", "trainer.selection_window=1", "trainer.plateau_lr_factor=null",
]  # fmt: skip
# name -> overrides on top of BASE (a trial that names no precision runs at trainer.precision=auto: bf16 on a CPU
# with native bf16); the RecSys 2023 SASRec+ settings (antklen/sasrec-bert4rec-recsys23,
# src/configs/SASRec.yaml: hidden 64, 2 blocks, 1 head, dropout 0.1, Adam 1e-3, batch 128, last 50 items, full CE)
TRIALS: dict[str, list[str]] = {
    "sasrec-defaults-full": ["model=sasrec"],
    "sasrec-recsys23": ["model=sasrec", *RECSYS23, "trainer.precision=no"],  # fp32 (ran before precision=auto)
    "sasrec-recsys23-bf16": ["model=sasrec", *RECSYS23, "trainer.precision=bf16"],
    "sasrec-recsys23-scaled-bf16": ["model=sasrec", *RECSYS23, "model.scale_embeddings=true", "trainer.precision=bf16"],
    "sparse-catalogue-seed1": ["experiment=sparse_catalogue", "seed=1"],  # the chosen recipe, second seed
    # RecTools' protocol: 2,048 sampled users validate, the other 38k also train on their validation target
    "sparse-catalogue-valid2048": ["experiment=sparse_catalogue", "split.valid_users=2048"],
    "sasrec-recsys23-d128-scaled-bf16": [
        "model=sasrec", *RECSYS23, "model.embedding_dim=128", "model.scale_embeddings=true", "trainer.precision=bf16",
    ],  # fmt: skip
    "sasrec-recsys23-b256": ["model=sasrec", *RECSYS23, "model.batch_size=256", "model.optimizer.lr=2e-3"],
    "sasrec-rectools-d256": [
        "model=sasrec", "model.embedding_dim=256", "model.encoder.num_heads=4", "model.optimizer.lr=1e-3",
        "model.encoder.dropout=0.2", "model.encoder.attention_dropout=0.2",
    ],  # fmt: skip
    "sasrec-recsys23-sampled": ["model=sasrec", *RECSYS23, "+model/loss=sampled"],
    "sasrec-recsys23-mixed": ["model=sasrec", *RECSYS23, "+model/loss=mixed"],
    "esasrec-defaults-bf16": [*ESASREC_CARD_2026_12_01, "trainer.precision=bf16"],
    "esasrec-full-bf16": [*ESASREC_CARD_2026_12_01, *FULL_SOFTMAX, "trainer.precision=bf16"],
    "esasrec-full-scaled": [*ESASREC_CARD_2026_12_01, *FULL_SOFTMAX, "model.scale_embeddings=true"],
    "esasrec-full-scaled-valid2048": [
        *ESASREC_CARD_2026_12_01, *FULL_SOFTMAX, "model.scale_embeddings=true", "split.valid_users=2048",
    ],  # fmt: skip
    # eSASRec's own Beauty settings (blondered/transformer_benchmark, configs/paper/loo/s3_beauty_ligr.yaml: 256
    # factors, 1 block, 1 head, dropout 0.2, sampled softmax with 256 negatives, last 50 items), on RecTools' protocol
    "esasrec-paper-beauty-valid2048": [
        *ESASREC_CARD_2026_12_01, "model.embedding_dim=256", "model.encoder.num_layers=1", "model.encoder.dropout=0.2",
        "model.encoder.attention_dropout=0.2", "split.valid_users=2048",
    ],  # fmt: skip
    # eSASRec + full softmax + scaled inputs overfits on Beauty (train loss as sasrec's, valid 25% lower): more
    # dropout, or a feed-forward as narrow as sasrec's (LiGR's SwiGLU is 4 x D wide, sasrec's card 1 x D)
    "esasrec-full-scaled-drop03-valid2048": [
        *ESASREC_FULL_SCALED, "model.encoder.dropout=0.3", "model.encoder.attention_dropout=0.3",
        "split.valid_users=2048",
    ],  # fmt: skip
    "esasrec-full-scaled-ff1-valid2048": [
        *ESASREC_FULL_SCALED, "model.encoder.ff_multiplier=1", "split.valid_users=2048",
    ],  # fmt: skip
    # ... or the output LayerNorm that sasrec's GPT-2 blocks end with and LiGR lacks
    "esasrec-full-scaled-norm-valid2048": ESASREC_NORM_VALID2048,
    "esasrec-full-scaled-norm-valid2048-seed1": [*ESASREC_NORM_VALID2048, "seed=1"],
    "esasrec-full-scaled-norm-valid2048-seed2": [*ESASREC_NORM_VALID2048, "seed=2"],
    "esasrec-full-scaled-ff1-norm-valid2048": [
        *ESASREC_FULL_SCALED, "model.encoder.ff_multiplier=1", "model.encoder.final_norm=true",
        "split.valid_users=2048",
    ],  # fmt: skip
    # N(0, 0.02) weights instead of LiGR's Xavier-normal (0.08-0.13 at D 64); the Xavier arm is
    # esasrec-full-scaled-norm-valid2048 and its seeds
    "esasrec-full-scaled-norm-init002-valid2048": ESASREC_RECIPE_VALID2048,
    "esasrec-full-scaled-norm-init002-valid2048-seed1": [*ESASREC_RECIPE_VALID2048, "seed=1"],
    "esasrec-full-scaled-norm-init002-valid2048-seed2": [*ESASREC_RECIPE_VALID2048, "seed=2"],
    "sparse-catalogue-d128-valid2048": [
        "experiment=sparse_catalogue", "model.embedding_dim=128", "model.encoder.num_heads=2", "split.valid_users=2048",
    ],  # fmt: skip
    # item 3 of #16: the recipe's full softmax against 2,048 sampled negatives (conf/model/loss/sampled.yaml) and
    # in-batch + uniform negatives (mixed.yaml), both with their logQ correction
    "sparse-catalogue-sampled-valid2048": [
        "experiment=sparse_catalogue", "+model/loss=sampled", "split.valid_users=2048",
    ],  # fmt: skip
    "sparse-catalogue-mixed-valid2048": ["experiment=sparse_catalogue", "+model/loss=mixed", "split.valid_users=2048"],
    # ... and where sampling gets closer to it: 4x the negatives, or 2,048 drawn by popularity (harder negatives)
    "sparse-catalogue-sampled8192-valid2048": [
        "experiment=sparse_catalogue", "+model/loss=sampled", "model.loss.num_negatives=8192", "split.valid_users=2048",
    ],  # fmt: skip
    "sparse-catalogue-sampled-pop-valid2048": [
        "experiment=sparse_catalogue", "+model/loss=sampled", "model.loss.distribution=popularity",
        "split.valid_users=2048",
    ],  # fmt: skip
    # their second and third seeds (session 10)
    **{
        f"sparse-catalogue-{variant}-valid2048-seed{seed}": [
            "experiment=sparse_catalogue", "+model/loss=sampled", option, "split.valid_users=2048", f"seed={seed}",
        ]
        for variant, option in (
            ("sampled8192", "model.loss.num_negatives=8192"), ("sampled-pop", "model.loss.distribution=popularity"),
        )
        for seed in (1, 2)
    },  # fmt: skip
    "sparse-catalogue-valid2048-seed1": ["experiment=sparse_catalogue", "split.valid_users=2048", "seed=1"],
    "sparse-catalogue-valid2048-seed2": ["experiment=sparse_catalogue", "split.valid_users=2048", "seed=2"],
    "bert4rec-defaults": ["model=bert4rec"],
    # the card (full softmax over the masked positions) with the sparse-catalogue dropout, on RecTools' protocol
    # and on the strict one (every validation target held out, as RecSys'23's BERT4Rec 0.0187)
    "bert4rec-drop01-valid2048": [*BERT4REC_DROP01, "split.valid_users=2048"],
    "bert4rec-drop01": BERT4REC_DROP01,
    # ... with the rest of RecSys'23's BERT4Rec (src/datasets.py, src/run.py): no forced last-item masking, no gradient
    # clipping (Lightning's default), fp32; run with --patience 20 as the anchor
    "bert4rec-recsys23": [*BERT4REC_DROP01, *BERT4REC_RECSYS23],
    # ... and, like that code, positions counted from the oldest event and no loss on rows where no event was drawn
    "bert4rec-recsys23-exact": [
        *BERT4REC_DROP01, *BERT4REC_RECSYS23, "model.encoder.positions=from_start",
        "model.objective.mask_last_if_none=false",
    ],  # fmt: skip
    # the shipped recipe (= bert4rec-recsys23-exact, seed 0) at its second and third seeds (session 11); run with
    # --patience 20, the recipe's own (every trial's trainer.patience comes from --patience)
    "sparse-catalogue-bert4rec-seed1": [*BERT4REC_RECIPE_S10, "seed=1"],
    "sparse-catalogue-bert4rec-seed2": [*BERT4REC_RECIPE_S10, "seed=2"],
    # ... selecting on the mean of the last 5 validations (trainer.selection_window, session 12): its seeds stopped
    # at a lone validation high (0.0006-0.0027 above its neighbours); run with --patience 20, as those
    **{
        f"sparse-catalogue-bert4rec-window5{'-seed' + str(seed) if seed else ''}": [
            *BERT4REC_RECIPE_S10, f"seed={seed}", "trainer.selection_window=5",
        ]  # fmt: skip
        for seed in (0, 1, 2)
    },
    # ... with more of each history masked: BERT4Rec's paper found 0.6 best on Beauty's short histories (Sun et al.,
    # CIKM 2019, section 4.6; 0.4 on Steam, 0.2 on the long MovieLens ones), RecSys'23 ran 0.2 everywhere (session 15)
    **{
        f"sparse-catalogue-bert4rec-window5-mask{str(p).replace('.', '')}": [
            *BERT4REC_RECIPE_S10, f"model.objective.mask_prob={p}", "trainer.selection_window=5",
        ]  # fmt: skip
        for p in (0.4, 0.6)
    },
    # ... with twice the learning rate: the recipe's late climb (valid 0.0254-0.0264 after epoch 70 at Adam 1e-3) costs
    # ~3 hours per seed on a 2-core CPU; the card's 3e-3 diverged on ml-100k, so 2e-3 (session 16)
    **{
        f"sparse-catalogue-bert4rec-window5-lr2e3{'-seed' + str(seed) if seed else ''}": [
            *BERT4REC_RECIPE_S10, f"seed={seed}", "trainer.selection_window=5", "model.optimizer.lr=2e-3",
        ]  # fmt: skip
        for seed in (0, 1, 2)
    },
    # ... and with the learning rate x 0.1 when patience (20) runs out, then patience again (trainer.plateau_lr_factor,
    # session 16): the window-5 runs of seeds 1-2 above ended by patience on a plateau (valid ~0.025) and continue
    # from their snapshot with it, as a run given it from the start would (tests/test_plateau_lr.py)
    "bert4rec-recsys23-exact-window5-plateau": [
        *BERT4REC_DROP01, *BERT4REC_RECSYS23, "model.encoder.positions=from_start",
        "model.objective.mask_last_if_none=false", "trainer.selection_window=5", "trainer.plateau_lr_factor=0.1",
    ],  # fmt: skip
    **{
        f"sparse-catalogue-bert4rec-window5-plateau-seed{seed}": [
            *BERT4REC_RECIPE_S10, f"seed={seed}", "trainer.selection_window=5", "trainer.plateau_lr_factor=0.1",
        ]  # fmt: skip
        for seed in (0, 1, 2)
    },
    "gru-defaults": ["model=gru"],
    "lstm-defaults": ["model=lstm"],
}


def command(name: str, args: argparse.Namespace) -> list[str]:
    run_dir = args.workdir / name
    return [
        *BASE, f"data.path={args.beauty}", *TRIALS[name],
        f"trainer.patience={args.patience}", f"trainer.num_threads={args.threads}", f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={args.workdir / 'cache'}", *args.override,
    ]  # fmt: skip


def run(name: str, args: argparse.Namespace) -> dict | None:
    where = args.workdir / name
    done = finished(where) if args.collect_only else finished_as_asked(where, command(name, args))
    if args.collect_only or (done is not None and not more_budget(done, args.override)):
        return done
    return finished(args.workdir / name) if train(command(name, args), args.threads, name) else None


def more_budget(results: dict, overrides: list[str]) -> bool:
    """A trial stopped by its time budget continues (trainer.resume=auto) when this command gives it a larger
    `trainer.max_minutes` (counted across resumes); any other finished trial is reused as it is."""
    asked = [o.split("=", 1)[1] for o in overrides if o.startswith("trainer.max_minutes=")]
    if not results["training"].get("out_of_time") or not asked:
        return False
    if asked[-1] in ("null", "None"):  # no budget at all
        return True
    had = results.get("config", {}).get("trainer", {}).get("max_minutes")
    return had is None or float(asked[-1]) > float(had)


EPOCH_LINE = re.compile(r"epoch (\d+)  loss \S+  valid ndcg@10 ([0-9.]+)  \(([0-9.]+)s\)")


def stopped_row(name: str, run_dir: Path) -> str | None:
    """A trial stopped by hand (no results.json): its curve from train.log, no test metrics."""
    log = run_dir / "train.log"
    curve = [(int(e), float(v), float(s)) for e, v, s in EPOCH_LINE.findall(log.read_text())] if log.exists() else []
    if not curve:
        return None
    best = max(curve, key=lambda c: c[1])
    return (
        f"| {name} | {valid_users(name)} | {best[1]:.4f} | {len(curve)} ({best[0]}), no results.json: stopped or "
        f"still running | {sum(c[2] for c in curve) / len(curve):.0f}* | "
        f"{sum(c[2] for c in curve[: best[0]]) / 60:.1f} | – | – | |"
    )


def valid_users(name: str) -> str:
    """Who validates in a trial: every user, or the sample of split.valid_users (the others train on their target)."""
    sample = [o.split("=", 1)[1] for o in TRIALS[name] if o.startswith("split.valid_users=")]
    return f"{int(sample[0]):,}" if sample else "all"


def row(name: str, r: dict, chosen: str | None) -> str:
    t, m = r["training"], r["metrics"]
    train_s = [h["train/epoch_seconds"] for h in r["history"] if "train/epoch_seconds" in h]
    best_valid = max(h["valid/ndcg@10"] for h in r["history"] if "valid/ndcg@10" in h)
    epochs = f"{t['epochs_run']} ({t['best_epoch']}){'†' if t.get('out_of_time') else ''}"
    to_best = seconds_to(r)
    return (
        f"| {name} | {valid_users(name)} | {best_valid:.4f} | {epochs} | {sum(train_s) / len(train_s):.0f} | "
        f"{to_best / 60:.1f} | {m['test/ndcg@10']:.4f} | {m['test/hr@10']:.4f} | "
        f"{'**yes**' if name == chosen else ''} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beauty", required=True, help="folder holding beauty.txt")
    ap.add_argument("--trials", nargs="+", default=list(TRIALS), choices=list(TRIALS))
    ap.add_argument("--jobs", type=int, default=2, help="trials at a time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    ap.add_argument("--patience", type=int, default=3, help="early-stopping patience of the search runs")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-tune-beauty"))
    ap.add_argument("--chosen", help="the trial the search picked (by validation NDCG@10), marked in the table")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tuning_beauty.md")
    ap.add_argument("--collect-only", action="store_true", help="tabulate finished trials only; start none")
    ap.add_argument("override", nargs="*", help="extra Hydra overrides for every trial")
    args = ap.parse_args()
    args.workdir = args.workdir.resolve()
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda n: run(n, args), args.trials))
    # every trial of the work dir, not only those of this command: running one trial never shrinks the table
    shown = [n for n in TRIALS if n in args.trials or (args.workdir / n).is_dir()]
    done = {n: r for n in shown if (r := finished(args.workdir / n)) is not None}
    text = "\n".join(
        [
            f"Command: `python benchmarks/tune_beauty.py {' '.join(sys.argv[1:])}`  ",
            f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores. Rows: every trial found in "
            f"{args.workdir} (each ran with its own command, jobs, threads and patience: see the text around this "
            "table). valid users: all = the 40,226 users validate; a number = `split.valid_users`, only that sample "
            "validates and every other user also trains on its validation target (RecTools' protocol: valid and "
            "test columns compare only within one protocol).",
            "",
            "| trial | valid users | best valid NDCG@10 | epochs (best) | train s/epoch | min to best valid | "
            "test NDCG@10 | test HR@10 | chosen |",
            "|---|---|---|---|---|---|---|---|---|",
            *[row(n, r, args.chosen) for n, r in done.items()],
            *filter(None, [stopped_row(n, args.workdir / n) for n in shown if n not in done]),
            "",
            "Test columns are reported, never used to choose. † stopped by its time budget, not by early stopping. "
            "* training seconds per epoch read from train.log; their minutes to best exclude validation.",
            "",
            "Overrides of each trial (from its results.json):",
            "",
            *[f"- {n}: `{' '.join(r.get('overrides', []))}`" for n, r in done.items()],
            *[f"- {n} (no results.json; the trial's own overrides): `{' '.join(TRIALS[n])}`" for n in shown
              if n not in done],
            "",
        ]
    )
    emit(text, args.out, title="# Beauty recipe search (validation split only)")


if __name__ == "__main__":
    main()
