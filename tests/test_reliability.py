"""Resume after SIGKILL, non-finite losses, and what is left on disk when a run fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, compose_train, inspect_wandb_run
from seqexp.app.train import train
from seqexp.errors import ConfigError, TrainingDiverged
from seqexp.training.checkpoint import load_checkpoint

RESUMABLE = [
    "logger=none",
    "trainer.progress_bar=false",
    "trainer.num_threads=1",
    "data.generate.n_users=300",
    "data.generate.n_items=80",
    "data.generate.mean_events=15",
    "model.embedding_dim=32",
    "data.max_len=20",
    "trainer.max_epochs=12",
    "trainer.patience=12",
]


def _app(run_dir: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "seqexp.app.train",
        f"hydra.run.dir={run_dir}",
        f"paths.data_dir={tmp / 'data'}",
        f"paths.cache_dir={tmp / 'cache'}",
        *RESUMABLE,
        *extra,
    ]


def _last_epoch(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["loop"]["epoch"])
    except Exception:  # not written yet
        return 0


@pytest.mark.slow
def test_a_sigkilled_run_resumes_to_the_same_metrics(tmp_path):
    subprocess.run(_app(tmp_path / "whole", tmp_path), check=True, capture_output=True, timeout=300)
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_app(killed, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _last_epoch(killed / "checkpoints" / "last.pt") < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _last_epoch(killed / "checkpoints" / "last.pt")
    assert 2 <= killed_at < 12 and not (killed / "results.json").exists()

    subprocess.run(_app(killed, tmp_path, "trainer.resume=true"), check=True, capture_output=True, timeout=300)
    resumed = json.loads((killed / "results.json").read_text())
    assert resumed["training"]["epochs_run"] == whole["training"]["epochs_run"] == 12
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, 13))
    for key, value in whole["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, abs=1e-6), key
    assert resumed["per_user"]["values"] == pytest.approx(whole["per_user"]["values"], abs=1e-6)


def test_resume_without_a_snapshot_says_where_to_resume(tmp_path):
    with pytest.raises(ConfigError, match=r"last.pt does not exist.*hydra.run.dir"):
        train(compose_train(tmp_path, *TINY, "trainer.resume=true"))


NAN_ENCODER = '''
from seqexp.model.encoders.rnn import LSTMEncoder


class NaNAfter(LSTMEncoder):
    """An LSTM whose output turns NaN from the `bad_step`-th training forward pass on."""

    def __init__(self, hidden_size: int, bad_step: int) -> None:
        super().__init__(hidden_size, num_layers=1)
        self.bad_step, self.calls = bad_step, 0

    def forward(self, x, padding_mask):
        out = super().forward(x, padding_mask)
        if self.training:
            self.calls += 1
            if self.calls >= self.bad_step:
                out = out * float("nan")
        return out
'''


def test_a_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoints(tmp_path):
    (tmp_path / "nan_encoder.py").write_text(textwrap.dedent(NAN_ENCODER))
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = compose_train(
            tmp_path,
            *TINY,
            "trainer.max_epochs=5",
            "model.batch_size=8",
            "model.encoder._target_=nan_encoder.NaNAfter",
            "~model.encoder.num_layers",
            "~model.encoder.dropout",
            "+model.encoder.bad_step=12",
            "logger=wandb",
        )
        with pytest.raises(TrainingDiverged, match=r"NaN or infinite at step 12 \(epoch 2\)"):
            train(cfg)
    finally:
        sys.path.remove(str(tmp_path))
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "failed" and "step 12" in results["error"]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["loop"]["epoch"] == 1  # the last good epoch
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["epoch"] == 1 and all(torch.isfinite(v).all() for v in best["state_dict"].values())
    assert inspect_wandb_run(run)["exit_code"] == 1  # the W&B run is marked failed


def test_repeated_runs_give_identical_results_json_metrics(tmp_path):
    first, _ = train(compose_train(tmp_path / "a", *TINY))
    second, _ = train(compose_train(tmp_path / "b", *TINY))
    a = json.loads((tmp_path / "a" / "run" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "run" / "results.json").read_text())
    assert a["metrics"] == b["metrics"] == first == second
    assert a["per_user"] == b["per_user"] and os.path.exists(tmp_path / "a" / "run" / "checkpoints" / "last.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "listed"), [("model=lstmm", "sasrec"), ("data=movielens", "ml100k"), ("hydra/launcher=rayy", "basic")]
)
def test_an_unknown_config_name_lists_the_options(tmp_path, override, listed):
    proc = subprocess.run(
        [sys.executable, "-m", "seqexp.app.train", override, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Could not find" in proc.stderr and "Available options" in proc.stderr and listed in proc.stderr


@pytest.mark.parametrize(
    ("valid_by_epoch", "stopped_early", "warned"),
    [
        ({1: 0.1, 2: 0.3, 3: 0.2}, False, False),  # the best (2) is before the last validated epoch: converged
        ({1: 0.1, 2: 0.2, 3: 0.3}, False, True),  # the best is the last validated epoch: maybe still improving
        ({2: 0.1, 4: 0.3, 5: None}, False, True),  # eval every 2, budget ended after an unvalidated epoch 5
        ({1: 0.1, 2: 0.3, 3: 0.2}, True, False),
    ],
)
def test_the_not_converged_warning_names_only_a_run_whose_best_is_its_last_validation(
    caplog, valid_by_epoch, stopped_early, warned
):
    from seqexp.training.loop import _check_outcome
    from seqexp.training.state import LoopState

    state = LoopState(epoch=max(valid_by_epoch))
    for epoch, value in valid_by_epoch.items():
        state.history.append({"epoch": epoch, **({} if value is None else {"valid/ndcg@10": value})})
        if value is not None and value > state.best_score:
            state.best_score, state.best_epoch = value, epoch
    with caplog.at_level("WARNING", logger="seqexp.training.loop"):
        _check_outcome(state, stopped_early, "ndcg@10")
    assert ("still improving at the last validated epoch" in caplog.text) == warned


def test_a_snapshot_without_history_falls_back_to_its_last_epoch(caplog):
    from seqexp.training.loop import _check_outcome
    from seqexp.training.state import LoopState

    with caplog.at_level("WARNING", logger="seqexp.training.loop"):
        _check_outcome(LoopState(epoch=3, best_epoch=3, best_score=0.2), False, "ndcg@10")  # no rows: no crash
    assert "at the last validated epoch (3)" in caplog.text
