"""The stages `train(cfg)` lists, one function each: open the run, prepare the data, split it, build the model,
start tracking, fit, evaluate. Each takes what the previous ones produced; none reads global state."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqexp.app.config_checks import check_config
from seqexp.app.hydra_context import run_group, task_overrides
from seqexp.app.resume import (
    check_budget_not_exceeded,
    check_same_run,
    check_snapshot_fits,
    load_snapshot,
    run_identity,
)
from seqexp.app.run_dir import RunDirClaim, check_run_dir, claim_run_dir
from seqexp.data import load_data
from seqexp.data.features import event_features, feature_sizes, target_mask
from seqexp.data.loader import EvalTensors, TrainTensors, eval_tensors, train_tensors
from seqexp.data.rule_text import timestamp_unit_read
from seqexp.data.sequences import PreparedData
from seqexp.data.splits import Split, make_split
from seqexp.errors import ConfigError
from seqexp.evaluation.protocol import EvalProtocol, EvalResult
from seqexp.io import write_json
from seqexp.model.item_init import apply_item_init
from seqexp.model.loss_choice import built_config
from seqexp.model.recommender import SequenceRecommender, build_model, count_parameters
from seqexp.tracking.trackers import NullTracker
from seqexp.training.accelerator import check_precision_runs, make_accelerator
from seqexp.training.checkpoint import atomic_save, save_checkpoint
from seqexp.training.distributed import export_slurm_environment
from seqexp.training.loop import FitHooks, fit
from seqexp.training.settings import TrainerSettings
from seqexp.training.state import FitResult

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One job: its config, run dir, accelerator and checked settings."""

    cfg: DictConfig
    claim: RunDirClaim  # the run dir, and whether this job owns it
    accelerator: Accelerator
    settings: TrainerSettings
    selection_metric: str  # e.g. "ndcg@10": early stopping and checkpoint selection (optimized_metric)
    overrides: list[str]
    resume: dict[str, Any] | None = None
    saved_best: bool = False  # this job wrote checkpoints/best.pt (a resumed run: its earlier epochs did)
    identity: dict[str, Any] | None = None  # identity_of's result, computed once (a text run digests its item table)
    started: float = field(default_factory=time.perf_counter)

    @property
    def run_dir(self) -> Path:
        return self.claim.run_dir

    @property
    def main_process(self) -> bool:  # rank 0 owns the run dir's files and the W&B run
        return self.accelerator.is_main_process

    @property
    def best_path(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


@dataclass
class Tensors:
    train: TrainTensors
    valid: EvalTensors
    test: EvalTensors
    features: list[str]  # model.features, in order


@dataclass
class Outcome:
    """What training and testing produced (results.json is built from it)."""

    model: SequenceRecommender
    item_init: dict[str, Any]
    fitted: FitResult
    test: EvalResult
    popularity: tuple[EvalResult, EvalResult]  # (valid, test) of the popularity baseline
    tracker: Any
    prepare_s: float


def open_run(cfg: DictConfig, claim: RunDirClaim) -> Run:
    """Check the run dir (every rank) and the config, set up devices and seeds, claim the dir (rank 0); load the
    snapshot a resume continues. `claim` is the failure policy's: it records from here on that the dir is ours."""
    mode = check_run_dir(cfg)  # before anything else: a refused command must not touch another run's dir
    overrides = task_overrides()
    settings, selection = check_config(cfg, overrides)
    export_slurm_environment()  # SLURM tasks of one job -> one process group, as torchrun would
    accelerator = make_accelerator(
        str(cfg.trainer.device), str(cfg.trainer.precision), bool(cfg.trainer.get("compile", False))
    )
    claim_run_dir(claim, mode, accelerator.is_main_process)
    run = Run(cfg, claim, accelerator, settings, selection, overrides)
    run.resume = load_snapshot(run.last_path) if mode == "resume" else None
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    set_seed(settings.seed, deterministic=bool(cfg.trainer.get("deterministic", False)))
    return run


def identity_of(run: Run, data: PreparedData) -> dict[str, Any]:
    """The identity a snapshot of this run stores and a resume must match (seqexp/app/resume.py); computed once per
    run (the resume check and the snapshots share it)."""
    if run.identity is None:
        precision = str(run.accelerator.mixed_precision)  # what trainer.precision=auto resolved to here
        settings = run.settings
        run.identity = run_identity(
            run.cfg, data.fingerprint, run.overrides, precision, settings.grad_clip, data.item_side
        )
    return run.identity


def prepare_data(run: Run) -> PreparedData:
    """Read, clean and sequence the log (rank 0 first, and it caches; the other ranks then read the cache)."""
    with run.accelerator.main_process_first():
        data = load_data(run.cfg.data, run.cfg.paths.cache_dir)
    if run.main_process:
        log.info("\n%s", data.report.to_text())
        write_json(run.run_dir / "prep_report.json", data.report.to_dict())
    if run.resume is not None:
        check_same_run(run.resume, identity_of(run, data), run.last_path)
        check_budget_not_exceeded(run.resume, run.settings.max_epochs, run.last_path)
    return data


def log_valid_sample(split: Split, asked: int) -> None:
    """Say in train.log what split.valid_users did (how many validate, how many train on their target)."""
    longer = int(np.sum(split.train_end[split.test.users] == split.test.history_end))
    if longer == 0:
        log.warning(
            "split.valid_users=%d: every one of the %d validation users validates, the same as split.valid_users=null",
            asked,
            len(split.valid),
        )
    else:
        log.info(
            "split.valid_users=%d: %d users validate; %d others also train on their validation target",
            asked,
            len(split.valid),
            longer,
        )


def split_data(run: Run, data: PreparedData) -> tuple[Split, Tensors]:
    """The evaluation split and the fixed-length tensors of its three parts."""
    cfg = run.cfg
    is_target = target_mask(data, cfg.split.get("target_behaviors"))
    valid_users = cfg.split.get("valid_users")  # checked by config_checks
    try:
        split = make_split(data, cfg.split, is_target, time_format=cfg.data.get("timestamp_format"))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if valid_users is not None:
        log_valid_sample(split, int(valid_users))
    if not len(split.valid) or not len(split.test):
        raise ConfigError(
            f"split={split.name} leaves {len(split.valid)} validation and {len(split.test)} test cases; "
            f"move the cut times (split.valid_time / split.test_time) or relax split.target_behaviors"
        )
    max_len, names = int(cfg.data.max_len), list(cfg.model.get("features") or [])
    features = event_features(data, names)
    tensors = Tensors(
        train=train_tensors(data, split, max_len, cfg.data.get("train_stride"), features, is_target),
        valid=eval_tensors(data, split.valid, max_len, features),
        test=eval_tensors(data, split.test, max_len, features),
        features=names,
    )
    return split, tensors


def build(run: Run, data: PreparedData, split: Split, tensors: Tensors) -> tuple[SequenceRecommender, dict[str, Any]]:
    """The model of model.*, with pretrained item vectors when model.item_init asks; returns (model, item init)."""
    cfg = run.cfg
    sizes = {k: v for k, v in feature_sizes(data).items() if k in tensors.features}
    model = build_model(model_config(cfg.model, data.n_items), data.n_items, item_counts(data, split), sizes)
    check_precision_runs(model, run.accelerator)  # before the item vectors are trained or the first batch
    kind = str(cfg.model.get("item_init") or "random")
    item_init = apply_item_init(model, kind, data, split, cfg.pretrained, int(cfg.seed), cfg.paths.cache_dir)
    if run.resume is not None:
        check_snapshot_fits(run.resume, model, run.last_path)
    return model, item_init


def model_config(model_cfg: DictConfig, n_items: int) -> DictConfig:
    """model.* as the model is built (seqexp.model.loss_choice: the card, or the automatic loss above
    model.loss_auto.above_items); the choice is logged here and recorded in results.json (training.loss)."""
    built, record = built_config(model_cfg, n_items)
    if record["chosen"] != "configured":
        log.info(
            "model.loss: %s items > model.loss_auto.above_items=%s, so training uses %s instead of the full softmax "
            "(model.loss_auto.above_items=null keeps the full softmax)",
            n_items, model_cfg.loss_auto.above_items, record["class"],
        )  # fmt: skip
    return built


def item_counts(data: PreparedData, split: Split) -> torch.Tensor:
    return torch.from_numpy(split.item_counts(data))  # (N + 1,) training popularity


def start_tracker(run: Run, data: PreparedData, model: SequenceRecommender) -> NullTracker:
    """The W&B run (rank 0; the others track nothing), with the data report and the sizes."""
    cfg = run.cfg
    if not run.main_process:
        return NullTracker()
    group = cfg.logger.get("group") if "group" in cfg.logger else None
    tracker = instantiate(cfg.logger, **({"group": run_group()} if "group" in cfg.logger and group is None else {}))
    tracker.start(
        run.run_dir,
        config=OmegaConf.to_container(cfg, resolve=True),
        name=f"{cfg.model.name}-{cfg.data.name}-s{cfg.seed}",
        tags=[str(cfg.model.name), str(cfg.data.name)],
    )
    tracker.log_table(
        "data/preparation",
        ["rule", "dropped", "rows_left", "description"],
        [[r.rule, r.dropped, r.rows_left, r.description] for r in data.report.rules],
    )
    sizes = {"data/users": data.n_users, "data/items": data.n_items, "data/events": data.n_events}
    tracker.summary({**sizes, "model/parameters": count_parameters(model)})
    return tracker


def train_model(
    run: Run, model: SequenceRecommender, data: PreparedData, tensors: Tensors, protocol: EvalProtocol, tracker: Any
) -> FitResult:
    """Fit with early stopping; rank 0 saves the best checkpoint (with what serving needs) and a resumable
    snapshot after every epoch (with the run's identity, which a resume must match)."""
    cfg = run.cfg
    serving = {  # what recommend and export need besides the weights; built once, not at every improvement
        "item_ids": data.item_ids.tolist(),
        "config": OmegaConf.to_yaml(OmegaConf.to_container(cfg, resolve=True)),
        "n_items": data.n_items,
        "max_len": int(cfg.data.max_len),
        "feature_sizes": {k: v for k, v in feature_sizes(data).items() if k in tensors.features},
        "data_fingerprint": data.fingerprint,  # export and resume refuse a run whose data changed
        "behavior_vocab": list(data.behavior_vocab),  # serving maps behaviour names to the codes training used
        "timestamp_unit": timestamp_unit_read(data.report),  # serving reads history times in the log's unit (ms, ...)
        "working_dir": os.getcwd(),  # relative paths of the config (data.path, paths.*) are relative to it
    }
    identity = identity_of(run, data)

    def save_best(m: torch.nn.Module, epoch: int, valid: dict[str, float]) -> None:
        if cfg.trainer.save_checkpoint and run.main_process:
            save_checkpoint(run.best_path, m.state_dict(), epoch=epoch, valid=valid, **serving)
            run.saved_best = True

    def save_last(snapshot: dict[str, Any]) -> None:
        if cfg.trainer.get("save_last", True) and run.main_process:
            atomic_save(run.last_path, {**snapshot, "identity": identity})

    hooks = FitHooks(tracker=tracker, on_best=save_best, on_epoch_end=save_last)
    optimizer = instantiate(cfg.model.optimizer)
    return fit(
        model, optimizer, tensors.train, tensors.valid, run.settings, protocol, run.accelerator, hooks, run.resume
    )
