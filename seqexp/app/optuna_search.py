"""How seqexp runs an Optuna search (hparams_search=optuna; the sweeper class is the thin subclass in
hydra_plugins/seqexp_sweeper/optuna_sweeper.py, as Hydra takes sweepers only from there).

hydra-optuna-sweeper's own search, with these things around it:
- hydra.sweeper.direction, storage and max_failure_rate are checked before the study is created: a typo or a folder
  that does not exist is one line naming the key and the fix (exit 2), not an optuna / SQLAlchemy traceback;
- a search in which no trial completed (optuna: `ValueError: No trials are completed yet.`, raised before
  Hydra's end-of-multirun callbacks run) ends with the sweep summary written (the callbacks are run here) and one
  line: "0 of N trials completed; the first error: ..." (exit 1, as a multirun with failed jobs);
- a saved study (hydra.sweeper.storage) continues only a search with the same settings (data, split, protocol,
  model, trainer, optimized_metric) and search space (otherwise one line naming the study and what differs, exit
  2); a search in which no trial of this execution completed ends as above even when the saved study's earlier
  trials give optuna a best trial;
- hydra.sweeper.max_failure_rate works: a failed seqexp trial returns None (so that a plain multirun's siblings
  finish), which Hydra reports as a completed job, so the plugin's rule (stop when more than that share of a batch
  of n_jobs trials failed) never fired. Such a job is now handed to the plugin as failed; when the rule fires the
  search ends as above, with one line naming the key.
"""

from __future__ import annotations

import difflib
import os
import sys
import time
from collections.abc import MutableSequence
from pathlib import Path
from typing import Any

from seqexp.app.resume import ADDED_LATER, RECORDED_LATER
from seqexp.errors import ConfigError
from seqexp.evaluation.protocol import NO_RESULT_CHANGE
from seqexp.io import write_json
from seqexp.tracking.sweep_report import summarise

DIRECTIONS = ("maximize", "minimize")
NO_TRIAL_COMPLETED = "No trials are completed"  # optuna's study.best_trial when every trial failed


def run_search(sweeper: Any, arguments: list[str]) -> None:
    """`sweeper.sweep(arguments)` (an OptunaSweeperImpl) with the checks and the ending described above."""
    try:
        check_direction(sweeper.direction)
        check_storage(sweeper.storage)
        check_saved_study(sweeper, arguments)
    except ConfigError as e:
        _stop(str(e), status=2)
    started = time.time()
    report_failed_trials(sweeper.launcher)
    stopped_by: str | None = None
    try:
        sweeper.sweep(arguments)
        if _completed_here(sweeper, started) != 0:
            return None  # else every trial of this execution failed: a saved study's earlier ones gave a best trial
    except TrialFailed:  # the plugin's max_failure_rate fired (it re-raises a failed job's error)
        stopped_by = f"hydra.sweeper.max_failure_rate={sweeper.max_failure_rate}"
    except ValueError as e:
        if NO_TRIAL_COMPLETED not in str(e):
            raise
    _end_search(sweeper, started, stopped_by)


def _completed_here(sweeper: Any, started: float) -> int | None:
    """How many trials of this execution completed (None: no sweep dir to count in)."""
    sweep_dir = Path(str(sweeper.config.hydra.sweep.dir))
    if not sweep_dir.exists():
        return None
    summary = summarise(sweep_dir, started)
    return summary["completed"] if summary["jobs"] else None


STUDY_ATTR = "seqexp_search"  # a saved study's user attribute: what its trials were run on


# not compared: what changes no number a trial reports, and what a continued search may change (its seed)
NEUTRAL = (*NO_RESULT_CHANGE, "task_name", "seed")


def search_identity(config: Any, params: Any, arguments: list[str]) -> dict[str, Any]:
    """What a saved study's trials must share with this search to be continued by it: every setting of the run
    config but the neutral ones (data, split, protocol, model, trainer, optimized_metric), and the search space
    (hydra.sweeper.params and the sweeps given on the command line)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from seqexp.tracking.trackers import flatten

    run_config = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    OmegaConf.update(run_config, "paths.output_dir", None, force_add=True)  # ${hydra:runtime...}: a job's, not ours
    settings = flatten(OmegaConf.to_container(run_config, resolve=True))  # type: ignore[arg-type]
    parser = OverridesParser.create()
    swept = sorted(a for a in arguments if parser.parse_override(a).is_sweep_override())
    return {
        "settings": {k: v for k, v in settings.items() if not k.startswith(NEUTRAL)},
        "space": {**{str(k): str(v) for k, v in (params or {}).items()}, "command line": swept},
    }


def check_saved_study(sweeper: Any, arguments: list[str]) -> None:
    """With hydra.sweeper.storage, a study of the same name continues, and its earlier trials steer the sampler and
    count in the best result: refuse one whose trials ran with other settings or another search space (formerly
    `${model.name}-${data.name}` joined searches on any two data=csv files, or on two splits); record this search's
    identity in a new study."""
    if sweeper.storage is None:
        return  # in memory: a new study every time
    import optuna

    identity = search_identity(sweeper.config, sweeper.params, arguments)
    study = optuna.create_study(
        study_name=sweeper.study_name, storage=sweeper.storage, directions=sweeper._get_directions(),
        load_if_exists=True,
    )  # fmt: skip
    saved = study.user_attrs.get(STUDY_ATTR)
    if saved is None:
        study.set_user_attr(STUDY_ATTR, identity)  # new, or saved before this record: this search's from now on
        return
    before, now = saved.get("settings", {}), identity["settings"]
    # a key added since the study was saved: its old behaviour (ADDED_LATER), or not compared (RECORDED_LATER);
    # formerly every new key of conf/ refused every saved study
    before = {**{k: v for k, v in ADDED_LATER.items() if k in now}, **before}
    keys = sorted(k for k in {*before, *now} if k in before or k not in RECORDED_LATER)
    differ = [f"{k}: {before.get(k, '<unset>')} -> {now.get(k, '<unset>')}" for k in keys
              if before.get(k, "<unset>") != now.get(k, "<unset>")]  # fmt: skip
    if saved.get("space") != identity["space"]:
        differ.append("the search space (hydra.sweeper.params or a sweep on the command line)")
    if differ:
        raise ConfigError(
            f"hydra.sweeper.study_name={sweeper.study_name} in {sweeper.storage} holds {len(study.trials)} trials of "
            f"a search with other settings ({'; '.join(differ[:5])}{'; ...' if len(differ) > 5 else ''}); its "
            f"trials would steer this search and count in its best result. Give this search its own study "
            f"(hydra.sweeper.study_name=<name>) or storage"
        )


class TrialFailed(Exception):
    """A seqexp trial that failed; its error and traceback are in its run dir (and the sweep summary)."""


def report_failed_trials(launcher: Any) -> None:
    """Make `launcher.launch` hand every failed trial back to hydra-optuna-sweeper as FAILED with a TrialFailed,
    the state it counts against max_failure_rate and the error run_search ends on: a job that returned no number
    (a failed seqexp trial, see seqexp.app.train.main) and a job Hydra marked FAILED itself (an error that escaped
    the task function, e.g. a full disk while recording the failure)."""
    from hydra.core.utils import JobStatus

    launch = launcher.launch

    def launch_and_report(job_overrides: Any, initial_job_idx: int) -> Any:
        returns = launch(job_overrides, initial_job_idx)
        for ret in returns:
            where = f"trial {ret.working_dir or '(no run dir)'}"
            if ret.status == JobStatus.FAILED and not isinstance(ret._return_value, TrialFailed):
                error = ret._return_value
                failure = TrialFailed(f"{where} failed: {type(error).__name__}: {error}")
                failure.__cause__ = error if isinstance(error, BaseException) else None
                ret.return_value = failure
            elif ret.status == JobStatus.COMPLETED and not _is_number(ret.return_value):
                ret.status = JobStatus.FAILED
                ret.return_value = TrialFailed(f"{where} failed (its error is in the sweep summary)")
        return returns

    launcher.launch = launch_and_report


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def check_direction(direction: Any) -> None:
    """hydra.sweeper.direction: maximize or minimize (a list of one is accepted: a seqexp trial returns the one
    metric optimized_metric names)."""
    values = list(direction) if isinstance(direction, MutableSequence) else [direction]
    if len(values) != 1:
        raise ConfigError(
            f"hydra.sweeper.direction={[getattr(v, 'name', v) for v in values]} names {len(values)} objectives, "
            f"but a seqexp trial returns one metric (optimized_metric): use maximize or minimize"
        )
    for value in values:
        name = getattr(value, "name", value)  # the plugin's Direction enum, or a string
        if name not in DIRECTIONS:
            close = difflib.get_close_matches(str(name), DIRECTIONS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"hydra.sweeper.direction={name} is not an optimisation direction{hint}: use maximize or minimize "
                f"(for optimized_metric=valid/...: maximize)"
            )


def check_failure_rate(rate: Any) -> None:
    """hydra.sweeper.max_failure_rate: a share of a batch, 0.0 to 1.0 (the plugin asserts it)."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(rate, bool) or not 0.0 <= value <= 1.0:
        _stop(
            f"hydra.sweeper.max_failure_rate={rate} is not a share between 0.0 and 1.0: give the share of a batch "
            f"of trials that may fail before the search stops (1.0 tolerates every failure)",
            status=2,
        )


def check_storage(storage: Any) -> None:
    """hydra.sweeper.storage: null (in memory), or a database optuna can open, e.g. sqlite:///optuna.db; an SQLite
    file must be in a folder that exists and can be written."""
    if storage is None or not isinstance(storage, str):
        return  # in memory, or a storage object: optuna's own
    key = f"hydra.sweeper.storage={storage}"
    path = sqlite_file(storage)
    if path is not None:
        check_sqlite_file(path, key)
    import optuna

    try:
        optuna.storages.get_storage(storage)  # connects (SQLite: creates the file) as the study would next
    except Exception as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise ConfigError(
            f"{key}: optuna cannot open this storage ({why}); give a database URL it can open, e.g. "
            f"sqlite:///optuna.db, or null to keep the study in memory"
        ) from None


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (sqlite:///relative.db, sqlite:////absolute.db), or None (another database, or
    SQLite in memory)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return None
    path = rest.split("?", 1)[0]
    return Path(path) if path not in ("", ":memory:") else None


def check_sqlite_file(path: Path, key: str) -> None:
    """The folder of an SQLite file exists and the file (or, if new, its folder) can be written."""
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"{key}: the folder {folder} {what}; create it (mkdir -p {folder}) or give a file in an existing "
            f"folder, e.g. sqlite:///optuna.db"
        )
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ConfigError(
            f"{key}: {target} cannot be written (permission denied); give a file in a folder you can write, "
            f"e.g. sqlite:///optuna.db"
        )


def _end_search(sweeper: Any, started: float, stopped_by: str | None = None) -> None:
    """Write the sweep summary, run the end-of-multirun callbacks Hydra will not reach, and stop with one line:
    no trial completed, or (`stopped_by`) the failure rate stopped the search."""
    sweep_dir = Path(str(sweeper.config.hydra.sweep.dir))
    summary = summarise(sweep_dir, started) if sweep_dir.exists() else {"jobs": 0, "failed": []}
    if sweep_dir.exists():
        write_json(sweep_dir / "sweep_summary.json", summary)
    first = summary["failed"][0] if summary["failed"] else None
    error = (first.get("error") or first["status"]) if first else "no trial returned a number for optimized_metric"
    where = f" ({first['dir']})" if first else ""
    if stopped_by is None:
        outcome = f"0 of {summary['jobs']} trials completed"
    else:
        outcome = (
            f"the search stopped after {summary['jobs']} of {sweeper.n_trials} trials, {len(summary['failed'])} of "
            f"them failed, more than {stopped_by} allows in a batch of hydra.sweeper.n_jobs={sweeper.n_jobs} "
            f"(1.0 tolerates every failure)"
        )
    line = f"{outcome}; the first error: {error}{where}; every trial is listed in {sweep_dir / 'sweep_summary.json'}"
    try:
        sweeper.hydra_context.callbacks.on_multirun_end(config=sweeper.config)
    finally:
        _stop(line, status=1)


def _stop(line: str, status: int) -> None:
    print(f"seqexp: error: {line}", file=sys.stderr)
    raise SystemExit(status)
