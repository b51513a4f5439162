"""The training loop: one explicit loop on HF Accelerate (device placement, mixed precision, DDP-ready).

    for epoch:  train_epoch (batches of windows -> objective -> loss -> step)
                validate every `eval_every` epochs; keep the best weights by the selection metric
                (optimized_metric, e.g. valid NDCG@10; with `selection_window` k > 1 its mean over the last k
                validations); stop after `patience` evaluations without improvement (with
                `plateau_lr_factor`: first multiply the learning rate by it and wait `patience` again, up to
                `plateau_decays` times)

After every epoch `hooks.on_epoch_end` receives a resumable snapshot (`LoopState` + model, optimiser and RNG
states); `fit(..., resume=snapshot)` continues from it and ends with the same numbers as an uninterrupted run
(on CPU). A non-finite loss stops training at once, naming the step.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

from seqexp.data.loader import EvalTensors, TrainTensors
from seqexp.errors import TrainingDiverged
from seqexp.evaluation.protocol import EvalProtocol
from seqexp.model.recommender import SequenceRecommender
from seqexp.tracking.trackers import NullTracker
from seqexp.training.accelerator import make_accelerator
from seqexp.training.epoch import DeviceWindows, train_epoch
from seqexp.training.optimizer import build_optimizer
from seqexp.training.settings import TrainerSettings
from seqexp.training.state import FitResult, Generators, LoopState, restore, snapshot

__all__ = ["FitHooks", "fit", "make_accelerator"]
log = logging.getLogger(__name__)


@dataclass
class FitHooks:
    """What the app does at the loop's events: track, save the best checkpoint, save a resumable snapshot."""

    tracker: NullTracker = field(default_factory=NullTracker)
    on_best: Callable[[SequenceRecommender, int, dict[str, float]], None] = lambda model, epoch, valid: None
    on_epoch_end: Callable[[dict[str, Any]], None] = lambda snapshot: None


def fit(
    model: SequenceRecommender,
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    train: TrainTensors,
    valid: EvalTensors,
    settings: TrainerSettings,
    protocol: EvalProtocol,
    accelerator: Accelerator,
    hooks: FitHooks | None = None,
    resume: dict[str, Any] | None = None,
) -> FitResult:
    """Train `model` in place; on return it holds the best-validation weights."""
    hooks = hooks or FitHooks()
    optimizer = build_optimizer(optimizer_factory, model.parameters(), accelerator.device)  # fused when torch can
    ddp_model, optimizer = accelerator.prepare(model, optimizer)
    data, gens = DeviceWindows.of(train, accelerator.device), Generators.seeded(settings.seed, accelerator.device)
    state, best_weights = LoopState(), None
    if resume is not None:
        state, best_weights = restore(resume, model, optimizer, gens)
        log.info(
            "resumed after epoch %d (best valid %.4f at epoch %d)",
            state.epoch,
            state.best_score,
            state.best_epoch,
        )

    # a resumed snapshot may already have spent its patience or time budget: it trains no further epoch then
    stopped_early = _plateau(state, settings, optimizer)
    out_of_time = resume is not None and _out_of_time(state, settings, _spent(state, settings, accelerator))
    while not stopped_early and not out_of_time and state.epoch < settings.max_epochs:
        epoch = state.epoch + 1
        row = train_epoch(epoch, model, ddp_model, optimizer, data, gens, state, settings, accelerator)
        # formerly only max_epochs: a budget ending between eval_every epochs left them unvalidated
        last = epoch == settings.max_epochs or _budget_spent(_spent(state, settings, accelerator), settings)
        if epoch % settings.eval_every == 0 or last:
            # sync point: metrics on host
            if validate(model, valid, protocol, state, row, accelerator.device, settings.selection_window):
                best_weights = copy.deepcopy(accelerator.unwrap_model(ddp_model).state_dict())
                hooks.on_best(model, epoch, state.best_valid)
        state.history.append(row)
        hooks.tracker.log({k: v for k, v in row.items() if k != "epoch"}, epoch=epoch)
        _log_epoch(row, protocol.selection_metric, accelerator.is_main_process)
        hooks.on_epoch_end(snapshot(state, model, optimizer, gens, best_weights))
        stopped_early = _plateau(state, settings, optimizer)
        out_of_time = _out_of_time(state, settings, _spent(state, settings, accelerator))

    metric = f"valid/{protocol.selection_metric}"
    if state.history and metric not in state.history[-1]:  # a resume that trained nothing, its last epoch between
        row = state.history[-1]  # validations: the last epoch is always validated (formerly no model to select)
        if validate(model, valid, protocol, state, row, accelerator.device, settings.selection_window):
            best_weights = copy.deepcopy(accelerator.unwrap_model(ddp_model).state_dict())
            hooks.on_best(model, int(row["epoch"]), state.best_valid)
        hooks.on_epoch_end(snapshot(state, model, optimizer, gens, best_weights))
    _check_outcome(state, stopped_early, protocol.selection_metric)
    if best_weights is not None:
        accelerator.unwrap_model(ddp_model).load_state_dict(best_weights)
    return FitResult.from_state(state, stopped_early, out_of_time)


def validate(
    model: SequenceRecommender,
    valid: EvalTensors,
    protocol: EvalProtocol,
    state: LoopState,
    row: dict[str, float],
    device: torch.device,
    window: int = 1,
) -> bool:
    """Evaluate on the validation split, add the metrics to the epoch's row; True when the selection score
    improved on the best so far (the state then records this epoch as the best).

    The selection score is the selection metric, or with `window` k > 1 its mean over this validation and the k - 1
    before it (fewer at the start): on a flat, noisy curve one lucky validation then neither wins the selection nor
    restarts patience; a run ends on a good stretch, keeping the weights of the stretch's last validated epoch."""
    model.eval()
    result = protocol.evaluate(model.score, valid, device=device)
    state.eval_seconds += result.seconds
    row.update({f"valid/{k}": v for k, v in result.metrics.items()})
    row["wall_seconds"] = state.train_seconds + state.eval_seconds
    score = selection_score(state.history, result.metrics[protocol.selection_metric], protocol.selection_metric, window)
    if window > 1:
        row[f"valid/{protocol.selection_metric}_mean{window}"] = score
    if score > state.best_score:
        state.best_score, state.best_epoch = score, row["epoch"]
        state.best_valid, state.bad_evals = dict(result.metrics), 0
        return True
    state.bad_evals += 1
    return False


def selection_score(history: list[dict[str, float]], score: float, metric: str, window: int) -> float:
    """Mean of `score` and the selection metric of the last `window - 1` validated epochs in `history`."""
    earlier = [row[f"valid/{metric}"] for row in history if f"valid/{metric}" in row]
    scores = [*earlier[max(0, len(earlier) - (window - 1)) :], score] if window > 1 else [score]
    return sum(scores) / len(scores)


def _plateau(state: LoopState, settings: TrainerSettings, optimizer: torch.optim.Optimizer) -> bool:
    """True when patience has run out and the run stops. With trainer.plateau_lr_factor and a decay left, the
    learning rate is multiplied by it instead (every parameter group; training goes on from the current weights,
    as torch's ReduceLROnPlateau) and patience starts again: False. A run resumed from a snapshot whose patience
    had run out (one that stopped before the setting was given) decays at once and goes on."""
    if state.bad_evals < settings.patience:
        return False
    if settings.plateau_lr_factor is None or len(state.lr_decay_epochs) >= settings.plateau_decays:
        return True
    for group in optimizer.param_groups:
        group["lr"] *= settings.plateau_lr_factor
    state.lr_decay_epochs.append(state.epoch)
    state.bad_evals = 0
    log.info(
        "no better validation in %d evaluations after epoch %d: learning rate x %g -> %g (decay %d of %d)",
        settings.patience,
        state.epoch,
        settings.plateau_lr_factor,
        optimizer.param_groups[0]["lr"],
        len(state.lr_decay_epochs),
        settings.plateau_decays,
    )
    return False


def _log_epoch(row: dict[str, float], metric: str, main_process: bool) -> None:
    (log.info if main_process else log.debug)(
        "epoch %d  loss %.4f  valid %s %s  (%.1fs)",
        row["epoch"],
        row["train/loss"],
        metric,
        f"{row.get(f'valid/{metric}', float('nan')):.4f}",
        row["train/epoch_seconds"],
    )


def _spent(state: LoopState, settings: TrainerSettings, accelerator: Accelerator) -> float:
    """Seconds of training and validation so far, the largest over the ranks, so that every rank takes the same
    decision on trainer.max_minutes (each counts its own time: one validating while another trains on would hang
    the job); 0 without a budget (no collective then)."""
    if not settings.max_minutes:
        return 0.0
    spent = state.train_seconds + state.eval_seconds
    if accelerator.num_processes > 1:
        spent = float(accelerator.gather(torch.tensor([spent], device=accelerator.device)).max())
    return spent


def _budget_spent(spent: float, settings: TrainerSettings) -> bool:
    return bool(settings.max_minutes) and spent >= 60 * settings.max_minutes


def _out_of_time(state: LoopState, settings: TrainerSettings, spent: float) -> bool:
    out = _budget_spent(spent, settings)
    if out and state.bad_evals < settings.patience and state.epoch < settings.max_epochs:
        log.warning(
            "time budget trainer.max_minutes=%s spent after epoch %d: stopping", settings.max_minutes, state.epoch
        )
    return out


def _check_outcome(state: LoopState, stopped_early: bool, metric: str) -> None:
    """A model whose validation never produced a usable selection metric is an error, never 'completed'; one
    whose best epoch is its last validated one is warned about (it may not have converged)."""
    if state.best_epoch == 0 and not any(f"valid/{metric}" in row for row in state.history):
        raise TrainingDiverged(  # no epoch trained at all (the last one is always validated)
            f"no epoch was trained and validated ({state.epoch} in the snapshot), so there is no model to select; "
            f"resume with a larger trainer.max_epochs or trainer.max_minutes"
        )
    if state.best_epoch == 0:
        raise TrainingDiverged(
            f"validation {metric} was never a number better than -inf in {state.epoch} epoch(s) (NaN scores?), so "
            f"there is no trained model to select; lower model.optimizer.lr or check the data"
        )
    last_validated = max((row["epoch"] for row in state.history if f"valid/{metric}" in row), default=state.epoch)
    if not stopped_early and state.best_epoch == last_validated:
        log.warning(
            "validation %s was still improving at the last validated epoch (%d): raise trainer.max_epochs (or "
            "trainer.max_minutes) for a converged model",
            metric,
            last_validated,
        )
