"""The training loop: one explicit loop on HF Accelerate (device placement, mixed precision, DDP-ready).

for epoch: for batch of windows: inputs, targets = objective(windows); loss = model(inputs, targets)
           evaluate on validation every `eval_every` epochs; keep the best state by valid NDCG@10;
           stop after `patience` evaluations without improvement.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from seqexp.data.loader import EvalTensors, TrainTensors
from seqexp.evaluation import EvalResult, evaluate
from seqexp.model import SequenceRecommender
from seqexp.tracking import NullTracker

log = logging.getLogger(__name__)

SELECTION_METRIC = "ndcg@10"


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    stopped_early: bool
    train_seconds: float  # time in training steps only
    eval_seconds: float  # time in validation
    sequences_per_second: float  # training windows per second of training steps
    targets_per_second: float  # positions carrying a loss per second
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch


def make_accelerator(device: str = "auto", precision: str = "no") -> Accelerator:
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        from seqexp.errors import ConfigError

        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    return Accelerator(cpu=use_cpu, mixed_precision=str(precision))


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
    progress_bar: bool = True,
) -> FitResult:
    """Train `model` in place; on return it holds the best-validation weights."""
    tracker = tracker or NullTracker()
    eval_kwargs = dict(eval_kwargs or {})
    optimizer = optimizer_factory(model.parameters())
    ddp_model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    windows = train.windows.to(device)  # the whole training set lives on the device: batches are index slices
    order_gen = torch.Generator().manual_seed(seed)
    mask_gen = torch.Generator(device=device).manual_seed(seed + 1)

    best_score, best_epoch, best_valid, best_state = -math.inf, 0, {}, None
    history: list[dict[str, float]] = []
    train_s = eval_s = 0.0
    total_seen = total_targets = 0
    bad_evals, stopped_early, epoch = 0, False, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        loss_sum, n_batches, seen = torch.zeros((), device=device), 0, 0
        n_targets = torch.zeros((), dtype=torch.long, device=device)  # positions that carried a loss
        bar = tqdm(total=len(train), unit="seq", desc=f"epoch {epoch}", disable=not progress_bar, leave=False)
        for idx in _index_batches(len(train), batch_size, order_gen):
            inputs, targets = model.training_pair(windows[idx.to(device)], mask_gen)
            with accelerator.autocast():
                loss = ddp_model(inputs, targets)
            accelerator.backward(loss)
            if grad_clip:
                accelerator.clip_grad_norm_(ddp_model.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            n_targets += (targets > 0).sum()
            n_batches += 1
            seen += len(idx)
            bar.update(len(idx))
            if n_batches % 20 == 0:  # a host sync only every 20 steps
                bar.set_postfix(
                    loss=f"{loss_sum.item() / n_batches:.4f}", seq_s=f"{seen / (time.perf_counter() - t0):.0f}"
                )
        bar.close()
        epoch_s = time.perf_counter() - t0
        train_s += epoch_s
        total_seen += seen
        total_targets += int(n_targets.item())
        row = {
            "epoch": epoch,
            "train/loss": loss_sum.item() / max(n_batches, 1),
            "train/epoch_seconds": epoch_s,
            "train/sequences_per_second": seen / epoch_s,
            "train/targets_per_second": int(n_targets.item()) / epoch_s,
        }
        if not math.isfinite(row["train/loss"]):
            raise FloatingPointError(
                f"training loss became {row['train/loss']} in epoch {epoch}; lower model.optimizer.lr "
                f"or set trainer.grad_clip"
            )
        if epoch % eval_every == 0 or epoch == max_epochs:
            model.eval()
            result: EvalResult = evaluate(model.score, valid, device=device, **eval_kwargs)
            eval_s += result.seconds
            row.update({f"valid/{k}": v for k, v in result.metrics.items()})
            row["wall_seconds"] = train_s + eval_s
            score = result.metrics[SELECTION_METRIC]
            if score > best_score:
                best_score, best_epoch, best_valid, bad_evals = score, epoch, dict(result.metrics), 0
                best_state = copy.deepcopy(accelerator.unwrap_model(ddp_model).state_dict())
                if on_best is not None:
                    on_best(model, epoch, best_valid)
            else:
                bad_evals += 1
        history.append(row)
        tracker.log({k: v for k, v in row.items() if k != "epoch"}, epoch=epoch)
        log.info(
            "epoch %d  loss %.4f  valid ndcg@10 %s  (%.1fs)",
            epoch,
            row["train/loss"],
            f"{row.get('valid/ndcg@10', float('nan')):.4f}",
            epoch_s,
        )
        if bad_evals >= patience:
            stopped_early = True
            break
    if not stopped_early and best_epoch >= epoch - eval_every:
        log.warning(
            "validation NDCG@10 was still improving at the last epoch (%d): raise trainer.max_epochs "
            "(or use trainer=long) for a converged model",
            epoch,
        )
    if best_state is not None:
        accelerator.unwrap_model(ddp_model).load_state_dict(best_state)
    return FitResult(
        best_epoch=best_epoch,
        best_valid=best_valid,
        epochs_run=epoch,
        stopped_early=stopped_early,
        train_seconds=train_s,
        eval_seconds=eval_s,
        sequences_per_second=total_seen / max(train_s, 1e-9),
        targets_per_second=total_targets / max(train_s, 1e-9),
        history=history,
    )


def _index_batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]
