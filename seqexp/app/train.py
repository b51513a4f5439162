"""`seqexp-train` (also `python -m seqexp.app.train`): the Hydra app.

main(cfg) -> train(cfg) -> (metrics, objects). `train` does the work and is what tests call;
`main` adds Hydra and turns user errors into one clear line.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from accelerate.utils import set_seed
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqexp.app.resolvers import register as register_resolvers
from seqexp.data import load_data
from seqexp.data.features import event_features, feature_sizes, target_mask
from seqexp.data.loader import eval_tensors, train_tensors
from seqexp.data.splits import make_split
from seqexp.errors import ConfigError, SeqexpError
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.protocol import evaluate_sharded
from seqexp.io import write_json
from seqexp.model.item_init import apply_item_init
from seqexp.model.recommender import build_model, count_parameters
from seqexp.tracking.console import print_metrics_table
from seqexp.tracking.failures import record_failure
from seqexp.tracking.results import package_versions
from seqexp.tracking.top_k_table import top_k_examples
from seqexp.tracking.trackers import NullTracker
from seqexp.training.checkpoint import atomic_save, load_checkpoint, save_checkpoint
from seqexp.training.distributed import export_slurm_environment
from seqexp.training.loop import SELECTION_METRIC, fit, make_accelerator

log = logging.getLogger(__name__)


def _conf_dir() -> str:
    """conf/ at the repository root (source checkout, editable install) or seqexp/conf in a wheel."""
    package = Path(__file__).resolve().parents[1]  # seqexp/
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").exists():
            return str(candidate)
    raise RuntimeError(f"seqexp configs not found next to {package}")


CONF_DIR = _conf_dir()
register_resolvers()


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Prepare data, train the configured model with early stopping, evaluate it and popularity, write results.
    A failure is recorded in the run dir (results.json with status "failed", traceback.txt) and re-raised."""
    try:
        return _train(cfg)
    except Exception as e:
        record_failure(cfg, e)
        raise


def _train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    t_start = time.perf_counter()
    _check_config(cfg)
    export_slurm_environment()  # SLURM tasks of one job -> one process group, as torchrun would
    accelerator = make_accelerator(
        str(cfg.trainer.device), str(cfg.trainer.precision), bool(cfg.trainer.get("compile", False))
    )
    main_process = accelerator.is_main_process  # rank 0 owns the run dir's files and the W&B run
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, last_path = run_dir / "checkpoints" / "best.pt", run_dir / "checkpoints" / "last.pt"
    resume = _resume_snapshot(cfg, last_path)  # fails early, before any work, when there is nothing to resume
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    set_seed(int(cfg.seed), deterministic=bool(cfg.trainer.get("deterministic", False)))
    resolved = OmegaConf.to_container(cfg, resolve=True)

    # ---- data (rank 0 prepares and caches first; other ranks then read the cache)
    with accelerator.main_process_first():
        data = load_data(cfg.data, cfg.paths.cache_dir)
    prepare_s = time.perf_counter() - t_start
    if main_process:
        log.info("\n%s", data.report.to_text())
        write_json(run_dir / "prep_report.json", data.report.to_dict())
    is_target = target_mask(data, cfg.split.get("target_behaviors"))
    try:
        split = make_split(data, cfg.split, is_target)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if not len(split.valid) or not len(split.test):
        raise ConfigError(
            f"split={split.name} leaves {len(split.valid)} validation and {len(split.test)} test cases; "
            f"move the cut times (split.valid_time / split.test_time) or relax split.target_behaviors"
        )
    max_len = int(cfg.data.max_len)
    features = event_features(data, list(cfg.model.get("features") or []))
    train_t = train_tensors(data, split, max_len, cfg.data.get("train_stride"), features, is_target)
    valid_t = eval_tensors(data, split.valid, max_len, features)
    test_t = eval_tensors(data, split.test, max_len, features)
    ks = tuple(int(k) for k in cfg.eval.ks)
    eval_kwargs = {
        "n_items": data.n_items,
        "filter_seen": bool(cfg.eval.filter_seen),
        "ks": ks,
        "batch_size": int(cfg.eval.batch_size),
    }

    # ---- model, tracker
    item_counts = torch.from_numpy(split.item_counts(data))  # (N + 1,) training popularity
    sizes = {k: v for k, v in feature_sizes(data).items() if k in features}
    model = build_model(cfg.model, data.n_items, item_counts, sizes)
    item_init = apply_item_init(
        model,
        str(cfg.model.get("item_init") or "random"),
        data,
        split,
        cfg.pretrained,
        int(cfg.seed),
        cfg.paths.cache_dir,
    )
    tracker = instantiate(cfg.logger) if main_process else NullTracker()
    if getattr(tracker, "group", "") is None:  # group the jobs of one multirun together in W&B
        tracker.group = _multirun_name() or _wandb_sweep_name()
    tracker.start(
        run_dir,
        config=resolved,
        name=f"{cfg.model.name}-{cfg.data.name}-s{cfg.seed}",
        tags=[str(cfg.model.name), str(cfg.data.name)],
    )
    tracker.log_table(
        "data/preparation",
        ["rule", "dropped", "rows_left", "description"],
        [[r.rule, r.dropped, r.rows_left, r.description] for r in data.report.rules],
    )
    tracker.summary(
        {
            "data/users": data.n_users,
            "data/items": data.n_items,
            "data/events": data.n_events,
            "model/parameters": count_parameters(model),
        }
    )

    # ---- popularity under the same protocol
    pop = PopularityScorer(item_counts)
    pop_valid, pop_test = evaluate_sharded(pop, valid_t, **eval_kwargs), evaluate_sharded(pop, test_t, **eval_kwargs)

    # ---- train
    # what recommend needs besides the weights; built once, not at every improvement
    serving = {
        "item_ids": data.item_ids.tolist(),
        "config": OmegaConf.to_yaml(resolved),
        "n_items": data.n_items,
        "max_len": max_len,
        "feature_sizes": sizes,
        "data_fingerprint": data.fingerprint,  # export and resume refuse a run whose data changed
        "behavior_vocab": data.behavior_vocab,  # serving maps behaviour names to the codes training used
    }

    def save_best(m: torch.nn.Module, epoch: int, valid: dict[str, float]) -> None:
        if cfg.trainer.save_checkpoint and accelerator.is_main_process:
            save_checkpoint(ckpt_path, m.state_dict(), epoch=epoch, valid=valid, **serving)

    def save_last(snapshot: dict[str, Any]) -> None:
        if cfg.trainer.get("save_last", True) and accelerator.is_main_process:
            atomic_save(last_path, snapshot)

    try:
        fitted = fit(
            model,
            instantiate(cfg.model.optimizer),
            train_t,
            valid_t,
            accelerator=accelerator,
            batch_size=int(cfg.model.batch_size),
            max_epochs=int(cfg.trainer.max_epochs),
            patience=int(cfg.trainer.patience),
            eval_every=int(cfg.trainer.eval_every),
            grad_clip=cfg.trainer.grad_clip,
            eval_kwargs=eval_kwargs,
            seed=int(cfg.seed),
            tracker=tracker,
            on_best=save_best,
            on_epoch_end=save_last,
            resume=resume,
            progress_bar=bool(cfg.trainer.progress_bar),
            limit_train_batches=cfg.trainer.get("limit_train_batches"),
            max_minutes=cfg.trainer.get("max_minutes"),
        )
        model.eval()
        test = evaluate_sharded(model.score, test_t, device=accelerator.device, **eval_kwargs)
    except BaseException:  # finish W&B as failed; main() records the failure in the run dir
        tracker.finish(failed=True)
        raise

    # ---- results
    metrics = {f"valid/{k}": v for k, v in fitted.best_valid.items()}
    metrics.update({f"test/{k}": v for k, v in test.metrics.items()})
    results = {
        "status": "completed",
        "model": str(cfg.model.name),
        "data": str(cfg.data.name),
        "seed": int(cfg.seed),
        "metrics": metrics,
        "popularity": {
            **{f"valid/{k}": v for k, v in pop_valid.metrics.items()},
            **{f"test/{k}": v for k, v in pop_test.metrics.items()},
        },
        "per_user": {
            "metric": "test/ndcg@10",
            "user_ids": data.user_ids[test.users].tolist(),
            "values": test.per_user["ndcg@10"].tolist(),
        },
        "protocol": {
            "split": split.name,
            "split_config": OmegaConf.to_container(cfg.split, resolve=True),
            "eval_cases": {"valid": len(split.valid), "test": len(split.test)},
            "features": list(features),
            "item_init": item_init,
            "ranking": "full",
            "filter_seen": bool(cfg.eval.filter_seen),
            "ks": list(ks),
            "selection_metric": f"valid/{SELECTION_METRIC}",
            "ties": "expected value under random tie-break",
            "max_len": max_len,
            "train_stride": cfg.data.get("train_stride"),
        },
        "data_fingerprint": data.fingerprint,
        "data_summary": {
            "users": data.n_users,
            "items": data.n_items,
            "events": data.n_events,
            "source": data.report.source,
            "file_sha256": data.report.file_sha256,
        },
        "training": {
            "best_epoch": fitted.best_epoch,
            "epochs_run": fitted.epochs_run,
            "stopped_early": fitted.stopped_early,
            "out_of_time": fitted.out_of_time,
            "parameters": count_parameters(model),
            "train_windows": len(train_t),
            "train_targets": train_t.n_targets,
            "device": str(accelerator.device),
            "processes": accelerator.num_processes,  # > 1 under torchrun / SLURM tasks (DDP)
            "precision": str(cfg.trainer.precision),
            "compile": bool(cfg.trainer.get("compile", False)),
            "batches_per_epoch": math.ceil(len(train_t) / int(cfg.model.batch_size)),
        },
        "timings": {
            "prepare_s": prepare_s,
            "train_s": fitted.train_seconds,
            "valid_eval_s": fitted.eval_seconds,
            "test_eval_s": test.seconds,
            "total_s": time.perf_counter() - t_start,
        },
        "throughput": {
            "train_sequences_per_s": fitted.sequences_per_second,
            "train_targets_per_s": fitted.targets_per_second,
            "eval_users_per_s": test.users_per_second,
        },
        "history": fitted.history,
        "versions": package_versions(),
        "checkpoint": str(ckpt_path.relative_to(run_dir)) if ckpt_path.exists() else None,
        "overrides": _hydra_overrides(),
        "wandb_group": getattr(tracker, "group", None),
        "config": resolved,
    }
    if main_process:
        write_json(run_dir / "results.json", results)
        # the same payload (minus config and history) in W&B, so that `seqexp-compare --from-wandb` can pair runs
        tracker.summary({"results": {k: v for k, v in results.items() if k not in ("config", "history", "versions")}})
        tracker.summary(
            {
                **metrics,
                **{f"popularity/{k}": v for k, v in results["popularity"].items()},
                "best_epoch": fitted.best_epoch,
                **{f"throughput/{k}": v for k, v in results["throughput"].items()},
            }
        )
        columns, rows = top_k_examples(model, data, split.test, test_t, bool(cfg.eval.filter_seen))
        tracker.log_table("test/top_k_examples", columns, rows)
        if cfg.logger.get("log_checkpoint") and ckpt_path.exists():
            tracker.log_artifact(ckpt_path, name=f"model-{cfg.model.name}-{cfg.data.name}-s{cfg.seed}", kind="model")
        tracker.finish()
        print_metrics_table(
            str(cfg.model.name),
            fitted.best_valid,
            test.metrics,
            pop_valid.metrics,
            pop_test.metrics,
            ks,
            footer=f"{fitted.epochs_run} epochs (best {fitted.best_epoch}), "
            f"{results['timings']['total_s']:.1f} s total, "
            f"{fitted.sequences_per_second:.0f} training sequences/s; run dir {run_dir}",
        )
    objects = {
        "model": model,
        "data": data,
        "split": split,
        "results": results,
        "popularity_test": pop_test,
        "test": test,
    }
    return metrics, objects


def _resume_snapshot(cfg: DictConfig, last_path: Path) -> dict[str, Any] | None:
    """trainer.resume=true: continue the run whose dir this is from its checkpoints/last.pt."""
    if not cfg.trainer.get("resume", False):
        return None
    if not last_path.exists():
        raise ConfigError(
            f"trainer.resume=true but {last_path} does not exist: resume in the killed run's own dir, "
            f"`seqexp-train <its overrides> hydra.run.dir=<that run dir> trainer.resume=true`"
        )
    return load_checkpoint(last_path)


def _multirun_name() -> str | None:
    """The multirun's folder name (e.g. 2026-11-27_12-00-00) inside a Hydra multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return f"{HydraConfig.get().job.name}-{Path(HydraConfig.get().sweep.dir).name}"


def _wandb_sweep_name() -> str | None:
    """Inside a `wandb agent` run: the sweep's id, so that its runs share a group too."""
    sweep_id = os.environ.get("WANDB_SWEEP_ID")
    return f"sweep-{sweep_id}" if sweep_id else None


def _hydra_overrides() -> list[str]:
    """The command-line overrides of this job (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _check_config(cfg: DictConfig) -> None:
    if int(cfg.data.max_len) < 2:
        raise ConfigError(
            f"data.max_len={cfg.data.max_len} is too short: an encoder needs at least 2 events; "
            f"use e.g. data.max_len=50"
        )
    if int(cfg.data.min_seq_len) < 3 and cfg.split.name == "leave_one_out":
        raise ConfigError(
            f"data.min_seq_len={cfg.data.min_seq_len}: leave-one-out needs 3 events per user "
            f"(train, validation, test); set data.min_seq_len=3 or more"
        )


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns `optimized_metric` for sweepers (Optuna).

    A failure is recorded in the job's run dir (results.json with status "failed", traceback.txt). A single
    run then stops: a user error as one clear line (exit 2), anything else with its traceback. Inside a
    multirun the job returns None instead, so that its siblings finish; the sweep report lists it.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        metrics, _ = train(cfg)
    except Exception as e:  # train() has recorded it in the run dir
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error("job failed: %s: %s (traceback in %s)", type(e).__name__, e, cfg.paths.output_dir)
            return None
        if isinstance(e, SeqexpError):
            log.error("%s", e)
            print(f"seqexp: error: {e}", file=sys.stderr)
            sys.exit(2)
        raise
    return metrics.get(str(cfg.optimized_metric))


if __name__ == "__main__":
    main()
