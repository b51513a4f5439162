"""Shared fixtures: offline everything, one torch thread, tiny logs written by the tests themselves."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch

_TMP = Path(tempfile.mkdtemp(prefix="seqexp-tests-"))
for var, value in {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_DIR": str(_TMP / "wandb"),
    "WANDB_CACHE_DIR": str(_TMP / "wandb-cache"),
    "WANDB_CONFIG_DIR": str(_TMP / "wandb-config"),
    "WANDB_DATA_DIR": str(_TMP / "wandb-data"),
    "HF_HOME": str(_TMP / "hf"),
    "OMP_NUM_THREADS": "1",
}.items():
    os.environ.setdefault(var, value)
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def write_log(
    path: Path, rows: list[tuple], columns: tuple[str, ...] = ("user_id", "item_id", "timestamp"), sep: str = ","
) -> Path:
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False, sep=sep)
    return path


def data_cfg(path: Path, **overrides: object) -> dict:
    """A data config like conf/data/csv.yaml, as a plain dict."""
    cfg = {
        "path": str(path),
        "filename": None,
        "format": "csv",
        "sep": ",",
        "header": True,
        "names": None,
        "encoding": "utf-8",
        "columns": {"user": "user_id", "item": "item_id", "timestamp": "timestamp", "behavior": None},
        "behaviors": None,
        "min_seq_len": 3,
        "max_len": 5,
        "train_stride": None,
        "max_invalid_fraction": 0.5,
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"
