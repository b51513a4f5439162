"""Shared fixtures: offline everything, one torch thread, tiny logs written by the tests themselves."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch

import seqexp.app.conf_dir  # noqa: F401  (registers the resolvers the configs use, as seqexp-train does)

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
for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
    os.environ.pop(var, None)  # a distributed launcher's variables would make every run wait for its peers
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


def unique_item_log(tmp_path: Path, lengths: tuple[int, ...] = (3, 4, 9, 12)):
    """A prepared log in which every event has its own item, so an item's presence anywhere identifies the event."""
    from seqexp.data.prepare import prepare

    rows, item = [], 0
    for u, n in enumerate(lengths):
        for t in range(n):
            item += 1
            rows.append((u, item, 100 + t))
    return prepare(data_cfg(write_log(tmp_path / "log.csv", rows)), tmp_path / "cache")


# A run that takes a couple of seconds: tiny synthetic log, tiny model, two epochs, no tracking.
TINY = [
    "logger=none",
    "trainer=debug",
    "trainer.max_epochs=2",
    "data.generate.n_users=60",
    "data.generate.n_items=40",
    "data.generate.mean_events=10",
    "model.embedding_dim=16",
    "trainer.num_threads=1",
    "data.max_len=10",
]


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the scripts import their siblings by name, so benchmarks/ joins sys.path)."""
    import importlib
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def train_feature_run(tmp_path: Path, items: list[str], timestamp) -> tuple[Path, dict]:
    """A tiny LSTM with behaviour and time-gap features on a 40-user log of `items`; `timestamp(user, t)` gives the
    time of user's t-th event. Returns the run dir and train()'s objects."""
    import numpy as np

    from seqexp.app.train import train

    rng = np.random.default_rng(0)
    rows = [
        (u, items[int(i)], ["pv", "cart"][int(rng.random() < 0.3)], timestamp(u, t, rng))
        for u in range(40)
        for t, i in enumerate(rng.integers(len(items), size=8))
    ]
    log = write_log(tmp_path / "log.csv", rows, ("user_id", "item_id", "behavior", "timestamp"))
    overrides = ["logger=none", "trainer=debug", "trainer.max_epochs=1", "trainer.num_threads=1"]
    overrides += ["model.embedding_dim=16", "data.max_len=10", "model.features=[behavior,time_gap]"]
    overrides += ["data=csv", f"data.path={log}", "data.columns.behavior=behavior"]
    _, objects = train(compose_train(tmp_path, *overrides))
    return tmp_path / "run", objects


def compose_train(tmp_path: Path, *overrides: str):
    """conf/train.yaml composed as `seqexp-train` would, with every path under tmp_path."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"paths.output_dir={tmp_path / 'run'}",
                f"paths.data_dir={tmp_path / 'data'}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                *overrides,
            ],
        )


def inspect_wandb_run(run_dir: Path) -> dict:
    """The offline W&B run of a run dir, read back without network by `wandb leet inspect`."""
    import json
    import subprocess
    import sys

    wandb_bin = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_bin), "leet", "inspect", "--summary", "--json", str(run_dir / "wandb" / "latest-run")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def eval_tensors_of(inputs: list, targets: list, seen: list) -> object:
    """EvalTensors from plain lists: one row per user, `seen` the items of each row's history."""
    import numpy as np

    from seqexp.data.loader import EvalTensors

    offsets = np.cumsum([0] + [len(s) for s in seen])
    return EvalTensors(
        users=torch.arange(len(targets)),
        inputs=torch.tensor(inputs),
        targets=torch.tensor(targets),
        seen_offsets=torch.tensor(offsets),
        seen_items=torch.tensor([i for s in seen for i in s], dtype=torch.int64),
    )


def evaluate_checkpoint(run_dir: Path, cfg: object, cache: Path) -> object:
    """The test evaluation of a run's best.pt, redone in this single process (DDP and multi-node checks)."""
    from seqexp.data import load_data
    from seqexp.data.features import event_features
    from seqexp.data.loader import eval_tensors
    from seqexp.data.splits import make_split
    from seqexp.evaluation.protocol import evaluate
    from seqexp.model.recommender import build_model
    from seqexp.training.checkpoint import load_checkpoint

    data = load_data(cfg.data, cache)
    split = make_split(data, cfg.split)
    test_t = eval_tensors(data, split.test, int(cfg.data.max_len), event_features(data, list(cfg.model.features)))
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    model = build_model(cfg.model, data.n_items, feature_sizes=ckpt.get("feature_sizes"))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return evaluate(model.score, test_t, n_items=data.n_items, filter_seen=True, ks=(5, 10, 20))
