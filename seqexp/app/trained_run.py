"""A trained run as serving loads it (`seqexp-recommend`, `seqexp-export`): its best checkpoint and model.

The run is named by its dir, or by its checkpoints/best.pt; another file of a run (last.pt, results.json) is one
error naming the run dir to pass.

An unfinished run (no results.json: killed, or still training; status "failed" or "interrupted"; or training
stopped by its time budget, results.json training.out_of_time) is served with a warning that names the run dir
and its status. A `_target_` of model.encoder / objective / loss (a user's own class) that this process cannot
import is one error naming the class path, the checkpoint and the fix (PYTHONPATH), not Hydra's traceback.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from seqexp.app.model_checks import why_not_importable
from seqexp.errors import SeqexpError
from seqexp.model.recommender import SequenceRecommender, restore_model
from seqexp.training.checkpoint import load_checkpoint

CHECKPOINT = Path("checkpoints") / "best.pt"
MODEL_PARTS = ("encoder", "objective", "loss")  # the parts restore_model builds through their `_target_`


def load_run(run_dir: Path, command: str, error: type[SeqexpError]) -> tuple[dict[str, Any], SequenceRecommender]:
    """The run's best checkpoint and its model; warns when the run did not finish, raises `error` (one line) for
    a missing run dir or a model class this process cannot import. `run_dir` may be the run's checkpoints/best.pt."""
    run_dir = run_dir_of(run_dir, command, error)
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    unfinished = unfinished_message(run_dir, ckpt.get("epoch"))
    if unfinished is not None:
        warnings.warn(unfinished, UserWarning, stacklevel=3)
    check_model_classes_import(ckpt, run_dir, command, error)
    return ckpt, restore_model(ckpt)


def run_dir_of(path: Path, command: str, error: type[SeqexpError]) -> Path:
    """The run dir `path` names: itself, or the run dir of its `checkpoints/best.pt` (the file serving loads);
    another file (last.pt, results.json) is one `error` naming the run dir to pass instead."""
    if path.is_dir():
        return path
    if not path.exists():
        raise error(f"run dir {path} does not exist; pass the folder a `seqexp-train` run wrote")
    if path.parent.name == CHECKPOINT.parent.name:
        if path.name == CHECKPOINT.name:
            return path.parent.parent
        raise error(
            f"{path} is a checkpoint file, not a run dir; {command} serves a run's best checkpoint ({CHECKPOINT}): "
            f"pass its run dir: {command} {path.parent.parent} ..."
        )
    if (path.parent / CHECKPOINT).is_file():
        raise error(f"{path} is a file, not a run dir; pass the run dir it is in: {command} {path.parent} ...")
    raise error(f"{path} is a file, not a run dir; pass the folder a `seqexp-train` run wrote")


def unfinished_message(run_dir: Path, epoch: object) -> str | None:
    """Why the run's best checkpoint may be only partly trained (read from its results.json), or None."""
    served = f"serving its best checkpoint, from epoch {epoch}, which may be only partly trained"
    path = run_dir / "results.json"
    if not path.exists():
        return f"run {run_dir} has not completed (no results.json: killed, or still training): {served}"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = None
    if not isinstance(results, dict):
        return f"run {run_dir} has not completed (its results.json is unreadable): {served}"
    status = results.get("status")
    if status != "completed":  # results.json records "failed" or "interrupted" (seqexp/tracking/failures.py)
        error = " ".join(str(results.get("error") or "").split()).rstrip(":")  # "RuntimeError: CUDA out of ..."
        error = error[:200]
        return f"run {run_dir} has not completed (status: {status}{f'; {error}' if error else ''}): {served}"
    best = (results.get("training") or {}).get("best_epoch")
    if isinstance(best, int) and isinstance(epoch, int) and best != epoch:
        return (
            f"run {run_dir} names no checkpoint in results.json: its best epoch is {best} (the one its test metrics "
            f"describe), but checkpoints/best.pt holds epoch {epoch} (the run was resumed with "
            f"trainer.save_checkpoint=false after it): serving epoch {epoch}'s weights, not the ones it reported"
        )
    if _stopped_by_time_budget(results):
        budget = (results.get("config") or {}).get("trainer", {}).get("max_minutes")
        return (
            f"run {run_dir} stopped training at its time budget (trainer.max_minutes={budget}; results.json "
            f"training.out_of_time: true): {served}"
        )
    return None


def _stopped_by_time_budget(results: dict[str, Any]) -> bool:
    """training.out_of_time, unless the run had anyway reached trainer.max_epochs (the budget cut nothing)."""
    training = results.get("training") or {}
    if not training.get("out_of_time"):
        return False
    max_epochs = (results.get("config") or {}).get("trainer", {}).get("max_epochs")
    epochs_run = training.get("epochs_run")
    return not (isinstance(max_epochs, int) and isinstance(epochs_run, int) and epochs_run >= max_epochs)


def check_model_classes_import(ckpt: dict[str, Any], run_dir: Path, command: str, error: type[SeqexpError]) -> None:
    """Every class the model is built from must import here; the first that does not is one `error` line."""
    model_cfg = OmegaConf.to_container(OmegaConf.create(ckpt["config"]).model, resolve=False)
    for key, target in _targets({k: model_cfg.get(k) for k in MODEL_PARTS}, "model"):
        problem = why_not_importable(target)
        if problem is not None:
            raise error(_import_message(f"{key}={target}", target, problem, run_dir, command))


def _targets(node: object, where: str) -> Iterator[tuple[str, str]]:
    """(config key, class path) of every `_target_` under `node` (nested parts of a user's own class too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield f"{where}._target_", value
            else:
                yield from _targets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _targets(value, f"{where}[{n}]")


def _import_message(setting: str, target: str, problem: tuple[str, str], run_dir: Path, command: str) -> str:
    """The one line for a class path that does not import, with the fix for its kind of problem."""
    kind, detail = problem
    trained = f"the model in {run_dir / CHECKPOINT} was trained with {setting}"
    if kind == "path":
        return (
            f"{trained}, but module {detail!r} cannot be imported here (it is not on the Python path); put the "
            f"folder that holds the module that defines {target} on PYTHONPATH, e.g. "
            f"PYTHONPATH=<dir> {command} {run_dir} ..."
        )
    if kind == "dependency":
        return f"{trained}, but importing it needs the package {detail!r}, which is not installed here: install it"
    return (
        f"{trained}, but it cannot be loaded here ({detail}); restore the version of its module the run was "
        f"trained with, or retrain"
    )


@contextmanager
def printed_warnings(command: str) -> Iterator[None]:
    """Warnings raised inside, printed as `<command>: warning: ...` lines on stderr (also when an error follows)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                print(f"{command}: warning: {w.message}", file=sys.stderr)
