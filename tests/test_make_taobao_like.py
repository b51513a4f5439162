"""benchmarks/make_taobao_like.py: a generated Taobao-like log reads with data=taobao, is seeded, and looks like
the real file (5 columns, behaviour mix, power-law popularity, sessions); bad arguments give one clear error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO, compose_train

SCRIPT = REPO / "benchmarks" / "make_taobao_like.py"
_spec = importlib.util.spec_from_file_location("make_taobao_like", SCRIPT)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def _make(path: Path, *extra: str, events: int = 5000, items: int = 800) -> pd.DataFrame:
    gen.main(["--events", str(events), "--items", str(items), "--out", str(path), *extra])
    return pd.read_csv(path, header=None, names=["user", "item", "category", "behavior", "ts"])


def test_reads_with_the_taobao_preset(tmp_path: Path) -> None:
    from seqexp.data.prepare import prepare

    df = _make(tmp_path / "log.csv")
    cfg = compose_train(tmp_path, "data=taobao", f"data.path={tmp_path / 'log.csv'}", "data.filename=null")
    data = prepare(OmegaConf.to_container(cfg.data, resolve=True), tmp_path / "cache")
    assert len(df.columns) == 5 and len(df) == 5000
    assert df["user"].nunique() == round(5000 / 101.37)  # the real file's events per user
    assert data.n_users == df.groupby("user").size().ge(3).sum()  # min_seq_len 3 is the only filter
    assert data.n_items == df.loc[df["user"].isin(df.groupby("user").size().pipe(lambda s: s[s >= 3].index)),
                                  "item"].nunique()  # fmt: skip
    assert data.report.rules and all(r.dropped == 0 for r in data.report.rules if r.rule == "malformed_row")


def test_columns_mix_times_and_categories(tmp_path: Path) -> None:
    df = _make(tmp_path / "log.csv", events=40_000, items=4000)
    mix = df["behavior"].value_counts(normalize=True)
    for behavior, share in {"pv": 0.896, "cart": 0.055, "fav": 0.029, "buy": 0.020}.items():
        assert abs(mix[behavior] - share) < 0.01, (behavior, mix[behavior])
    assert df["ts"].between(gen.T0, gen.T1 - 1).all()
    assert (df.groupby("user")["ts"].diff().dropna() >= 0).all()  # each user's rows in time order
    assert df["user"].is_monotonic_increasing  # users together, as in the real file
    assert (df.groupby("item")["category"].nunique() == 1).all()  # one category per item
    assert df["item"].nunique() == 4000  # events >= items: every item occurs (--cover auto)
    gaps = df.groupby("user")["ts"].diff().dropna()
    assert 0.10 < (gaps > 1800).mean() < 0.22  # sessions: real 16% of gaps are over 30 minutes


def test_power_law_popularity(tmp_path: Path) -> None:
    df = _make(tmp_path / "log.csv", "--cover", "off", events=20_000, items=2000)
    counts = df["item"].value_counts().to_numpy()
    top = counts[: 2000 // 100].sum() / counts.sum()  # top 1% of the catalogue
    assert top > 0.08, top  # uniform popularity would give ~0.01
    assert counts[0] > 10 * np.median(counts)


def test_seeded(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.csv", "--seed", "3", "--chunk-events", "700")
    b = _make(tmp_path / "b.csv", "--seed", "3", "--chunk-events", "700")
    c = _make(tmp_path / "c.csv", "--seed", "4", "--chunk-events", "700")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert not a.equals(c) and a.equals(b)


def test_chunks_keep_the_totals(tmp_path: Path) -> None:
    df = _make(tmp_path / "log.csv", "--chunk-events", "333", events=3001, items=500)
    assert len(df) == 3001 and df["item"].nunique() == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "0", "--items", "5"], "must be positive integers"),
        (["--events", "10", "--items", "5", "--users", "11"], "--users 11 is more than --events 10"),
        (["--events", "10", "--items", "5", "--categories", "6"], "--categories 6 is more than --items 5"),
        (["--events", "10", "--items", "50", "--cover", "on"], "--cover on needs --events (10) >= --items (50)"),
        (["--events", "ten", "--items", "5"], "invalid int value: 'ten'"),
    ],
)
def test_bad_arguments_one_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "x.csv")],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("error:") == 1  # argparse's usage + one line
    assert not (tmp_path / "x.csv").exists()


def test_missing_output_folder(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--events", "10", "--items", "5",
                          "--out", str(tmp_path / "nope" / "x.csv")], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and f"folder {tmp_path / 'nope'} does not exist" in out.stderr
