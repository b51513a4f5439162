"""`TrainerSettings`: conf/trainer/*.yaml as one typed object, checked once, before any work starts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from seqexp.errors import ConfigError

PRECISIONS = ("auto", "no", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**32 - 1  # numpy's generators (seeded with torch's and Python's) take 0 .. 2**32 - 1


@dataclass(frozen=True)
class TrainerSettings:
    """What the training loop needs from `trainer.*` (and the batch size of `model.batch_size`)."""

    batch_size: int  # training sequences per optimiser step (model.batch_size)
    max_epochs: int = 300  # upper bound; early stopping normally ends a run first (conf/trainer/default.yaml)
    patience: int = 10  # evaluations without a better selection metric before stopping
    eval_every: int = 1  # validate every N epochs (and always after the last)
    selection_window: int = 1  # validations averaged for model selection and patience (1: each on its own)
    plateau_lr_factor: float | None = None  # when patience runs out: lr x this and patience again; None = stop
    plateau_decays: int = 1  # how many times plateau_lr_factor applies before patience ends the run
    grad_clip: float | None = 1.0  # max gradient norm; None = off
    limit_train_batches: int | None = None  # end every epoch after this many batches (smoke runs)
    max_minutes: float | None = None  # train + valid time budget, counted across resumes
    progress_bar: bool = True
    num_threads: int | None = None  # torch intra-op CPU threads; None keeps torch's default
    seed: int = 0  # batch order and masking generators

    @classmethod
    def from_config(cls, trainer: Mapping[str, Any], batch_size: Any, seed: Any = 0) -> TrainerSettings:
        """Build from `trainer.*`; a value of the wrong type or range is a ConfigError naming the key."""
        values = {
            "batch_size": _integer("model.batch_size", batch_size, minimum=1),
            "max_epochs": _integer("trainer.max_epochs", trainer.get("max_epochs", 300), minimum=1),
            "patience": _integer("trainer.patience", trainer.get("patience", 10), minimum=1),
            "eval_every": _integer("trainer.eval_every", trainer.get("eval_every", 1), minimum=1),
            "selection_window": _integer("trainer.selection_window", trainer.get("selection_window", 1), minimum=1),
            "grad_clip": _optional_number("trainer.grad_clip", trainer.get("grad_clip")) or None,  # 0 = off
            "plateau_lr_factor": _lr_factor("trainer.plateau_lr_factor", trainer.get("plateau_lr_factor")),
            "plateau_decays": _integer("trainer.plateau_decays", trainer.get("plateau_decays", 1), minimum=1),
            "limit_train_batches": _optional_integer("trainer.limit_train_batches", trainer.get("limit_train_batches")),
            "max_minutes": _optional_number("trainer.max_minutes", trainer.get("max_minutes"), positive=True),
            "progress_bar": bool(trainer.get("progress_bar", True)),
            "num_threads": _optional_integer("trainer.num_threads", trainer.get("num_threads")),
            "seed": _integer("seed", seed, minimum=0, maximum=MAX_SEED),
        }
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _integer(key: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        number = int(value)
        if isinstance(value, float | str) and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a whole number; set e.g. {key}=10") from None
    if minimum is not None and number < minimum:
        why = {
            "trainer.max_epochs": "a run must train at least one epoch",
            "trainer.patience": "0 would stop before the first evaluation could improve anything",
            "trainer.selection_window": "1 selects on each validation alone",
            "trainer.num_threads": "set null for torch's default",
            "seed": f"seeds run from 0 to {MAX_SEED}",
        }.get(key, "")
        raise ConfigError(f"{key}={value} must be >= {minimum}{'; ' + why if why else ''}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{key}={value} must be <= {maximum}")
    return number


def _lr_factor(key: str, value: Any) -> float | None:
    number = _optional_number(key, value, positive=True)
    if number is not None and number >= 1:
        raise ConfigError(f"{key}={value} must be below 1 (e.g. 0.1: the learning rate x 0.1), or null to stop instead")
    return number


def _optional_integer(key: str, value: Any) -> int | None:
    return None if value is None else _integer(key, value, minimum=1)


def _optional_number(key: str, value: Any, positive: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):  # float(True) is 1.0: `trainer.grad_clip=true` would clip at 1 without a word
        raise ConfigError(f"{key}={str(value).lower()} is not a number; set a number or null")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a number; set a number or null") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ConfigError(f"{key}={value} must be a positive number (or null to turn it off)")
    return number
