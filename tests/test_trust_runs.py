"""Trust rules for runs (issue #14): no silent overwrite, resume continues only its own run, degenerate settings
and config mistakes are one clear error before any work, early stopping follows optimized_metric, failures and
Ctrl-C leave a readable record."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, compose_train
from seqexp.app import stages
from seqexp.app.train import train, user_error_line
from seqexp.data.loader import EvalTensors
from seqexp.errors import ConfigError, ResumeMismatch, RunDirInUse
from seqexp.evaluation.protocol import evaluate
from seqexp.io import write_json


def _results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "results.json").read_text())


def test_a_finished_run_is_never_overwritten(tmp_path):
    train(compose_train(tmp_path, *TINY))
    before = (tmp_path / "run" / "results.json").read_bytes()
    best = (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes()
    with pytest.raises(RunDirInUse, match=r"already holds a run.*trainer.resume=true.*trainer.overwrite=true"):
        train(compose_train(tmp_path, *TINY, "model=gru"))
    assert (tmp_path / "run" / "results.json").read_bytes() == before  # nothing written, not even a failure
    assert (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes() == best
    train(compose_train(tmp_path, *TINY, "model=gru", "trainer.overwrite=true"))
    assert _results(tmp_path)["model"] == "gru"


def test_the_cli_refuses_an_occupied_run_dir_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / "results.json", {"status": "completed", "model": "lstm"})
    proc = subprocess.run(
        [sys.executable, "-m", "seqexp.app.train", f"hydra.run.dir={run_dir}", *TINY],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("seqexp: error:")]
    assert len(error_lines) == 1 and str(run_dir) in error_lines[0] and "Traceback" not in proc.stderr
    assert json.loads((run_dir / "results.json").read_text()) == {"status": "completed", "model": "lstm"}


def test_resume_refuses_another_model_config(tmp_path):
    train(compose_train(tmp_path, *TINY))
    with pytest.raises(ResumeMismatch, match=r"model.embedding_dim=16, this command has model.embedding_dim=8"):
        train(compose_train(tmp_path, *TINY, "trainer.resume=true", "model.embedding_dim=8"))
    assert _results(tmp_path)["status"] == "completed"  # the refused resume recorded nothing


def test_resume_refuses_other_data_of_the_same_size(tmp_path):
    train(compose_train(tmp_path, *TINY))
    other = ["data.generate.seed=1", "data.path=" + str(tmp_path / "data" / "other.csv")]  # same sizes, new content
    with pytest.raises(ResumeMismatch, match=r"trained on other data \(data fingerprint"):
        train(compose_train(tmp_path, *TINY, "trainer.resume=true", *other))


def test_resume_may_raise_the_epoch_budget(tmp_path):
    train(compose_train(tmp_path, *TINY))
    _, objects = train(compose_train(tmp_path, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert objects["results"]["training"]["epochs_run"] == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.patience=0", r"trainer.patience=0 must be >= 1"),
        ("trainer.selection_window=0", r"trainer.selection_window=0 must be >= 1; 1 selects on each validation"),
        ("trainer.max_epochs=0", r"trainer.max_epochs=0 must be >= 1; a run must train at least one epoch"),
        ("trainer.max_epochs=ten", r"trainer.max_epochs='ten' is not a whole number"),
        ("model.batch_size=0", r"model.batch_size=0 must be >= 1"),
        ("eval.batch_size=0", r"eval.batch_size=0 must be >= 1"),
        ("eval.ks=[5,20]", r"optimized_metric=valid/ndcg@10 needs K=10 in eval.ks=\[5, 20\]"),
        (  # formerly accepted, then a KeyError after training (results.json's per-user values are NDCG@10)
            "eval.ks=[5,20] optimized_metric=valid/ndcg@5",
            r"eval.ks=\[5, 20\] must include 10: .*; add it \(eval.ks=\[5,10,20\]\)",
        ),
        ("optimized_metric=valid/ndgc@10", r"optimized_metric=valid/ndgc@10 is not a validation metric"),
        ("optimized_metric=test/ndcg@10", r"model selection never looks at test"),
        ("model.optimizer.lr=-0.001", r"model.optimizer.lr=-0.001 must be a positive number"),
        ("data.train_stride=20", r"data.train_stride=20 must be between 1 and data.max_len=10"),
        ("data.min_seq_len=0", r"data.min_seq_len=0 must be >= 1 \(1 keeps every user or session\)"),
        ("trainer.precision=fp16", r"fp16 needs a CUDA device.*bf16"),
        ("trainer.precision=fp8", r"trainer.precision='fp8' is not one of"),
        ("trainer.grad_clip=-1", r"trainer.grad_clip=-1 must be a positive number"),
        ("trainer.grad_clip=true", r"trainer.grad_clip=true is not a number"),  # not read as a clip of 1
        ("eval.filter_seen=off", r"eval.filter_seen='off' must be true or false"),  # "off" is a truthy string
        ("trainer.save_last=0", r"trainer.save_last=0 must be true or false"),
        ("data=csv", r"data.path must be set.*data=csv needs data.path=<your log file>"),
    ],
)
def test_config_mistakes_are_one_error_before_any_work(tmp_path, override, message):
    base = ["logger=none"] if override.startswith("data=") else TINY  # TINY sets synthetic-only keys
    with pytest.raises(ConfigError, match=message):
        train(compose_train(tmp_path, *base, *override.split(" ")))
    assert not (tmp_path / "data").exists()  # refused before the data step
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "failed"


def test_an_added_key_nothing_reads_is_warned_about(tmp_path, caplog):
    from seqexp.app.config_checks import warn_unused_keys

    cfg = compose_train(tmp_path, *TINY, "+trainer.patiance=3")
    warnings = warn_unused_keys(cfg, ["+trainer.patiance=3", "+model.encoder.extra=1", "+model/loss=sampled"])
    assert warnings == [
        "unused key: +trainer.patiance=3 adds trainer.patiance, which nothing in seqexp reads; "
        "did you mean trainer.patience=...?"
    ]


def test_early_stopping_and_selection_follow_optimized_metric(tmp_path):
    overrides = [*TINY, "trainer.max_epochs=6", "trainer.patience=6", "optimized_metric=valid/mrr@5"]
    _, objects = train(compose_train(tmp_path, *overrides))
    results = objects["results"]
    history = [row["valid/mrr@5"] for row in results["history"]]
    assert results["protocol"]["selection_metric"] == "valid/mrr@5"
    assert results["training"]["best_epoch"] == 1 + int(np.argmax(history))  # the first epoch of the best value
    assert results["metrics"]["valid/mrr@5"] == max(history)


def test_coverage_never_counts_filtered_items():
    # 5 items; the user has seen items 1, 2, 3, so only 4 and 5 can be recommended: coverage@10 = 2 / 5
    tensors = EvalTensors(
        users=torch.tensor([0]),
        inputs=torch.tensor([[1, 2, 3]]),
        targets=torch.tensor([4]),
        seen_offsets=torch.tensor([0, 3]),
        seen_items=torch.tensor([1, 2, 3]),
    )

    def scorer(inputs: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[0.0, 5.0, 4.0, 3.0, 2.0, 1.0]])

    result = evaluate(scorer, tensors, n_items=5, filter_seen=True, ks=(10,))
    assert result.metrics["coverage@10"] == pytest.approx(2 / 5)
    assert result.metrics["hr@10"] == 1.0 and result.metrics["mrr@10"] == 1.0  # item 4 ranks first of 2


def test_an_unwritable_run_dir_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    cfg = compose_train(tmp_path, *TINY, f"paths.output_dir={blocker / 'run'}")
    with pytest.raises(ConfigError, match=r"cannot write to the run dir .*hydra.run.dir=<dir>"):
        train(cfg)


def test_a_full_disk_leaves_a_failed_record_and_one_line(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "checkpoints" / "best.pt"))

    monkeypatch.setattr(stages, "save_checkpoint", full)
    with pytest.raises(OSError) as caught:
        train(compose_train(tmp_path, *TINY))
    record = _results(tmp_path)
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    line = user_error_line(caught.value)
    assert line.startswith("No space left on device writing ") and "best.pt" in line and "hydra.run.dir" in line


def test_ctrl_c_records_an_interrupted_run(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(compose_train(tmp_path, *TINY))
    assert _results(tmp_path)["status"] == "interrupted"


@pytest.mark.slow
def test_ctrl_c_on_the_cli_says_how_to_resume(tmp_path):
    """SIGINT during training: one line with the resume command, exit 130, results.json says interrupted."""
    import signal
    import time

    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "seqexp.app.train", f"hydra.run.dir={run_dir}", f"paths.data_dir={tmp_path}/d",
            f"paths.cache_dir={tmp_path}/c", "logger=none", "trainer.progress_bar=false", "trainer.max_epochs=300",
            "trainer.patience=300", "data.generate.n_users=300", "model.embedding_dim=16"]  # fmt: skip
    # a runner started in the background (nohup ... &) ignores SIGINT, and Python then never installs its
    # KeyboardInterrupt handler: give the child the default disposition, as an interactive terminal would
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "seqexp: interrupted; resume with: seqexp-train" in err and "trainer.resume=true" in err
    assert "Traceback" not in err
    assert json.loads((run_dir / "results.json").read_text())["status"] == "interrupted"


def test_files_keep_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        train(compose_train(tmp_path, *TINY))
    finally:
        os.umask(old)
    for path in [tmp_path / "run" / "results.json", tmp_path / "run" / "checkpoints" / "best.pt"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    entries = [p for p in (tmp_path / "cache" / "prepared").iterdir()]
    assert entries and all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in entries)


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        (["experiment=sparse_catalogue", "model=bert4rec"], "experiment=sparse_catalogue is a recipe measured on "
         "model=sasrec; with model=bert4rec its values apply to bert4rec's card unmeasured"),
        (["experiment=sparse_catalogue"], None),
        (["experiment=sparse_catalogue", "model=sasrec"], None),  # the recipe's own model, named
        (["experiment=compare_encoders", "model=gru"], None),  # a recipe for every model
        (["experiment=sparse_catalogue", "model=sasrec", "model.name=mine"], None),  # the name is only a tag
    ],
)  # fmt: skip
def test_a_recipe_run_on_another_model_is_warned_about(tmp_path, caplog, overrides, warned):
    from seqexp.app.config_checks import warn_recipe_for_another_model

    compose_train(tmp_path, *TINY, *overrides)  # a valid command
    given = warn_recipe_for_another_model(overrides)
    if warned is None:
        assert given is None and "is a recipe measured on" not in caplog.text
    else:
        assert given.startswith(warned) and given.endswith("Drop model=bert4rec to run the recipe as measured")
        assert warned in caplog.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=gru", "+model/loss=sampled", "model.loss.in_batch=no"], r"model.loss.in_batch='no' must be true or"),
        (["model=gru", "+model/loss=sampled", "model.loss.logq_correction=off"], r"logq_correction='off' must be"),
        (["model=gru", "+model/loss=sampled", "model.loss.per_position=no"], r"model.loss.per_position='no' must be"),
        (["model=gru", "model.item_init=item2vec", "pretrained.freeze=no"], r"pretrained.freeze='no' must be true"),
        (  # Adam cannot take the item table's sparse gradient: it died at the first optimiser step
            ["model=gru", "model.sparse_items=true", "+model/loss=sampled"],
            r"model.sparse_items=true .*=torch.optim.Adam cannot take; set model.optimizer._target_=seqexp.model"
            r".sparse_items.SparseItemOptimizer",
        ),
    ],
)
def test_mistakes_found_by_the_hunt_on_loss_and_init_settings_are_one_error_before_any_work(
    tmp_path, overrides, message
):
    """A command-line `no` is the string "no", which these keys read as true (the item table was frozen when the
    user asked for it not to be; in-batch negatives and logQ ran when switched off)."""
    with pytest.raises(ConfigError, match=message):
        train(compose_train(tmp_path, *TINY, *overrides))
    assert not (tmp_path / "data").exists()  # refused before the data step


def test_a_bad_loss_setting_is_one_error_not_hydras_wrapped_one(tmp_path):
    with pytest.raises(ConfigError, match=r"model.loss.distribution='popular': use uniform or popularity"):
        train(compose_train(tmp_path, *TINY, "model=gru", "+model/loss=sampled", "model.loss.distribution=popular"))


def test_a_true_false_setting_of_any_model_part_must_be_a_bool():
    """Also for a key config_checks.FLAGS does not list (a user's own encoder): the class's `bool` annotation."""
    from omegaconf import OmegaConf

    from seqexp.model.instantiate import instantiate_part

    node = {"_target_": "seqexp.model.losses.SampledSoftmax", "num_negatives": 5, "in_batch": "no"}
    with pytest.raises(ConfigError, match=r"model.loss.in_batch='no' must be true or false"):
        instantiate_part(OmegaConf.create({"loss": node}), "loss")
    built = instantiate_part(OmegaConf.create({"loss": {**node, "in_batch": False}}), "loss")
    assert built.in_batch is False
