"""`model.encoder`, `model.objective`, `model.loss` built through their `_target_`, with errors a user can act on:
a setting the class does not take is one ConfigError naming every such key and the class's settings (the usual
cause: a key of another model's card, e.g. `experiment=sparse_catalogue_bert4rec model=gru`), a true/false setting
(annotated `bool`) given anything else is one too, and the class's own ConfigError comes out as itself, not wrapped
in Hydra's InstantiationException."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, open_dict

from seqexp.errors import ConfigError, SeqexpError

log = logging.getLogger(__name__)

# true/false keys that training read with bool() before 2026-12-02: a checkpoint may hold "no" there, trained as true
LEGACY_FLAGS = ("scale_embeddings", "objective.mask_last_if_none")


def instantiate_part(model_cfg: Any, key: str) -> Any:
    """`model.<key>` as an object; ConfigError for a key its class does not take."""
    node = model_cfg[key]
    _check_settings(node, f"model.{key}")
    try:
        return instantiate(node)
    except InstantiationException as e:
        if isinstance(e.__cause__, SeqexpError):
            raise e.__cause__ from None
        raise


def _check_settings(node: Any, where: str) -> None:
    """Every key of `node` must be a parameter of its `_target_` (unless that takes **kwargs)."""
    try:
        cls = get_class(str(node["_target_"]))
        parameters = inspect.signature(cls).parameters
    except (ImportError, ValueError, TypeError, AttributeError):
        return  # a target Hydra cannot import says so itself
    for key in node:
        taken = parameters.get(str(key))
        if taken is not None and taken.annotation in (bool, "bool") and not isinstance(node[key], bool):
            # a command-line `no` arrives as the string "no", which the class would read as true
            raise ConfigError(f"{where}.{key}={node[key]!r} must be true or false (`no`, `off` and 0 are not false)")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    takes = [name for name in parameters if name != "self"]
    unknown = [str(k) for k in node if not str(k).startswith("_") and str(k) not in takes]
    if unknown:
        keys = ", ".join(f"{where}.{k}" for k in unknown)
        raise ConfigError(
            f"{keys} {'is not a setting' if len(unknown) == 1 else 'are not settings'} of {node['_target_']} "
            f"(its settings: {', '.join(takes) or 'none'}): remove {'it' if len(unknown) == 1 else 'them'} "
            f"(`~{where}.{unknown[0]}`), or choose the model {'it belongs' if len(unknown) == 1 else 'they belong'} "
            "to (an experiment= recipe is written for one model: see its file in conf/experiment)"
        )


def as_trained(model_cfg: DictConfig) -> DictConfig:
    """A checkpoint's model config with its legacy true/false values as training read them (`bool("no")` is True):
    the model is served as it was trained, with a warning."""
    for key in LEGACY_FLAGS:
        group, _, leaf = key.rpartition(".")
        node = model_cfg.get(group) if group else model_cfg
        value = node.get(leaf) if isinstance(node, DictConfig) else None
        if value is not None and not isinstance(value, bool):
            log.warning("the checkpoint's model.%s=%r was read as %s in training: served so", key, value, bool(value))
            with open_dict(node):
                node[leaf] = bool(value)
    return model_cfg
