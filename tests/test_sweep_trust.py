"""Sweep mistakes a bad-input hunt found: a search run without -m, an Optuna search in which every trial fails or
that its max_failure_rate stops, and a misspelt direction, an unusable storage or an out-of-range failure rate of the
Optuna sweeper. Each is one line naming the key and the fix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONF_DIR, TINY, compose_train
from seqexp.errors import ConfigError


def _train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEQEXP_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "seqexp.app.train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("seqexp: error:")]
    assert len(lines) == 1, out[-3000:]
    return lines[0]


@pytest.mark.slow
def test_a_search_without_multirun_is_refused_saying_to_add_m(tmp_path):
    proc = _train(tmp_path, "hparams_search=optuna", *TINY)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "hparams_search=optuna" in line and "needs multirun" in line and "seqexp-train -m " in line
    assert not list(tmp_path.rglob("results.json"))  # nothing trained, nothing filed as a search result


@pytest.mark.parametrize("override", ["hparams_search=optuna", "hydra/sweeper=optuna"])
def test_a_search_config_in_a_plain_run_is_found_by_hydras_choices(override):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from seqexp.app.hydra_context import check_search_runs_as_multirun
    from seqexp.errors import ConfigError

    cases = [
        ([override, "hydra.mode=RUN"], True),
        ([override, "hydra.mode=MULTIRUN"], False),
        (["hydra.mode=RUN"], False),
    ]
    try:
        for overrides, refused in cases:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                HydraConfig.instance().set_config(compose("train", overrides=overrides, return_hydra_config=True))
            if refused:
                with pytest.raises(ConfigError, match=rf"{override} is a search .* needs multirun: add -m"):
                    check_search_runs_as_multirun()
            else:
                check_search_runs_as_multirun()
    finally:
        HydraConfig.instance().cfg = None  # later tests see no Hydra run


def _failing_search(tmp_path: Path, *sweeper: str) -> tuple[subprocess.CompletedProcess, Path]:
    """An Optuna search (with these hydra.sweeper.* overrides) in which every trial is refused by a config check."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    proc = _train(
        tmp_path, "-m", *TINY, f"hydra.sweep.dir={sweep}", "hparams_search=optuna", *sweeper,
        "model.embedding_dropout=choice(2.0,3.0)",
    )  # fmt: skip
    return proc, sweep


@pytest.mark.slow
def test_an_optuna_search_in_which_every_trial_fails_ends_in_one_line_and_a_summary(tmp_path):
    proc, sweep = _failing_search(tmp_path, "hydra.sweeper.n_trials=2")
    assert proc.returncode == 1
    line = _error_line(proc)
    assert "0 of 2 trials completed; the first error: ConfigError: model.embedding_dropout=" in line
    assert str(sweep / "sweep_summary.json") in line
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert summary["jobs"] == 2 and summary["completed"] == 0 and len(summary["failed"]) == 2
    assert all("model.embedding_dropout" in job["error"] for job in summary["failed"])


@pytest.mark.slow
def test_max_failure_rate_stops_a_search_whose_batch_failed_in_one_line_and_a_summary(tmp_path):
    # formerly never: a failed seqexp trial returns None, which Hydra reports as a completed job
    proc, sweep = _failing_search(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=0.5")
    assert proc.returncode == 1
    line = _error_line(proc)
    assert line.startswith(
        "seqexp: error: the search stopped after 1 of 3 trials, 1 of them failed, more than "
        "hydra.sweeper.max_failure_rate=0.5 allows in a batch of hydra.sweeper.n_jobs=1"
    ), line
    assert "the first error: ConfigError: model.embedding_dropout=" in line
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert summary["jobs"] == 1 and summary["completed"] == 0  # the other two trials never started


@pytest.mark.slow
def test_a_saved_study_continues_only_the_same_search_and_its_old_trials_never_hide_a_failed_run(tmp_path):
    """Formerly `${model.name}-${data.name}` joined searches on any two logs of one format (or two splits, or two
    search spaces), and a search whose trials all failed reported the saved study's earlier best (exit 0)."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}"
    search = ["-m", *TINY, "hparams_search=optuna", "hydra.sweeper.n_trials=1", storage]
    first = _train(tmp_path, *search, f"hydra.sweep.dir={tmp_path / 'a'}")
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    refused = {
        "data.generate.n_users=80": "data.generate.n_users: 60 -> 80",  # and so data.path
        "model.encoder.dropout=0.1": "model.encoder.dropout: 0.3 -> 0.1",
        "model.optimizer.lr=interval(0.1,1)": "the search space (hydra.sweeper.params or a sweep on the command line)",
    }
    for override, named in refused.items():
        proc = _train(tmp_path, *search, f"hydra.sweep.dir={tmp_path / 'b'}", override)
        assert proc.returncode == 2, (override, proc.stderr[-1500:])
        line = _error_line(proc)
        assert line.startswith("seqexp: error: hydra.sweeper.study_name=lstm-synthetic in ")
        assert "holds 1 trials of a search with other settings (" in line and named in line, line
    (log,) = (tmp_path / "data" / "synthetic").glob("*.csv")
    log.write_text(log.read_text().splitlines()[0] + "\n")  # the same search, but its log lost every row
    again = _train(tmp_path, *search, f"hydra.sweep.dir={tmp_path / 'c'}", "trainer.num_threads=2")  # neutral
    assert again.returncode == 1
    assert "0 of 1 trials completed; the first error: DataError" in _error_line(again)


def test_every_failed_trial_is_handed_to_the_plugin_as_failed_with_its_error():
    pytest.importorskip("optuna")
    from hydra.core.utils import JobReturn, JobStatus

    from seqexp.app.optuna_search import TrialFailed, report_failed_trials

    disk_full = OSError(28, "No space left on device")

    class Launcher:
        def launch(self, job_overrides, initial_job_idx):
            return [
                JobReturn(working_dir="/sweep/0", status=JobStatus.COMPLETED, _return_value=0.25),
                JobReturn(working_dir="/sweep/1", status=JobStatus.COMPLETED, _return_value=None),  # seqexp's failure
                JobReturn(working_dir="/sweep/2", status=JobStatus.FAILED, _return_value=disk_full),  # Hydra's
                JobReturn(working_dir="/sweep/3", status=JobStatus.COMPLETED, _return_value="n/a"),  # not a number
            ]

    launcher = Launcher()
    report_failed_trials(launcher)
    good, *failed = launcher.launch([["a=1"], ["a=2"], ["a=3"], ["a=4"]], initial_job_idx=0)
    assert good.status == JobStatus.COMPLETED and good.return_value == 0.25
    assert all(ret.status == JobStatus.FAILED for ret in failed)
    messages = [
        r"trial /sweep/1 failed \(its error is in the sweep summary\)",
        r"trial /sweep/2 failed: OSError: \[Errno 28\] No space left on device",
        r"trial /sweep/3 failed",
    ]
    for ret, message in zip(failed, messages, strict=True):
        with pytest.raises(TrialFailed, match=message) as raised:
            _ = ret.return_value  # how the plugin counts it, and re-raises it when max_failure_rate fires
    assert raised.value.__cause__ is None and failed[1]._return_value.__cause__ is disk_full


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "hydra.sweeper.max_failure_rate=1.5",
            r"hydra.sweeper.max_failure_rate=1.5 is not a share between 0.0 and 1.0: .*1.0 tolerates every failure",
        ),
        ("hydra.sweeper.direction=maximise", r"hydra.sweeper.direction=maximise .*did you mean maximize.*use maximize"),
        (  # a folder of tmp_path, not /nonexistent: as root, anything may have made that
            "hydra.sweeper.storage=sqlite:///{tmp}/absent/x.db",
            r"hydra.sweeper.storage=sqlite:///{tmp}/absent/x.db: the folder {tmp}/absent does not exist",
        ),
    ],
)
def test_a_misspelt_direction_or_an_unusable_storage_is_one_line_naming_the_key(tmp_path, override, expected):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    override, expected = override.replace("{tmp}", str(tmp_path)), expected.replace("{tmp}", re.escape(str(tmp_path)))
    sweep = tmp_path / "sweep"
    proc = _train(tmp_path, "-m", *TINY, f"hydra.sweep.dir={sweep}", "hparams_search=optuna", override)
    assert proc.returncode == 2
    assert re.search(expected, _error_line(proc))
    assert not list(tmp_path.rglob("results.json"))  # refused before any trial


def test_the_sweeper_settings_are_checked_before_the_study_is_created(tmp_path):
    pytest.importorskip("optuna")
    from seqexp.app.optuna_search import check_direction, check_failure_rate, check_storage, sqlite_file
    from seqexp.errors import ConfigError

    for good in ("maximize", "minimize", ["maximize"]):
        check_direction(good)
    for good in (0, 0.25, 1.0, "0.5"):
        check_failure_rate(good)
    for bad in (-0.1, 1.5, "most", True, None):
        with pytest.raises(SystemExit) as stop:
            check_failure_rate(bad)
        assert stop.value.code == 2
    bad_directions = [
        ("Maximize", "Maximize is not"),
        (["maximize"] * 2, r"names 2 objectives, but a seqexp trial returns one metric \(optimized_metric\)"),
        ([], "names 0 objectives"),
    ]
    for bad, match in bad_directions:
        with pytest.raises(ConfigError, match=match):
            check_direction(bad)
    assert sqlite_file("sqlite:///optuna.db") == Path("optuna.db")
    assert sqlite_file("sqlite:////abs/x.db?timeout=5") == Path("/abs/x.db")
    assert sqlite_file("sqlite:///:memory:") is None and sqlite_file("postgresql://u@h/db") is None
    check_storage(None)
    check_storage(f"sqlite:///{tmp_path / 'ok.db'}")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match=r"hydra.sweeper.storage=.*a_file is not a folder"):
        check_storage(f"sqlite:///{tmp_path / 'a_file' / 'x.db'}")
    with pytest.raises(ConfigError, match=r"hydra.sweeper.storage=nosuchdb://x: optuna cannot open this storage"):
        check_storage("nosuchdb://x")


def test_a_study_saved_before_a_key_existed_continues_with_that_keys_old_behaviour(tmp_path):
    """Formerly every key added to conf/ since a study was saved refused it ("eval.diversity_separator: <unset> ->
    auto"): the saved identity is read with ADDED_LATER's old values, and RECORDED_LATER keys are not compared."""
    optuna = pytest.importorskip("optuna")
    from types import SimpleNamespace

    from seqexp.app.optuna_search import STUDY_ATTR, check_saved_study

    cfg = compose_train(tmp_path, *TINY)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweeper = SimpleNamespace(
        storage=storage, config=cfg, params={"model.optimizer.lr": "interval(0.001, 0.1)"}, study_name="s",
        _get_directions=lambda: ["maximize"],
    )  # fmt: skip
    check_saved_study(sweeper, [])  # a new study: records this search
    study = optuna.load_study(study_name="s", storage=storage)
    saved = study.user_attrs[STUDY_ATTR]
    for key in ("eval.diversity_separator", "trainer.selection_window"):  # as a study saved before they existed
        del saved["settings"][key]
    study.set_user_attr(STUDY_ATTR, saved)
    check_saved_study(sweeper, [])  # continued: the old behaviour of selection_window is 1, the card's value
    sweeper.config = compose_train(tmp_path, *TINY, "trainer.selection_window=5")
    with pytest.raises(ConfigError, match=r"trainer.selection_window: 1 -> 5"):
        check_saved_study(sweeper, [])
