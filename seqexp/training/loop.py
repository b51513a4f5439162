"""The training loop: one explicit loop on HF Accelerate (device placement, mixed precision, DDP-ready).

    for epoch: for batch of windows: inputs, targets, features = model.training_batch(windows, ...);
               loss = model(inputs, targets, features)
               evaluate on validation every `eval_every` epochs; keep the best state by valid NDCG@10;
               stop after `patience` evaluations without improvement.

After every epoch `on_epoch_end` receives a resumable snapshot (`LoopState` + model, optimiser and RNG
states); `fit(..., resume=snapshot)` continues from it and ends with the same numbers as an
uninterrupted run (on CPU). A non-finite loss stops training at once, naming the step.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import TorchDynamoPlugin
from tqdm.auto import tqdm

from seqexp.data.loader import EvalTensors, TrainTensors
from seqexp.errors import ConfigError, TrainingDiverged
from seqexp.evaluation.protocol import evaluate_sharded
from seqexp.model.recommender import SequenceRecommender, columns_to_keep
from seqexp.ranks import rank_slice, world
from seqexp.tracking.trackers import NullTracker

log = logging.getLogger(__name__)

SELECTION_METRIC = "ndcg@10"
SYNC_EVERY = 20  # steps between host syncs (progress bar, non-finite loss check)


@dataclass
class LoopState:
    """Counters of the loop: what a resumed run needs besides the weights and RNG states."""

    epoch: int = 0  # last finished epoch
    step: int = 0  # optimiser steps so far
    best_score: float = -math.inf
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0  # evaluations since the last improvement
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    sequences: int = 0  # training windows seen
    targets: int = 0  # positions that carried a loss
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    stopped_early: bool
    out_of_time: bool  # stopped by the time budget (max_minutes) before early stopping or max_epochs
    train_seconds: float  # time in training steps only
    eval_seconds: float  # time in validation
    sequences_per_second: float  # training windows per second of training steps
    targets_per_second: float  # positions carrying a loss per second
    history: list[dict[str, float]] = field(default_factory=list)


def make_accelerator(device: str = "auto", precision: str = "no", compile: bool = False) -> Accelerator:
    """Accelerate places the model, runs autocast for `precision` and, with `compile`, wraps the training
    forward in `torch.compile` (inductor, dynamic shapes: padding trimming changes the length per batch)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    dynamo = TorchDynamoPlugin(backend="inductor", dynamic=True) if compile else None
    return Accelerator(cpu=use_cpu, mixed_precision=str(precision), dynamo_plugin=dynamo)


def fit(
    model: SequenceRecommender,
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    train: TrainTensors,
    valid: EvalTensors,
    *,
    accelerator: Accelerator,
    batch_size: int,
    max_epochs: int,
    patience: int,
    eval_every: int = 1,
    grad_clip: float | None = 1.0,
    eval_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    tracker: NullTracker | None = None,
    on_best: Callable[[SequenceRecommender, int, dict[str, float]], None] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    progress_bar: bool = True,
    limit_train_batches: int | None = None,
    max_minutes: float | None = None,
) -> FitResult:
    """Train `model` in place; on return it holds the best-validation weights. `limit_train_batches` ends every
    epoch after that many batches (smoke runs and speed measurements; None = whole epochs). `max_minutes` stops
    after the first epoch that ends past that much training + validation time (a budget, as RecBole's peer runs
    had; counted across a resume)."""
    tracker = tracker or NullTracker()
    eval_kwargs = dict(eval_kwargs or {})
    optimizer = optimizer_factory(model.parameters())
    ddp_model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    windows = train.windows.to(device)  # the whole training set lives on the device: batches are index slices
    real_events = (train.windows > 0).sum(dim=1)  # (M,) on the host: trimming a batch needs no device sync
    features = {k: v.to(device) for k, v in train.features.items()}
    is_target = train.is_target.to(device) if train.is_target is not None else None
    order_gen = torch.Generator().manual_seed(seed)
    mask_gen = torch.Generator(device=device).manual_seed(seed + 1)
    state, best_weights = LoopState(), None
    n_ranks = world()[1]
    if resume is not None:
        state, best_weights = _restore(resume, model, optimizer, order_gen, mask_gen)
        log.info(
            "resumed after epoch %d (best valid %s %.4f at epoch %d)",
            state.epoch,
            SELECTION_METRIC,
            state.best_score,
            state.best_epoch,
        )

    stopped_early = state.bad_evals >= patience
    out_of_time = False
    while not stopped_early and not out_of_time and state.epoch < max_epochs:
        epoch = state.epoch + 1
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        n_targets = torch.zeros((), dtype=torch.long, device=device)
        first_bad_step = torch.full((), -1, dtype=torch.long, device=device)  # device-side: no sync per step
        n_batches = seen = 0
        bar = tqdm(total=len(train), unit="seq", desc=f"epoch {epoch}", disable=not progress_bar, leave=False)
        for batch in _index_batches(len(train), batch_size, order_gen):
            if len(batch) < n_ranks:  # under DDP every rank needs rows: a last batch smaller than that is skipped
                continue
            rows = rank_slice(batch)
            keep = columns_to_keep(windows.shape[1], int(real_events[rows].max()))  # drop all-padding columns
            idx = rows.to(device)
            inputs, targets, side = model.training_batch(
                windows[idx, -keep:],
                {k: v[idx, -keep:] for k, v in features.items()},
                is_target[idx, -keep:] if is_target is not None else None,
                mask_gen,
            )
            with accelerator.autocast():
                loss = ddp_model(inputs, targets, side)
            state.step += 1
            bad = ~torch.isfinite(loss.detach())
            first_bad_step = torch.where(bad & (first_bad_step < 0), state.step, first_bad_step)
            accelerator.backward(loss)
            if grad_clip:
                accelerator.clip_grad_norm_(ddp_model.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            n_targets += (targets > 0).sum()
            n_batches += 1
            seen += len(batch)  # global: all ranks together
            bar.update(len(batch))
            if limit_train_batches and n_batches >= limit_train_batches:
                break
            if n_batches % SYNC_EVERY == 0:
                _stop_if_diverged(first_bad_step, epoch)
                bar.set_postfix(
                    loss=f"{loss_sum.item() / n_batches:.4f}", seq_s=f"{seen / (time.perf_counter() - t0):.0f}"
                )
        bar.close()
        _stop_if_diverged(first_bad_step, epoch)
        if n_ranks > 1:  # the epoch's loss over all ranks' slices
            loss_sum = accelerator.reduce(loss_sum, reduction="mean")
        epoch_s = time.perf_counter() - t0
        state.epoch, state.train_seconds = epoch, state.train_seconds + epoch_s
        state.sequences += seen
        state.targets += int(n_targets.item())
        row = {
            "epoch": epoch,
            "train/loss": loss_sum.item() / max(n_batches, 1),
            "train/epoch_seconds": epoch_s,
            "train/batches": n_batches,
            "train/sequences_per_second": seen / epoch_s,
            "train/targets_per_second": int(n_targets.item()) / epoch_s,
        }
        if epoch % eval_every == 0 or epoch == max_epochs:
            model.eval()
            result = evaluate_sharded(model.score, valid, device=device, **eval_kwargs)
            state.eval_seconds += result.seconds
            row.update({f"valid/{k}": v for k, v in result.metrics.items()})
            row["wall_seconds"] = state.train_seconds + state.eval_seconds
            if result.metrics[SELECTION_METRIC] > state.best_score:
                state.best_score, state.best_epoch = result.metrics[SELECTION_METRIC], epoch
                state.best_valid, state.bad_evals = dict(result.metrics), 0
                best_weights = copy.deepcopy(accelerator.unwrap_model(ddp_model).state_dict())
                if on_best is not None:
                    on_best(model, epoch, state.best_valid)
            else:
                state.bad_evals += 1
        state.history.append(row)
        tracker.log({k: v for k, v in row.items() if k != "epoch"}, epoch=epoch)
        (log.info if accelerator.is_main_process else log.debug)(
            "epoch %d  loss %.4f  valid ndcg@10 %s  (%.1fs)",
            epoch,
            row["train/loss"],
            f"{row.get('valid/ndcg@10', float('nan')):.4f}",
            epoch_s,
        )
        if on_epoch_end is not None:
            on_epoch_end(_snapshot(state, model, optimizer, order_gen, mask_gen, best_weights))
        stopped_early = state.bad_evals >= patience
        out_of_time = bool(max_minutes) and state.train_seconds + state.eval_seconds >= 60 * max_minutes
        if out_of_time and not stopped_early and state.epoch < max_epochs:
            log.warning("time budget trainer.max_minutes=%s spent after epoch %d: stopping", max_minutes, epoch)

    if not stopped_early and state.best_epoch >= state.epoch - eval_every:
        log.warning(
            "validation NDCG@10 was still improving at the last epoch (%d): raise trainer.max_epochs "
            "(or use trainer=long) for a converged model",
            state.epoch,
        )
    if best_weights is not None:
        accelerator.unwrap_model(ddp_model).load_state_dict(best_weights)
    return FitResult(
        best_epoch=state.best_epoch,
        best_valid=state.best_valid,
        epochs_run=state.epoch,
        stopped_early=stopped_early,
        out_of_time=out_of_time and not stopped_early,
        train_seconds=state.train_seconds,
        eval_seconds=state.eval_seconds,
        sequences_per_second=state.sequences / max(state.train_seconds, 1e-9),
        targets_per_second=state.targets / max(state.train_seconds, 1e-9),
        history=state.history,
    )


def _stop_if_diverged(first_bad_step: torch.Tensor, epoch: int) -> None:
    step = int(first_bad_step.item())
    if step >= 0:
        raise TrainingDiverged(
            f"the training loss became NaN or infinite at step {step} (epoch {epoch}); the last good checkpoints "
            f"are kept. Lower model.optimizer.lr, keep trainer.grad_clip set, or try trainer.precision=no"
        )


def _snapshot(
    state: LoopState,
    model: torch.nn.Module,
    optimizer: Any,
    order_gen: torch.Generator,
    mask_gen: torch.Generator,
    best_weights: dict[str, torch.Tensor] | None,
) -> dict[str, Any]:
    """Everything `fit(resume=...)` needs; only tensors and plain values (loads with weights_only=True)."""
    rng = {"torch": torch.get_rng_state(), "order": order_gen.get_state(), "mask": mask_gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "loop": asdict(state),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng,
        "best_weights": best_weights,
    }


def _restore(
    snapshot: dict[str, Any],
    model: torch.nn.Module,
    optimizer: Any,
    order_gen: torch.Generator,
    mask_gen: torch.Generator,
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    model.load_state_dict(snapshot["model"])
    optimizer.load_state_dict(snapshot["optimizer"])
    rng = snapshot["rng"]
    torch.set_rng_state(rng["torch"])
    order_gen.set_state(rng["order"])
    mask_gen.set_state(rng["mask"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return LoopState(**snapshot["loop"]), snapshot["best_weights"]


def _index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]
