"""`seqexp-train` (also `python -m seqexp.app.train`): the Hydra app.

main(cfg) -> train(cfg) -> (metrics, objects). `train` lists the stages of a run and is what tests call; the
failure policy is one wrapper around it (`task_wrapper`); `main` adds Hydra and turns user errors into one line.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from seqexp.app import stages
from seqexp.app.conf_dir import CONF_DIR
from seqexp.app.hydra_context import check_search_runs_as_multirun, in_multirun, record_job_status, task_overrides
from seqexp.app.resolvers import register as register_resolvers
from seqexp.app.run_dir import RunDirClaim
from seqexp.data.sequences import PreparedData
from seqexp.data.splits import Split
from seqexp.errors import ConfigError, SeqexpError
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.options import protocol_options
from seqexp.evaluation.protocol import EvalProtocol
from seqexp.evaluation.reach import checked_protocol
from seqexp.io import write_json
from seqexp.model.recommender import count_parameters
from seqexp.ranks import is_main
from seqexp.tracking.failures import record_failure
from seqexp.tracking.publish import publish
from seqexp.tracking.results import RunFacts, build_results
from seqexp.training.checkpoint import checkpoint_epoch

log = logging.getLogger(__name__)


register_resolvers()


def task_wrapper(task: Callable[[DictConfig, RunDirClaim], Any]) -> Callable[[DictConfig], Any]:
    """The failure policy of a run, in one place: a failure (Ctrl-C included) is recorded in the run dir
    (results.json with status "failed" / "interrupted", traceback.txt) and re-raised for main() to report. It is
    not recorded where the dir belongs to another run (a refused command) or once this run's results are written."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            claim = RunDirClaim(Path(str(cfg.paths.output_dir)))
        except Exception as e:  # an interpolation that does not resolve: there is no run dir to record in
            raise ConfigError(f"paths.output_dir does not resolve ({e}); set hydra.run.dir=<dir>") from None
        try:
            return task(cfg, claim)
        except (Exception, KeyboardInterrupt) as e:
            if claim.may_record_failure(e):
                if is_main():
                    claim.keep_earlier_record()
                record_failure(cfg, e, task_overrides())
            raise

    return wrapped


@task_wrapper
def train(cfg: DictConfig, claim: RunDirClaim) -> tuple[dict[str, float], dict[str, Any]]:
    """Prepare data, train the configured model with early stopping, evaluate it and popularity, write results."""
    run = stages.open_run(cfg, claim)
    data = stages.prepare_data(run)
    prepare_s = time.perf_counter() - run.started
    split, tensors = stages.split_data(run, data)
    model, item_init = stages.build(run, data, split, tensors)
    counts = stages.item_counts(data, split)
    protocol = EvalProtocol(
        data.n_items, bool(cfg.eval.filter_seen), tuple(int(k) for k in cfg.eval.ks), int(cfg.eval.batch_size),
        selection_metric=run.selection_metric, **protocol_options(cfg.eval, data.item_side, counts),
    )  # fmt: skip
    protocol = checked_protocol(protocol, tensors.valid, tensors.test)  # real sample size, unreachable targets
    tracker = stages.start_tracker(run, data, model)
    popularity = PopularityScorer(counts)
    pop = (protocol.validation().evaluate(popularity, tensors.valid), protocol.evaluate(popularity, tensors.test))
    try:
        fitted = stages.train_model(run, model, data, tensors, protocol.validation(), tracker)
        model.eval()
        test = protocol.evaluate(model.score, tensors.test, device=run.accelerator.device)
    except BaseException:  # finish W&B as failed; the wrapper records the failure in the run dir
        tracker.finish(failed=True)
        raise
    outcome = stages.Outcome(model, item_init, fitted, test, pop, tracker, prepare_s)
    results = _results(run, data, split, tensors, protocol, outcome)
    if run.main_process:
        write_json(run.run_dir / "results.json", results)
        claim.published = True  # from here on an error (W&B, the console) never replaces these results
        publish(results, run.run_dir, tracker, model, data, (split.test, tensors.test), protocol, run.best_path)
    objects = {"model": model, "data": data, "split": split, "results": results, "popularity_test": pop[1]}
    return results["metrics"], {**objects, "test": test}


def _results(
    run: stages.Run,
    data: PreparedData,
    split: Split,
    tensors: stages.Tensors,
    protocol: EvalProtocol,
    outcome: stages.Outcome,
) -> dict[str, Any]:
    """results.json of this run (tracking.results.build_results with the run's facts)."""
    cfg, model, fitted = run.cfg, outcome.model, outcome.fitted
    facts = RunFacts(
        device=str(run.accelerator.device),
        processes=run.accelerator.num_processes,
        precision=str(run.accelerator.mixed_precision),  # what trainer.precision=auto resolved to
        compile=bool(cfg.trainer.get("compile", False)),
        parameters=count_parameters(model),
        train_windows=len(tensors.train),
        train_targets=tensors.train.n_targets,
        batches_per_epoch=min(  # trainer.limit_train_batches ends each epoch early (formerly not counted here)
            math.ceil(len(tensors.train) / run.settings.batch_size), run.settings.limit_train_batches or math.inf
        ),
        prepare_s=outcome.prepare_s,
        total_s=time.perf_counter() - run.started,
    )
    protocol_record = {
        **protocol.describe(),
        "features": tensors.features,
        "item_init": outcome.item_init,
        "max_len": int(cfg.data.max_len),
        "train_stride": cfg.data.get("train_stride"),
    }
    ours = run.best_path.exists() and (run.saved_best or run.resume is not None)  # never another run's file
    if ours and checkpoint_epoch(run.best_path) != fitted.best_epoch:  # resumed with trainer.save_checkpoint=false
        log.warning(
            "%s holds epoch %s, not the best epoch %d (this part ran with trainer.save_checkpoint=false): results.json "
            "names no checkpoint (recommend and export warn that they serve other weights than those it reported)",
            run.best_path, checkpoint_epoch(run.best_path), fitted.best_epoch,
        )  # fmt: skip
        ours = False
    extra = {
        "checkpoint": str(run.best_path.relative_to(run.run_dir)) if ours else None,
        "overrides": run.overrides,
        "wandb_group": getattr(outcome.tracker, "group", None),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    config = extra["config"]
    return build_results(config, data, split, protocol_record, fitted, outcome.test, outcome.popularity, facts, extra)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns `optimized_metric` for sweepers (Optuna).

    A failure is recorded in the job's run dir. A single run then stops: a user error as one clear line (exit 2),
    Ctrl-C as one line saying how to resume (exit 130), anything else with its traceback. Inside a multirun the
    job returns None instead, so that its siblings finish; the sweep report lists it.
    """
    try:
        check_search_runs_as_multirun()  # before the job's run dir records anything
        metrics, _ = train(cfg)
    except KeyboardInterrupt as e:
        record_job_status("interrupted", e, str(cfg.paths.output_dir))
        print(f"seqexp: interrupted; resume with: {_resume_command(cfg)}", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        refused = getattr(e, "keeps_run_dir", False)
        record_job_status("refused" if refused else "failed", e, str(cfg.paths.output_dir))
        if in_multirun():
            where = "" if refused else f" (traceback in {cfg.paths.output_dir}/traceback.txt)"
            log.error("job failed: %s: %s%s", type(e).__name__, e, where)
            return None
        line = user_error_line(e)
        if line is None:
            raise
        log.error("%s", line)
        print(f"seqexp: error: {line}", file=sys.stderr)
        sys.exit(2)
    record_job_status("completed", None, str(cfg.paths.output_dir))
    return metrics.get(str(cfg.optimized_metric))


def user_error_line(e: BaseException) -> str | None:
    """The one line for a failure the user can act on (our own errors, a full disk, a file we may not write);
    None for a bug, which keeps its traceback."""
    if isinstance(e, SeqexpError):
        return str(e)
    if isinstance(e, OSError) and e.errno in (28, 13, 30, 122):  # ENOSPC, EACCES, EROFS, EDQUOT
        where = f" writing {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}; free some space or choose another dir (hydra.run.dir, paths.cache_dir)"
    return None


def _resume_command(cfg: DictConfig) -> str:
    words = [w for w in task_overrides() if not w.startswith(("hydra.run.dir=", "trainer.resume="))]
    return " ".join(["seqexp-train", *words, f"hydra.run.dir={cfg.paths.output_dir}", "trainer.resume=true"])


if __name__ == "__main__":
    main()
