"""conf/train.yaml's `eval:` keys beyond the basic ones -> EvalProtocol keyword arguments, checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

from seqexp.errors import ConfigError
from seqexp.evaluation.beyond_accuracy import category_separator, category_tokens, item_facts


def protocol_options(
    eval_cfg: Mapping[str, Any], item_side: Mapping[str, np.ndarray], counts: Tensor
) -> dict[str, Any]:
    """item_chunk, valid_sample_users, sample_seed, diversity_column / _separator and the item facts (training
    popularity `counts` (N + 1,), categories from the item side table) for EvalProtocol(**...)."""
    column = eval_cfg.get("diversity_column")
    if column is not None and str(column) not in item_side:
        have = f"the item side columns are {sorted(item_side)}" if item_side else "this data set has no item side table"
        raise ConfigError(
            f"eval.diversity_column={column} is not an item side column ({have}); name one of them "
            "(e.g. class:token_seq for ml-100k genres) or set eval.diversity_column=null"
        )
    separator = category_separator(str(column), eval_cfg.get("diversity_separator", "auto")) if column else None
    categories = category_tokens(item_side[str(column)], separator) if column is not None else None
    return {
        "item_chunk": _positive(eval_cfg, "item_chunk", "items scored at a time, e.g. eval.item_chunk=100000"),
        "valid_sample_users": _positive(eval_cfg, "sample_users", "validation users, e.g. eval.sample_users=10000"),
        "sample_seed": _int(eval_cfg, "sample_seed", 0),
        "items": item_facts(counts, categories),
        "diversity_column": None if column is None else str(column),
        "diversity_separator": separator,
    }


def _positive(cfg: Mapping[str, Any], key: str, example: str) -> int | None:
    value = cfg.get(key)
    if value is None:
        return None
    if _int(cfg, key, 0) < 1:
        raise ConfigError(f"eval.{key}={value} must be >= 1 ({example}) or null")
    return int(value)


def _int(cfg: Mapping[str, Any], key: str, default: int) -> int:
    value = cfg.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"eval.{key}={value!r} must be a whole number")
    return int(value)
