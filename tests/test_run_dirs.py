"""Run dirs after review (issue #14): a finished run's results survive every later mistake, a replaced run is moved
aside (never mixed with the new one), resume=auto continues what is there, a resume checks shapes of old
snapshots, a re-run sweep never reports an earlier execution's results, and old entry points still run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, compose_train
from seqexp.app import train as train_module
from seqexp.app.train import train
from seqexp.errors import ConfigError, ResumeMismatch, RunDirInUse


def _results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "results.json").read_text())


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    train(compose_train(tmp_path, *TINY))
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "message"), [([], "already holds a run"), (["trainer.resume=true"], "eval.batch_size=0 must be >= 1")]
)
def test_a_config_mistake_in_a_finished_dir_leaves_its_results(finished, extra, message):
    before = (finished / "run" / "results.json").read_bytes()
    with pytest.raises(ConfigError, match=message):
        train(compose_train(finished, *TINY, *extra, "eval.batch_size=0"))
    assert (finished / "run" / "results.json").read_bytes() == before


def test_overwrite_no_leaves_a_finished_run_where_it_is(finished):
    """`trainer.overwrite=no` is the string "no", which read as true replaced the run (found by a hunt)."""
    before = (finished / "run" / "results.json").read_bytes()
    with pytest.raises(ConfigError, match=r"trainer.overwrite='no' must be true or false; .* was left as it is"):
        train(compose_train(finished, *TINY, "trainer.overwrite=no"))
    assert (finished / "run" / "results.json").read_bytes() == before
    assert not list((finished / "run").glob("replaced-*"))


def test_an_error_after_the_results_are_written_does_not_replace_them(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C (or a W&B failure) while the run is being reported

    monkeypatch.setattr(train_module, "publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(compose_train(tmp_path, *TINY))
    assert _results(tmp_path)["status"] == "completed"


def test_overwrite_moves_the_old_run_aside_and_never_points_at_its_checkpoint(finished):
    train(compose_train(finished, *TINY, "model=gru", "trainer.overwrite=true", "trainer.save_checkpoint=false"))
    new = _results(finished)
    assert new["model"] == "gru" and new["checkpoint"] is None
    (aside,) = (finished / "run").glob("replaced-*")
    assert json.loads((aside / "results.json").read_text())["model"] == "lstm"
    assert (aside / "checkpoints" / "best.pt").exists() and not (finished / "run" / "checkpoints" / "best.pt").exists()


def test_resume_auto_starts_fresh_then_continues(tmp_path):
    first, _ = train(compose_train(tmp_path, *TINY, "trainer.resume=auto"))
    (tmp_path / "run" / "results.json").unlink()  # as if killed before the end
    again, objects = train(compose_train(tmp_path, *TINY, "trainer.resume=auto"))
    assert again == first and objects["results"]["training"]["epochs_run"] == 2


def test_an_interrupted_run_is_not_replaced_without_being_asked(finished):
    results = json.loads((finished / "run" / "results.json").read_text())
    (finished / "run" / "results.json").write_text(json.dumps({**results, "status": "interrupted"}))
    with pytest.raises(RunDirInUse, match=r"already holds a run \(interrupted.*trainer.resume=true"):
        train(compose_train(finished, *TINY))


@pytest.mark.parametrize("killed_as", ["interrupted", None], ids=["ctrl-c", "killed"])
def test_a_config_mistake_resuming_an_unfinished_run_leaves_it_unfinished(finished, killed_as):
    """Formerly the mistake wrote status "failed" over the run, and the next plain run replaced it without a word."""
    results = finished / "run" / "results.json"
    if killed_as:
        results.write_text(json.dumps({**json.loads(results.read_text()), "status": killed_as}))
    else:
        results.unlink()
    before = results.read_bytes() if killed_as else None
    with pytest.raises(ConfigError, match=r"trainer.patience=0 must be >= 1"):
        train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.patience=0"))
    assert (results.read_bytes() if results.exists() else None) == before
    assert not (finished / "run" / "traceback.txt").exists()
    with pytest.raises(RunDirInUse, match=r"already holds a run"):
        train(compose_train(finished, *TINY))
    _, objects = train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert objects["results"]["status"] == "completed" and objects["results"]["training"]["epochs_run"] == 3


def test_a_config_mistake_in_a_fresh_dir_is_recorded_as_failed(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.patience=0 must be >= 1"):
        train(compose_train(tmp_path, *TINY, "trainer.patience=0"))
    assert _results(tmp_path)["status"] == "failed" and "trainer.patience=0" in _results(tmp_path)["error"]


def test_a_resume_may_change_the_evaluation_batch_size(finished):
    _, objects = train(compose_train(finished, *TINY, "trainer.resume=true", "eval.batch_size=7"))
    assert objects["results"]["training"]["epochs_run"] == 2


def test_a_mismatch_quotes_the_runs_own_overrides(tmp_path):
    from seqexp.app.resume import check_same_run

    saved = {"identity": {"data_fingerprint": "a" * 64, "config": {"seed": 0}, "overrides": ["model=gru", "seed=0"]}}
    now = {"data_fingerprint": "a" * 64, "config": {"seed": 1}, "overrides": ["seed=1"]}
    with pytest.raises(ResumeMismatch, match=r"with seed=0, this command has seed=1; resume with the run's own "
                       r"overrides \(model=gru seed=0\)"):  # fmt: skip
        check_same_run(saved, now, tmp_path / "last.pt")


def test_a_snapshot_from_before_a_key_was_added_resumes_with_its_value(tmp_path):
    from seqexp.app.resume import check_same_run

    saved = {"identity": {"data_fingerprint": "a" * 64, "config": {"seed": 0}, "overrides": []}}
    same = {"data_fingerprint": "a" * 64, "config": {"seed": 0, "model.scale_embeddings": False}, "overrides": []}
    check_same_run(saved, same, tmp_path / "last.pt")  # absent then = the card's default now: the same run
    other = {**same, "config": {"seed": 0, "model.scale_embeddings": True}}
    with pytest.raises(ResumeMismatch, match=r"scale_embeddings=false, this command has model.scale_embeddings=true"):
        check_same_run(saved, other, tmp_path / "last.pt")
    now = {"seed": 0, "split.valid_users": None, "split.valid_seed": 0}  # the split keys added after it too
    check_same_run(saved, {**same, "config": now}, tmp_path / "last.pt")
    with pytest.raises(ResumeMismatch, match=r"split.valid_users=null, this command has split.valid_users=2048"):
        check_same_run(saved, {**same, "config": {**now, "split.valid_users": 2048}}, tmp_path / "last.pt")
    esasrec = {**now, "model.encoder.final_norm": False}  # an esasrec run from before its output norm existed
    check_same_run(saved, {**same, "config": esasrec}, tmp_path / "last.pt")
    with pytest.raises(ResumeMismatch, match=r"final_norm=false, this command has model.encoder.final_norm=true"):
        check_same_run(saved, {**same, "config": {**esasrec, "model.encoder.final_norm": True}}, tmp_path / "last.pt")
    xavier = {**esasrec, "model.encoder.initializer_range": None}  # ... and from before its init was a key
    check_same_run(saved, {**same, "config": xavier}, tmp_path / "last.pt")
    normal = {**xavier, "model.encoder.initializer_range": 0.02}
    with pytest.raises(ResumeMismatch, match=r"initializer_range=null, this command has .*initializer_range=0.02"):
        check_same_run(saved, {**same, "config": normal}, tmp_path / "last.pt")
    bert4rec = {**now, "model.encoder.positions": "from_end", "model.objective.mask_last_if_none": True}
    check_same_run(saved, {**same, "config": bert4rec}, tmp_path / "last.pt")  # from before either key existed
    changed = (
        ("model.encoder.positions", "from_start", "from_start"),
        ("model.objective.mask_last_if_none", False, "false"),
    )
    for key, value, shown in changed:  # shown as typed on the command line
        with pytest.raises(ResumeMismatch, match=rf"{key}=.*, this command has {key}={shown};"):
            check_same_run(saved, {**same, "config": {**bert4rec, key: value}}, tmp_path / "last.pt")


def test_a_resume_may_not_change_clipping_precision_or_when_it_validates(tmp_path):
    train(compose_train(tmp_path, *TINY, "trainer.precision=no"))
    changed = (("trainer.grad_clip", "null", "null"), ("trainer.precision", "bf16", "bf16"))
    changed += (("trainer.eval_every", "2", "2"),)  # which epochs may be selected
    for key, value, shown in changed:
        with pytest.raises(ResumeMismatch, match=rf"written with {key}=\S+, this command has {key}={shown};"):
            train(compose_train(tmp_path, *TINY, "trainer.precision=no", "trainer.resume=true", f"{key}={value}"))
    # equal settings written differently are the same run: clipping 0 is off, as null; auto resolves first
    from seqexp.training.accelerator import resolve_precision

    same = ["trainer.grad_clip=1.0", f"trainer.precision={resolve_precision('auto', use_cpu=True)}"]
    train(compose_train(tmp_path / "auto", *TINY, "trainer.grad_clip=0"))
    _, objects = train(compose_train(tmp_path / "auto", *TINY, "trainer.resume=true", "trainer.max_epochs=3",
                                     "trainer.grad_clip=null", same[1]))  # fmt: skip
    assert objects["results"]["training"]["epochs_run"] == 3


@pytest.mark.parametrize(
    "recorded",
    [{}, {"trainer.grad_clip": None}, {"trainer.precision": "auto", "trainer.grad_clip": None}],
    ids=["neither", "only-clipping", "precision-unresolved"],
)
def test_a_snapshot_from_before_trainer_keys_were_recorded_resumes_with_any_value(tmp_path, caplog, recorded):
    from seqexp.app.resume import check_same_run

    saved = {"identity": {"data_fingerprint": "a" * 64, "config": {"seed": 0, **recorded}, "overrides": []}}
    now = {"data_fingerprint": "a" * 64, "config": {"seed": 0, "trainer.precision": "bf16", "trainer.grad_clip": None}}
    check_same_run(saved, {**now, "overrides": []}, tmp_path / "last.pt")  # what it ran with is unknown: not checked
    assert "does not record ['trainer.precision']" in caplog.text or "['trainer.grad_clip', 'trainer.precision']" in (
        caplog.text
    )
    known = {**saved["identity"], "config": {"seed": 0, "trainer.precision": "no", "trainer.grad_clip": None}}
    with pytest.raises(ResumeMismatch, match=r"trainer.precision=no, this command has trainer.precision=bf16"):
        check_same_run({"identity": known}, {**now, "overrides": []}, tmp_path / "last.pt")
    clipped = {**saved["identity"], "config": {"seed": 0, "trainer.precision": "bf16", "trainer.grad_clip": 1.0}}
    with pytest.raises(ResumeMismatch, match=r"trainer.grad_clip=1.0, this command has trainer.grad_clip=null"):
        check_same_run({"identity": clipped}, {**now, "overrides": []}, tmp_path / "last.pt")


def test_a_snapshot_recorded_without_clipping_refuses_a_resume_with_clipping(tmp_path, caplog):
    """A recorded null is a value (no clipping), not "unknown": it used to be read as unrecorded and left unchecked."""
    from seqexp.app.resume import check_same_run

    unclipped = {"seed": 0, "trainer.precision": "no", "trainer.grad_clip": None}
    saved = {"identity": {"data_fingerprint": "a" * 64, "config": unclipped, "overrides": []}}
    clipped = {"data_fingerprint": "a" * 64, "config": {**unclipped, "trainer.grad_clip": 1.0}, "overrides": []}
    with pytest.raises(ResumeMismatch, match=r"trainer.grad_clip=null, this command has trainer.grad_clip=1.0"):
        check_same_run(saved, clipped, tmp_path / "last.pt")
    check_same_run(saved, {**clipped, "config": unclipped}, tmp_path / "last.pt")
    assert "does not record" not in caplog.text
    typed_zero = {"identity": {**saved["identity"], "config": {**unclipped, "trainer.grad_clip": 0}}}
    check_same_run(typed_zero, {**clipped, "config": unclipped}, tmp_path / "last.pt")  # 0 as typed then: off


@pytest.mark.parametrize("recorded", [True, False], ids=["device-recorded", "older-snapshot"])
def test_a_snapshot_from_another_kind_of_device_is_one_resume_mismatch(finished, recorded):
    """A GPU node's snapshot requeued on a CPU node: formerly torch's RuntimeError "Expected a CPUGeneratorImplState
    of size 5056 but found ... 16" after the data step. (A CUDA generator's state is 16 bytes.)"""
    last = finished / "run" / "checkpoints" / "last.pt"
    before = (finished / "run" / "results.json").read_bytes()
    snapshot = torch.load(last, weights_only=True)
    assert snapshot["rng"]["mask_device"] == "cpu"
    snapshot["rng"]["mask"] = torch.zeros(16, dtype=torch.uint8)
    if recorded:
        snapshot["rng"]["mask_device"] = "cuda"
    else:
        del snapshot["rng"]["mask_device"]
    torch.save(snapshot, last)
    trained_on = "cuda" if recorded else "another kind of device"
    with pytest.raises(ResumeMismatch, match=rf"the snapshot was trained on {trained_on} and this command runs on cpu"):
        train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert (finished / "run" / "results.json").read_bytes() == before


def test_a_snapshot_without_identity_is_checked_by_its_shapes(finished):
    last = finished / "run" / "checkpoints" / "last.pt"
    snapshot = torch.load(last, weights_only=True)
    del snapshot["identity"]  # written before identities were stored
    torch.save(snapshot, last)
    with pytest.raises(
        ResumeMismatch, match=r"holds encoder\.\S+ with shape \(64,\), this command's model has \(32,\)"
    ):
        train(compose_train(finished, *TINY, "trainer.resume=true", "model.embedding_dim=8"))
    _, objects = train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert objects["results"]["training"]["epochs_run"] == 3


def test_coverage_may_drive_selection_at_its_own_cut_off(tmp_path):
    _, objects = train(compose_train(tmp_path, *TINY, "optimized_metric=valid/coverage@10"))
    assert objects["results"]["protocol"]["selection_metric"] == "valid/coverage@10"
    with pytest.raises(ConfigError, match=r"coverage is measured at K=10"):
        train(compose_train(tmp_path / "b", *TINY, "optimized_metric=valid/coverage@5"))


@pytest.mark.slow
def test_a_rerun_sweep_in_the_same_dir_reports_its_refused_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    args = [sys.executable, "-m", "seqexp.app.train", "-m", "model=lstm,gru", f"hydra.sweep.dir={sweep}",
            f"paths.data_dir={tmp_path / 'data'}", f"paths.cache_dir={tmp_path / 'cache'}", *TINY]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert second.returncode == 1 and (summary["jobs"], summary["completed"]) == (2, 0)
    assert all("RunDirInUse" in job["error"] for job in summary["failed"])
    assert all(json.loads((sweep / n / "results.json").read_text())["status"] == "completed" for n in ("0", "1"))


@pytest.mark.slow
def test_the_old_module_path_still_runs_the_app(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "seqexp.train", f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path}/d",
         f"paths.cache_dir={tmp_path}/c", *TINY],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert _results(tmp_path)["status"] == "completed"


def test_a_config_mistake_in_a_failed_runs_dir_keeps_its_first_failure_and_its_checkpoints(finished):
    """Formerly the mistake's record overwrote the failed run's results.json and traceback.txt."""
    run = finished / "run"
    first = {**json.loads((run / "results.json").read_text()), "status": "failed", "error": "RuntimeError: first"}
    (run / "results.json").write_text(json.dumps(first))
    (run / "traceback.txt").write_text("the first traceback")
    with pytest.raises(ConfigError, match=r"trainer.patience=0 must be >= 1"):
        train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.patience=0"))
    assert "trainer.patience=0" in _results(finished)["error"]  # the new failure is the dir's record
    (kept,) = run.glob("replaced-*")
    assert json.loads((kept / "results.json").read_text())["error"] == "RuntimeError: first"
    assert (kept / "traceback.txt").read_text() == "the first traceback"
    _, objects = train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))  # last.pt stayed
    assert objects["results"]["status"] == "completed" and objects["results"]["training"]["epochs_run"] == 3


def test_a_job_slurm_requeued_continues_its_own_run_dir(tmp_path, monkeypatch):
    """A preempted (or timed-out, resubmitted) SLURM job runs the same command in the same dir; formerly it was
    refused ("already holds a run") and the sweep lost the job."""
    first, _ = train(compose_train(tmp_path, *TINY))
    (tmp_path / "run" / "results.json").unlink()  # killed by the preemption after its last snapshot
    with pytest.raises(RunDirInUse, match=r"already holds a run"):
        train(compose_train(tmp_path, *TINY))  # a plain rerun by hand is still refused
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    again, objects = train(compose_train(tmp_path, *TINY))
    assert again == first and objects["results"]["training"]["epochs_run"] == 2
    (tmp_path / "run" / "results.json").unlink()
    shutil.rmtree(tmp_path / "run" / "checkpoints")  # killed before any snapshot: it starts again
    (tmp_path / "run" / "checkpoints").mkdir()
    third, _ = train(compose_train(tmp_path, *TINY))
    assert third == first and len(list((tmp_path / "run").glob("replaced-*"))) == 1  # nothing of it deleted


def test_a_resume_below_the_epochs_already_trained_is_refused_and_the_run_kept(finished):
    """Formerly it trained nothing and wrote a completed results.json recording max_epochs=1 for a 2-epoch run."""
    before = (finished / "run" / "results.json").read_bytes()
    with pytest.raises(ResumeMismatch, match=r"has trained 2 epochs, more than trainer.max_epochs=1: .*>=2"):
        train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=1"))
    assert (finished / "run" / "results.json").read_bytes() == before


def test_a_resume_that_fails_keeps_the_completed_runs_results(finished, monkeypatch):
    """Formerly the failure record replaced the completed run's results.json."""
    from seqexp.training import loop

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(loop, "train_epoch", broken)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert _results(finished)["status"] == "failed"
    (kept,) = (finished / "run").glob("replaced-*")
    assert json.loads((kept / "results.json").read_text())["status"] == "completed"
    monkeypatch.undo()
    _, objects = train(compose_train(finished, *TINY, "trainer.resume=true", "trainer.max_epochs=3"))
    assert objects["results"]["training"]["epochs_run"] == 3


def test_limit_train_batches_is_recorded_as_run_and_part_of_what_a_resume_must_match(tmp_path):
    """Formerly results.json said 7 batches per epoch for a run limited to 2, and a resume could change the limit."""
    _, objects = train(compose_train(tmp_path, *TINY, "trainer.limit_train_batches=2"))
    training = objects["results"]["training"]
    assert training["batches_per_epoch"] == 2 and [h["train/batches"] for h in objects["results"]["history"]] == [2, 2]
    (tmp_path / "run" / "results.json").unlink()  # killed
    with pytest.raises(ResumeMismatch, match=r"trainer.limit_train_batches=2, this command has .*=1"):
        train(compose_train(tmp_path, *TINY, "trainer.limit_train_batches=1", "trainer.resume=true"))


@pytest.mark.parametrize("resume", ["true", "auto"])
def test_overwrite_and_resume_on_a_resumable_run_are_refused_as_contradicting(finished, resume):
    """Formerly trainer.overwrite=true was ignored whenever trainer.resume was true or auto: the run was continued."""
    before = (finished / "run" / "results.json").read_bytes()
    with pytest.raises(ConfigError, match=rf"trainer.overwrite=true and trainer.resume={resume} contradict"):
        train(compose_train(finished, *TINY, f"trainer.resume={resume}", "trainer.overwrite=true"))
    assert (finished / "run" / "results.json").read_bytes() == before


def test_a_resume_that_trains_nothing_validates_its_unvalidated_last_epoch(tmp_path, monkeypatch):
    """Killed between validations (eval_every=5, after epoch 3) and resumed with max_epochs=3, as the refusal of a
    smaller budget suggests: formerly no epoch had been validated and the run failed as diverged."""
    from seqexp.training import loop

    real = loop.train_epoch

    def killed_at_4(epoch, *args, **kwargs):
        if epoch == 4:
            raise KeyboardInterrupt
        return real(epoch, *args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", killed_at_4)
    with pytest.raises(KeyboardInterrupt):
        train(compose_train(tmp_path, *TINY, "trainer.max_epochs=10", "trainer.eval_every=5"))
    monkeypatch.undo()
    _, objects = train(
        compose_train(tmp_path, *TINY, "trainer.max_epochs=3", "trainer.eval_every=5", "trainer.resume=true")
    )
    training = objects["results"]["training"]
    assert objects["results"]["status"] == "completed" and training["best_epoch"] == 3 and training["epochs_run"] == 3
