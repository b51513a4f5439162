"""One training epoch: shuffled batches of windows -> objective -> loss -> optimiser step.

Sync points (host waits for the device) are marked: the loss and non-finite checks stay on the device and are
read every `SYNC_EVERY` steps and at the end of the epoch, so a GPU never waits on the host per step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from seqexp.data.loader import TrainTensors
from seqexp.errors import ConfigError, TrainingDiverged
from seqexp.model.recommender import SequenceRecommender, columns_to_keep
from seqexp.model.sparse_items import clip_gradients
from seqexp.ranks import rank_slice, world
from seqexp.training.settings import TrainerSettings
from seqexp.training.state import Generators, LoopState

SYNC_EVERY = 20  # steps between host syncs (progress bar, non-finite loss check)


@dataclass
class DeviceWindows:
    """The whole training set on the device (batches are index slices), and each window's real length on the host
    (trimming a batch's all-padding columns needs no device sync)."""

    windows: torch.Tensor  # (M, L + 1) item indices
    real_events: torch.Tensor  # (M,) on the host
    features: dict[str, torch.Tensor]  # name -> (M, L + 1)
    is_target: torch.Tensor | None  # (M, L + 1) bool

    @classmethod
    def of(cls, train: TrainTensors, device: torch.device) -> DeviceWindows:
        return cls(
            windows=train.windows.to(device),
            real_events=(train.windows > 0).sum(dim=1),
            features={k: v.to(device) for k, v in train.features.items()},
            is_target=train.is_target.to(device) if train.is_target is not None else None,
        )

    def __len__(self) -> int:
        return self.windows.shape[0]

    def batch(self, rows: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        """Rows of the batch, without the columns that are padding in every one of them."""
        keep = columns_to_keep(self.windows.shape[1], int(self.real_events[rows].max()))
        idx = rows.to(device)
        features = {k: v[idx, -keep:] for k, v in self.features.items()}
        return self.windows[idx, -keep:], features, self.is_target[idx, -keep:] if self.is_target is not None else None


def train_epoch(
    epoch: int,
    model: SequenceRecommender,
    ddp_model: torch.nn.Module,
    optimizer: Any,
    data: DeviceWindows,
    gens: Generators,
    state: LoopState,
    settings: TrainerSettings,
    accelerator: Accelerator,
) -> dict[str, float]:
    """Train one epoch in place; returns its history row (train/loss, throughput) and updates `state`."""
    model.train()
    device, n_ranks = accelerator.device, world()[1]
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    n_targets = torch.zeros((), dtype=torch.long, device=device)
    first_bad_step = torch.full((), -1, dtype=torch.long, device=device)  # device-side: no sync per step
    n_batches = seen = 0
    bar = tqdm(total=len(data), unit="seq", desc=f"epoch {epoch}", disable=not settings.progress_bar, leave=False)
    for batch in _index_batches(len(data), settings.batch_size, gens.order):
        if len(batch) < n_ranks:  # under DDP every rank needs rows: a last batch smaller than that is skipped
            continue
        windows, features, is_target = data.batch(rank_slice(batch), device)
        inputs, targets, side = model.training_batch(windows, features, is_target, gens.mask)
        with accelerator.autocast():
            loss = ddp_model(inputs, targets, side)
        state.step += 1
        bad = ~torch.isfinite(loss.detach())
        first_bad_step = torch.where(bad & (first_bad_step < 0), state.step, first_bad_step)
        accelerator.backward(loss)
        if settings.grad_clip:
            clip_gradients(accelerator, ddp_model.parameters(), settings.grad_clip)  # sparse-aware
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()
        n_targets += (targets > 0).sum()
        n_batches += 1
        seen += len(batch)  # global: all ranks together
        bar.update(len(batch))
        if settings.limit_train_batches and n_batches >= settings.limit_train_batches:
            break
        if n_batches % SYNC_EVERY == 0:  # sync point: progress and divergence
            stop_if_diverged(first_bad_step, epoch)
            bar.set_postfix(loss=f"{loss_sum.item() / n_batches:.4f}", seq_s=f"{seen / (time.perf_counter() - t0):.0f}")
    bar.close()
    stop_if_diverged(first_bad_step, epoch)  # sync point
    all_targets = n_targets
    if n_ranks > 1:  # the epoch's loss over all ranks' slices; no rank trained when none of them had a target
        loss_sum = accelerator.reduce(loss_sum, reduction="mean")
        all_targets = accelerator.reduce(n_targets.clone(), reduction="sum")
    stop_if_no_targets(all_targets, epoch, model.objective)  # sync point
    return _close_epoch(epoch, state, time.perf_counter() - t0, loss_sum, n_targets, n_batches, seen)


def _close_epoch(
    epoch: int,
    state: LoopState,
    epoch_s: float,
    loss_sum: torch.Tensor,
    n_targets: torch.Tensor,
    n_batches: int,
    seen: int,
) -> dict[str, float]:
    """Book the epoch into `state` and return its history row."""
    targets = int(n_targets.item())
    state.epoch, state.train_seconds = epoch, state.train_seconds + epoch_s
    state.sequences += seen
    state.targets += targets
    return {
        "epoch": epoch,
        "train/loss": loss_sum.item() / max(n_batches, 1),
        "train/epoch_seconds": epoch_s,
        "train/batches": n_batches,
        "train/sequences_per_second": seen / epoch_s,
        "train/targets_per_second": targets / epoch_s,
    }


def stop_if_diverged(first_bad_step: torch.Tensor, epoch: int) -> None:
    step = int(first_bad_step.item())
    if step >= 0:
        raise TrainingDiverged(
            f"the training loss became NaN or infinite at step {step} (epoch {epoch}); the last good checkpoints "
            "are kept. In a new run (another hydra.run.dir, or trainer.overwrite=true): lower model.optimizer.lr, "
            "keep trainer.grad_clip set, or try trainer.precision=no"
        )


def stop_if_no_targets(n_targets: torch.Tensor, epoch: int, objective: Any) -> None:
    """An epoch without a single loss-bearing position trained nothing: an error, never a 'completed' run."""
    if int(n_targets.item()) > 0:
        return
    fix = getattr(objective, "no_targets_fix", None)
    why = fix() if fix is not None else "no training window has a target; check split.target_behaviors and the data"
    raise ConfigError(f"epoch {epoch} trained on 0 targets (loss 0, the model learns nothing): {why}")


def _index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]
