"""`model.*` values checked before any data is read: the classes named by `_target_` import, and the numbers the
model wrapper and the optimiser take are in range. Each mistake is one ConfigError naming the key and the fix
(the encoder's own settings are checked by the encoder class: see seqexp/model/encoders/base.py)."""

from __future__ import annotations

import difflib
import importlib
import logging
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from seqexp.errors import ConfigError
from seqexp.model.item_init import KINDS, TEXT_MODES

log = logging.getLogger(__name__)

# the parts built through `_target_`, and where a user finds the classes that exist
TARGETS = {
    "model.encoder": "seqexp.model.encoders (or a class of your own: see README, Add an encoder)",
    "model.objective": "seqexp.model.objectives",
    "model.loss": "seqexp.model.losses",
    "model.optimizer": "torch.optim",
}


def check_model(cfg: DictConfig) -> None:
    """Raises ConfigError for a `model.*` value that would fail (or train something else) later."""
    model = cfg.model
    for where, look_in in TARGETS.items():
        node = model.get(where.removeprefix("model."))
        if isinstance(node, DictConfig) and node.get("_target_") is not None:
            check_importable(str(node._target_), f"{where}._target_", look_in)
    _number(model, "embedding_dim", minimum=1, whole=True)
    _number(model, "init_std", minimum=0, above_minimum=True)
    _number(model, "embedding_dropout", minimum=0, below=1)
    optimizer = model.get("optimizer")
    if isinstance(optimizer, DictConfig):
        _number(optimizer, "weight_decay", minimum=0, name="model.optimizer.weight_decay")
        dense = optimizer.get("dense")
        if dense is not None:
            _check_dense_optimizer(dense)
    _check_pretrained(cfg)


# pretrained.* counts that must be >= 1 (gensim's worker thread dies on window=0 and the run hangs)
PRETRAINED_COUNTS = (
    "item2vec.window", "item2vec.negative", "item2vec.epochs", "text.batch_size", "text.max_length",
)  # fmt: skip


def _check_pretrained(cfg: DictConfig) -> None:
    """model.item_init and pretrained.* when it uses them, before any data is read (formerly an unknown kind, a text
    mode or columns were refused only after the data step, and `pretrained.item2vec=null` was a TypeError);
    pretrained.freeze=true on random init freezes nothing: warned."""
    kind = str(cfg.model.get("item_init", "random"))
    if kind not in KINDS:
        raise ConfigError(f"model.item_init={kind!r}: choose one of {list(KINDS)} (their settings: pretrained.*)")
    pretrained = cfg.get("pretrained")
    if not isinstance(pretrained, DictConfig):
        return
    if kind != "random" and not isinstance(pretrained.get(kind), DictConfig):
        given = "null" if pretrained.get(kind) is None else repr(pretrained.get(kind))
        example = "window=5" if kind == "item2vec" else "max_length=32"
        raise ConfigError(
            f"pretrained.{kind}={given} must hold the {kind} settings (conf/train.yaml); override single keys "
            f"instead, e.g. pretrained.{kind}.{example}"
        )
    if pretrained.get("freeze") is True and kind != "random" and cfg.model.get("sparse_items") is True:
        raise ConfigError(  # formerly SparseItemOptimizer said "set model.sparse_items=true", which was set
            "pretrained.freeze=true keeps the item table fixed, so model.sparse_items=true has no item gradient to "
            "make sparse; set model.sparse_items=false (with model.optimizer._target_=torch.optim.Adam)"
        )
    if pretrained.get("freeze") is True and kind == "random":
        log.warning(
            "pretrained.freeze=true applies to pretrained item vectors only (model.item_init=item2vec|text); with "
            "model.item_init=random the item table trains as usual"
        )
    for dotted in PRETRAINED_COUNTS:
        group, _, key = dotted.partition(".")
        node = pretrained.get(group)
        if kind == group and isinstance(node, DictConfig):
            _number(node, key, minimum=1, whole=True, name=f"pretrained.{dotted}")
    if kind == "text":
        _check_text(pretrained.text, cfg)


def _check_text(text: DictConfig, cfg: DictConfig) -> None:
    mode = str(text.get("mode", "side"))
    if mode not in TEXT_MODES:
        raise ConfigError(f"pretrained.text.mode={mode!r}: use {' or '.join(TEXT_MODES)}")
    side = OmegaConf.select(cfg, "data.item_side", default=None)
    if not isinstance(side, DictConfig) or not side.get("file"):
        raise ConfigError(
            "model.item_init=text needs item text: set data.item_side.file (and data.item_side.columns) for this "
            "data set, or use model.item_init=item2vec"
        )
    wanted, have = text.get("columns"), side.get("columns")
    if wanted is not None and have is not None:
        missing = [str(c) for c in wanted if c not in list(have)]
        if missing:
            raise ConfigError(
                f"pretrained.text.columns {missing} are not in data.item_side.columns {list(have)}; add them there, "
                f"or choose from those"
            )


def _check_dense_optimizer(dense: Any) -> None:
    """model.optimizer.dense of SparseItemOptimizer: a partial Adam-family optimiser (it is given betas and eps)."""
    target = dense.get("_target_") if isinstance(dense, DictConfig) else None
    fix = "e.g. model.optimizer.dense={_target_: torch.optim.AdamW, _partial_: true}"
    if target is None or dense.get("_partial_") is not True:
        raise ConfigError(f"model.optimizer.dense={dense}: give a partial optimiser class, {fix}")
    check_importable(str(target), "model.optimizer.dense._target_", "torch.optim")
    if str(target).rsplit(".", 1)[-1] not in ADAM_FAMILY:
        raise ConfigError(
            f"model.optimizer.dense._target_={target}: SparseItemOptimizer passes Adam's betas and eps to it, so it "
            f"must be one of {', '.join(ADAM_FAMILY)} ({fix})"
        )


ADAM_FAMILY = ("Adam", "AdamW", "NAdam", "RAdam", "Adamax")  # optimisers that take betas and eps


def check_importable(path: str, key: str, look_in: str = "") -> None:
    """`path` ("package.module.Class") must import; else one line with the closest names (or where the classes
    there are live: `look_in`) and the fix."""
    problem = why_not_importable(path)
    if problem is None:
        return
    kind, detail = problem
    if kind == "path":
        raise ConfigError(
            f"{key}={path}: module {detail} cannot be imported (not on the Python path); check the spelling, or put "
            f"the folder that holds a module of your own on PYTHONPATH (PYTHONPATH=<folder> seqexp-train ...)"
        )
    if kind == "dependency":
        raise ConfigError(
            f"{key}={path}: importing it needs the package {detail!r}, which is not installed: install it"
        )
    hint = _did_you_mean(path) or (f"; the built-in choices are in {look_in}" if look_in else "")
    raise ConfigError(f"{key}={path}: {detail}{hint}")


def _did_you_mean(path: str) -> str:
    """ "; did you mean torch.optim.AdamW?" when the module imports and has names close to the last part of `path`."""
    module_name, _, attribute = path.rpartition(".")
    try:
        names = [n for n in dir(importlib.import_module(module_name)) if not n.startswith("_")]
    except Exception:  # the module itself is what fails: nothing to suggest
        return ""
    same_letters = [n for n in names if n.lower() == attribute.lower()]  # Adamw -> AdamW
    close = same_letters or difflib.get_close_matches(attribute, names, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(f'{module_name}.{c}' for c in close)}?" if close else ""


def why_not_importable(target: str) -> tuple[str, str] | None:
    """None when `target` (module.Class, as Hydra's `_target_` reads it) imports here; else (kind, detail):
    ("path", module) a module not on the Python path, ("dependency", package) a package the module imports that
    is not installed, ("broken", what failed) a module that raises or no longer defines the name.

    Resolved here rather than with hydra.utils.get_class, which logs a multi-line error before raising."""
    parts = target.split(".")
    obj: object = None
    for n, part in enumerate(parts, start=1):
        if obj is not None and hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        name = ".".join(parts[:n])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name and n > 1:  # the module before it is there, but has no such attribute or submodule
                return "broken", f"{'.'.join(parts[: n - 1])} has no {part!r}"
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                return "path", e.name
            return ("dependency", e.name) if e.name else ("broken", f"importing {name} raised {e}")
        except Exception as e:  # an error inside the module itself (SyntaxError, an ImportError of a name, ...)
            return "broken", f"importing {name} raised {type(e).__name__}: {' '.join(str(e).split())[:200]}"
    return None


def _number(
    node: DictConfig,
    key: str,
    *,
    minimum: float,
    above_minimum: bool = False,
    below: float | None = None,
    whole: bool = False,
    name: str | None = None,
) -> None:
    """node[key], when set, must be a number >= minimum (> minimum if `above_minimum`), < below, whole if asked."""
    name = name or f"model.{key}"
    value: Any = node.get(key)
    if value is None:
        return
    try:
        if isinstance(value, bool):  # float(True) is 1.0: a YAML true is not a number
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number; see conf/model/*.yaml for its meaning") from None
    if whole and (not math.isfinite(number) or number != int(number)):
        raise ConfigError(f"{name}={value} must be a whole number, e.g. {name}=64")
    low_ok = number > minimum if above_minimum else number >= minimum
    high_ok = below is None or number < below
    if not (math.isfinite(number) and low_ok and high_ok):
        low = f"> {minimum:g}" if above_minimum else f">= {minimum:g}"
        high = f" and < {below:g}" if below is not None else ""
        raise ConfigError(f"{name}={value} must be {low}{high}")
