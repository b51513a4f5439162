"""Behaviour logs -> canonical table -> cleaned per-user sequences -> splits -> tensors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqexp.data.prepare import prepare as _prepare
from seqexp.data.prepared import PreparedData
from seqexp.data.synthetic import ensure_synthetic_log


def load_data(data_cfg: Mapping[str, Any], cache_dir: str | Path | None = None) -> PreparedData:
    """The data step of a run: write the synthetic log first when the preset asks for one, then prepare."""
    if data_cfg.get("generate"):
        ensure_synthetic_log(data_cfg["path"], **dict(data_cfg["generate"]))
    return _prepare(data_cfg, cache_dir)


__all__ = ["PreparedData", "load_data"]
