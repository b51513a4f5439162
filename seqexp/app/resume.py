"""trainer.resume: continue a run from its checkpoints/last.pt, but only the run that wrote it.

The snapshot stores the run's identity: the data fingerprint, the config that defines the experiment (model,
split, evaluation protocol, seed, selection metric, trainer.selection_window and trainer.eval_every: which epochs
may be selected; data window settings; the trainer settings that change the optimisation path: gradient clipping
and precision; pretrained.* when model.item_init uses it) and the command-line overrides. A resume must match it;
budgets and stopping rules (trainer.max_epochs, max_minutes, patience, plateau_lr_factor, plateau_decays: a run
stopped by patience continues with a decayed learning rate as a run given it from the start would) and performance
knobs (eval.batch_size, eval.item_chunk, model.loss.fused, threads) may change.
A snapshot from before identities were stored is checked by its tensor shapes instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from seqexp.data import splits
from seqexp.errors import ResumeMismatch
from seqexp.io import sha256_json
from seqexp.tracking.trackers import flatten
from seqexp.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

IDENTITY_KEYS = (
    *("model", "split", "eval", "seed", "optimized_metric", "trainer.selection_window", "trainer.eval_every"),
    *("data.max_len", "data.train_stride", "trainer.limit_train_batches"),
)
# pretrained.* (item2vec / text item vectors) define the run only when model.item_init uses them (2026-12-03)
PRETRAINED = "pretrained"
# text item vectors are encoded from the item table: its settings and a digest of the values read define the run
# too (2026-12-03; formerly a resume with other data.item_side.columns, or an edited table, trained on the old text
# while results.json recorded the new columns)
# (where the file lies may change, as data.path may: the digest stands for its content)
ITEM_SIDE, ITEM_SIDE_DIGEST, ITEM_SIDE_FILE = "data.item_side", "data.item_side.values_sha256", "data.item_side.file"
# performance only: the same numbers with any value (eval.item_chunk scores the catalogue in exact chunks;
# model.loss.fused computes the same full softmax chunk by chunk of positions, equal to float rounding)
MAY_CHANGE = ("eval.batch_size", "eval.item_chunk", "pretrained.text.batch_size", "model.loss.fused")
# keys added to the cards after snapshots were written: absent from an older identity means the value it ran with
ADDED_LATER = {
    "model.scale_embeddings": False,
    "model.encoder.final_norm": False,  # esasrec's output LayerNorm (2026-12-02)
    "model.encoder.initializer_range": None,  # esasrec's init, Xavier before the key (sasrec/bert4rec always had it)
    "model.encoder.positions": "from_end",  # sasrec/bert4rec position convention (2026-12-02)
    "model.objective.mask_last_if_none": True,  # bert4rec's rows with no event drawn (2026-12-02)
    "trainer.selection_window": 1,  # selection on each validation alone (2026-12-02)
    **{f"split.{k}": v for k, v in splits.ADDED_LATER.items()},
}
# keys identities did not record before 2026-12-02 and whose value then is unknown (not a card default): unchecked
# eval_every and diversity_separator: 2026-12-03 (before the separator, every category column was split on
# whitespace, which no value of the key reproduces for a column that is not RecBole's :token_seq)
RECORDED_LATER = (
    "trainer.grad_clip", "trainer.precision", "trainer.eval_every", "eval.diversity_separator",
    "trainer.limit_train_batches",  # 2026-12-03: formerly a resume could change it unnoticed
)  # fmt: skip
UNRESOLVED = {"trainer.precision": "auto"}  # recorded unresolved for a few hours on 2026-12-02: unknown, unchecked


def run_identity(
    cfg: DictConfig,
    data_fingerprint: str,
    overrides: list[str],
    precision: str,
    grad_clip: float | None,
    item_side: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """What a snapshot must match to be continued (and the overrides that made it, quoted when it does not).

    `precision` and `grad_clip` are the values training runs with (trainer.precision=auto resolved on this machine,
    grad_clip 0 read as None), so that a requeue onto another kind of node is caught and equal settings are not.
    `item_side` (the item table's values per item) is digested when the run's item vectors are encoded from it."""
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    item_init = cfg.model.get("item_init", "random")
    keys = (*IDENTITY_KEYS, PRETRAINED) if item_init != "random" else IDENTITY_KEYS
    keys = (*keys, ITEM_SIDE) if item_init == "text" else keys
    config = {
        k: v
        for k, v in flat.items()
        if any(k == key or k.startswith(key + ".") for key in keys) and k not in (*MAY_CHANGE, ITEM_SIDE_FILE)
    }
    if item_init == "text":
        config[ITEM_SIDE_DIGEST] = sha256_json({c: v.tolist() for c, v in sorted((item_side or {}).items())})
    config.update({"trainer.precision": precision, "trainer.grad_clip": grad_clip})
    return {"data_fingerprint": data_fingerprint, "config": config, "overrides": list(overrides)}


def load_snapshot(last_path: Path) -> dict[str, Any]:
    return load_checkpoint(last_path)


def check_same_run(saved: dict[str, Any], identity: dict[str, Any], last_path: Path) -> None:
    """Refuse to continue a snapshot written with other data or another model / split / eval config."""
    before = saved.get("identity")
    if before is None:
        log.warning("%s records no run identity (an older seqexp wrote it): only its shapes are checked", last_path)
        return
    words = " ".join(before.get("overrides") or [])
    own = f"the run's own overrides ({words})" if words else "the run's own config"
    fix = f"resume with {own}, or start a new run (another hydra.run.dir, or trainer.overwrite=true)"
    if before["data_fingerprint"] != identity["data_fingerprint"]:
        raise ResumeMismatch(
            f"trainer.resume: {last_path} was trained on other data (data fingerprint "
            f"{before['data_fingerprint'][:12]}, this command's data gives {identity['data_fingerprint'][:12]}: "
            f"another data.path, file content or data.* cleaning setting); {fix}"
        )
    old, new = before["config"], identity["config"]
    old = {**{k: v for k, v in ADDED_LATER.items() if k in new}, **old}
    if old.get("trainer.grad_clip") == 0:  # recorded as typed for a few hours on 2026-12-02: 0 is off, as null
        old["trainer.grad_clip"] = None
    unrecorded = {k for k in RECORDED_LATER if k in new and (k not in old or _unresolved(k, old[k]))}
    if not any(k.startswith(PRETRAINED + ".") for k in old):  # written before pretrained.* was recorded
        unrecorded |= {k for k in new if k.startswith(PRETRAINED + ".")}
    if ITEM_SIDE_DIGEST not in old:  # written before the item table joined a text run's identity
        unrecorded |= {k for k in new if k.startswith(ITEM_SIDE + ".")}
    if unrecorded:
        log.warning("%s does not record %s (an older seqexp wrote it): not checked", last_path, sorted(unrecorded))
    for key in sorted((set(old) | set(new)) - set(MAY_CHANGE) - unrecorded):
        if key == ITEM_SIDE_DIGEST and key in old and key in new and old[key] != new[key]:
            raise ResumeMismatch(
                f"trainer.resume: {last_path} was trained on other item table values (data.item_side.file was "
                f"edited, or another table was given): its text item vectors came from the old values; restore the "
                f"table the run was trained with, or start a new run (another hydra.run.dir, or trainer.overwrite=true)"
            )
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            raise ResumeMismatch(
                f"trainer.resume: {last_path} was written with {key}={_as_typed(old.get(key, '<unset>'))}, this "
                f"command has {key}={_as_typed(new.get(key, '<unset>'))}; {fix}"
            )


def check_budget_not_exceeded(saved: dict[str, Any], max_epochs: int, last_path: Path) -> None:
    """A resume with trainer.max_epochs below the epochs the snapshot has trained is refused: formerly it trained
    nothing and wrote a completed results.json recording max_epochs=2 for a run of 4 epochs (seqexp-compare then
    filed it under the smaller budget)."""
    trained = int(saved.get("loop", {}).get("epoch", 0))
    if trained > max_epochs:
        raise ResumeMismatch(
            f"trainer.resume: {last_path} has trained {trained} epochs, more than trainer.max_epochs={max_epochs}: a "
            f"resume cannot untrain them; resume with trainer.max_epochs>={trained} (={trained} evaluates the run as "
            f"it is), or start a new run (another hydra.run.dir)"
        )


def _unresolved(key: str, value: Any) -> bool:
    """Whether a recorded value stands for "unknown" (precision recorded as `auto`); a recorded null is a value."""
    return key in UNRESOLVED and value == UNRESOLVED[key]


def _as_typed(value: Any) -> Any:
    """A value as the user would type it on the command line (null, true, false: not Python's None, True, False)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else value


def check_snapshot_fits(saved: dict[str, Any], model: torch.nn.Module, last_path: Path) -> None:
    """The snapshot's weights must have this model's names and shapes (one line, not a `size mismatch` trace)."""
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in saved["model"].items() if isinstance(v, torch.Tensor)}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            raise ResumeMismatch(
                f"trainer.resume: {last_path} holds {key} with shape {theirs.get(key, 'absent')}, this command's "
                f"model has {mine.get(key, 'absent')}: it was trained with another model config or data; resume "
                f"with the run's own overrides, or start a new run"
            )
