"""What the loop carries from epoch to epoch, and the resumable snapshot written after every epoch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from seqexp.errors import ResumeMismatch


@dataclass
class LoopState:
    """Counters of the loop: what a resumed run needs besides the weights and RNG states."""

    epoch: int = 0  # last finished epoch
    step: int = 0  # optimiser steps so far
    best_score: float = -math.inf  # best value of the selection metric (optimized_metric)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_evals: int = 0  # evaluations since the last improvement (or the last learning-rate decay)
    lr_decay_epochs: list[int] = field(default_factory=list)  # epochs after which trainer.plateau_lr_factor applied
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
    lr_decay_epochs: list[int] = field(default_factory=list)  # epochs after which the learning rate was decayed

    @classmethod
    def from_state(cls, state: LoopState, stopped_early: bool, out_of_time: bool) -> FitResult:
        return cls(
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
            lr_decay_epochs=list(state.lr_decay_epochs),
        )


@dataclass
class Generators:
    """The loop's own random streams: batch order (host) and masking (device)."""

    order: torch.Generator
    mask: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> Generators:
        return cls(torch.Generator().manual_seed(seed), torch.Generator(device=device).manual_seed(seed + 1))


def snapshot(
    state: LoopState,
    model: torch.nn.Module,
    optimizer: Any,
    gens: Generators,
    best_weights: dict[str, torch.Tensor] | None,
) -> dict[str, Any]:
    """Everything `fit(resume=...)` needs; only tensors and plain values (loads with weights_only=True)."""
    rng = {"torch": torch.get_rng_state(), "order": gens.order.get_state(), "mask": gens.mask.get_state()}
    rng["mask_device"] = gens.mask.device.type  # a CUDA generator's state cannot continue on a CPU, nor back
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "loop": asdict(state),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng,
        "best_weights": best_weights,
    }


def restore(
    saved: dict[str, Any], model: torch.nn.Module, optimizer: Any, gens: Generators
) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    """Put a snapshot's weights, optimiser and RNG states back; returns the loop state and the best weights."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    rng = saved["rng"]
    torch.set_rng_state(rng["torch"])
    gens.order.set_state(rng["order"])
    _restore_mask_stream(gens.mask, rng)
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return LoopState(**saved["loop"]), saved["best_weights"]


def _restore_mask_stream(mask: torch.Generator, rng: dict[str, Any]) -> None:
    """The masking stream's state, which only a generator of the same kind of device takes: a snapshot from a GPU
    node requeued on a CPU node (or back) is one ResumeMismatch, not torch's RuntimeError about state sizes."""
    saved, here = rng.get("mask_device"), mask.device.type
    if saved is None or saved == here:
        try:
            mask.set_state(rng["mask"])
            return
        except RuntimeError:  # a snapshot from before mask_device was recorded
            saved = "another kind of device"
    raise ResumeMismatch(
        f"trainer.resume: the snapshot was trained on {saved} and this command runs on {here}: its random streams "
        f"cannot continue on another kind of device, so it would not be the same run; resume it where it was "
        f"trained (trainer.device), or start a new run (another hydra.run.dir, or trainer.overwrite=true)"
    )
