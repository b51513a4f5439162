"""Behaviour logs -> canonical table -> cleaned per-user sequences -> splits -> tensors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqexp.data.download import ensure_downloaded
from seqexp.data.item_side import item_side_path, read_item_side
from seqexp.data.prepare import prepare as _prepare
from seqexp.data.sequences import PreparedData
from seqexp.data.synthetic import ensure_synthetic_log


def load_data(data_cfg: Mapping[str, Any], cache_dir: str | Path | None = None) -> PreparedData:
    """The data step of a run: write the synthetic log or fetch the public archive when the preset says so,
    prepare (cached), and attach item side data when data.item_side names a table."""
    if data_cfg.get("generate"):
        ensure_synthetic_log(data_cfg["path"], **dict(data_cfg["generate"]))
    ensure_downloaded(data_cfg)
    item_side_path(data_cfg)  # a missing item table fails before the log is prepared
    data = _prepare(data_cfg, cache_dir)
    data.item_side = read_item_side(data_cfg, data)
    return data


__all__ = ["PreparedData", "load_data"]
