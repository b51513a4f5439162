"""The Hydra app end to end on a tiny synthetic log: results, checkpoint, offline W&B run, recommend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import inspect_wandb_run
from seqexp.app.recommend import Recommender, cli
from seqexp.errors import RecommendError

pytestmark = pytest.mark.slow

TINY = [
    "data.generate.n_users=400",
    "data.generate.n_items=100",
    "data.generate.mean_events=20",
    "model.embedding_dim=32",
    "model.optimizer.lr=3e-3",
    "trainer.max_epochs=25",
    "trainer.patience=25",
    "trainer.progress_bar=false",
    "trainer.num_threads=1",
]


def run_app(tmp: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "seqexp.app.train",
        f"hydra.run.dir={tmp / 'run'}",
        f"paths.data_dir={tmp / 'data'}",
        f"paths.cache_dir={tmp / 'cache'}",
        *overrides,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"seqexp.app.train failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("e2e")
    proc = run_app(tmp, *TINY)
    run_dir = tmp / "run"
    return run_dir, json.loads((run_dir / "results.json").read_text()), proc


def test_results_json_records_metrics_protocol_and_provenance(trained):
    run_dir, res, proc = trained
    assert res["status"] == "completed" and res["model"] == "lstm" and res["data"] == "synthetic"
    for split in ("valid", "test"):
        for name in ("hr", "ndcg", "mrr"):
            for k in (5, 10, 20):
                assert 0.0 <= res["metrics"][f"{split}/{name}@{k}"] <= 1.0
    assert res["protocol"]["split"] == "leave_one_out" and res["protocol"]["ranking"] == "full"
    assert res["protocol"]["filter_seen"] is True
    assert len(res["per_user"]["values"]) == len(res["per_user"]["user_ids"]) == res["data_summary"]["users"]
    mean = sum(res["per_user"]["values"]) / len(res["per_user"]["values"])
    assert mean == pytest.approx(res["metrics"]["test/ndcg@10"])
    assert len(res["data_fingerprint"]) == 64 and res["seed"] == 0
    assert res["versions"]["torch"] and res["timings"]["total_s"] > 0
    assert res["throughput"]["train_sequences_per_s"] > 0 and res["training"]["best_epoch"] >= 1
    assert len(res["history"]) == res["training"]["epochs_run"]
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "prep_report.json").exists()
    assert (run_dir / res["checkpoint"]).exists()
    assert "popularity test" in proc.stdout and "lstm test" in proc.stdout  # the printed table


def test_lstm_beats_popularity(trained):
    _, res, _ = trained
    assert res["metrics"]["test/ndcg@10"] > 1.5 * res["popularity"]["test/ndcg@10"]
    assert res["metrics"]["valid/ndcg@10"] > 1.5 * res["popularity"]["valid/ndcg@10"]


def test_offline_wandb_run_reads_back_without_network(trained):
    run_dir, res, _ = trained
    run = inspect_wandb_run(run_dir)
    assert run["state"] == "finished" and run["exit_code"] == 0
    assert run["summary"]["test/ndcg@10"] == pytest.approx(res["metrics"]["test/ndcg@10"])
    assert run["summary"]["valid/ndcg@10"] == pytest.approx(res["metrics"]["valid/ndcg@10"])  # the best epoch
    assert run["summary"]["epoch"] == res["training"]["epochs_run"]
    assert run["config"]["model.encoder.num_layers"] == 2 and run["config"]["data.name"] == "synthetic"
    assert set(run["tags"]) >= {"lstm", "synthetic"}
    table = run["summary"]["test/top_k_examples"]  # a few users' top-10 beside their target
    assert table["_type"] == "table-file" and table["nrows"] == 8 and table["ncols"] == 5


def test_recommend_api_excludes_history_and_reports_unknown_items(trained):
    run_dir, _, _ = trained
    rec = Recommender.from_run(run_dir)
    known = rec.item_ids[:3]
    with pytest.warns(UserWarning, match=r"unknown item id\(s\) skipped: \['no-such-item'\]"):
        (top,) = rec.recommend([[*known, "no-such-item"]], k=5)
    assert len(top) == 5 and not {r.item_id for r in top} & set(known)
    assert [r.score for r in top] == sorted((r.score for r in top), reverse=True)
    with pytest.raises(RecommendError, match="history 1 is empty"):
        rec.recommend([[]])
    with pytest.raises(RecommendError, match="no item known"):
        rec.recommend([["nope", "nada"]])
    long_history = rec.item_ids * 2  # longer than max_len: the most recent max_len events are used
    assert len(rec.recommend([long_history], k=3, exclude_history=False)[0]) == 3


def test_recommend_cli(trained, capsys):
    run_dir, _, _ = trained
    known = Recommender.from_run(run_dir).item_ids
    assert cli([str(run_dir), " ".join(known[:2]), f"{known[5]},{known[6]}", "-k", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(r) for r in out] == [4, 4] and {"item_id", "score"} <= set(out[0][0])
    assert cli([str(run_dir), "ghost-item"]) == 2
    assert "no item known to this model" in capsys.readouterr().err
    assert cli([str(run_dir.parent / "no-run"), "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = run_dir.parent / "run-without-checkpoint"
    empty.mkdir()
    assert cli([str(empty), "1"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_bad_input_gives_one_clear_line_not_a_traceback(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("uid,item_id,timestamp\n1,2,3\n")
    proc = run_app(tmp_path, "data=csv", f"data.path={log}", "logger=none", check=False)
    assert proc.returncode == 2
    assert "seqexp: error:" in proc.stderr and str(log) in proc.stderr and "data.columns.user" in proc.stderr
    assert "Traceback" not in proc.stderr
