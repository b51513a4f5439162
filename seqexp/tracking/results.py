"""results.json: everything a comparison needs (written with seqexp.io.write_json)."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from seqexp.data.sequences import PreparedData
from seqexp.data.splits import Split
from seqexp.evaluation.beyond_accuracy import PER_USER
from seqexp.evaluation.protocol import EvalResult
from seqexp.model.loss_choice import loss_choice

PACKAGES = (
    "seqexp",
    "torch",
    "transformers",
    "accelerate",
    "hydra-core",
    "omegaconf",
    "wandb",
    "numpy",
    "pandas",
    "pyarrow",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class RunFacts:
    """How a run was executed: recorded under results.json's "training" and "timings" keys."""

    device: str
    processes: int  # > 1 under torchrun / SLURM tasks (DDP)
    precision: str
    compile: bool
    parameters: int
    train_windows: int
    train_targets: int
    batches_per_epoch: int
    prepare_s: float
    total_s: float


def build_results(
    config: dict[str, Any],
    data: PreparedData,
    split: Split,
    protocol: dict[str, Any],
    fitted: Any,  # seqexp.training.state.FitResult (a higher layer: duck-typed here)
    test: EvalResult,
    popularity: tuple[EvalResult, EvalResult],
    facts: RunFacts,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """results.json as a pure function of what the run produced; `extra` adds keys such as checkpoint, overrides,
    wandb_group (and replaces none of the computed ones)."""
    metrics = {f"valid/{k}": v for k, v in fitted.best_valid.items()}
    metrics.update({f"test/{k}": v for k, v in test.metrics.items()})
    pop_valid, pop_test = popularity
    results = {
        "status": "completed",
        "model": str(config["model"]["name"]),
        "data": str(config["data"]["name"]),
        "seed": int(config["seed"]),
        "metrics": metrics,
        "popularity": {
            **{f"valid/{k}": v for k, v in pop_valid.metrics.items()},
            **{f"test/{k}": v for k, v in pop_test.metrics.items()},
        },
        "per_user": {
            "metric": "test/ndcg@10",
            "user_ids": data.user_ids[test.users].tolist(),
            "values": test.per_user["ndcg@10"].tolist(),
        },
        # the per-user beyond-accuracy values, in the order of per_user.user_ids (seqexp-compare --paired-metric)
        "per_user_metrics": {f"test/{k}": v.tolist() for k, v in test.per_user.items() if k.split("@")[0] in PER_USER},
        "protocol": {
            "split": split.name,
            "split_config": config["split"],
            "eval_cases": {"valid": len(split.valid), "test": len(split.test)},
            **protocol,
        },
        "data_fingerprint": data.fingerprint,
        "data_summary": {
            "users": data.n_users,
            "items": data.n_items,
            "events": data.n_events,
            "source": data.report.source,
            "file_sha256": data.report.file_sha256,
        },
        **_run_sections(fitted, test, facts, loss_choice(config["model"], data.n_items)[1]),
        "history": fitted.history,
        "versions": package_versions(),
    }
    return {**results, **{k: v for k, v in extra.items() if k not in results}}


def _run_sections(fitted: Any, test: EvalResult, facts: RunFacts, loss: dict[str, str]) -> dict[str, Any]:
    """results.json's "training", "timings" and "throughput": how the run went and how fast."""
    return {
        "training": {
            "best_epoch": fitted.best_epoch,
            "epochs_run": fitted.epochs_run,
            "stopped_early": fitted.stopped_early,
            "out_of_time": fitted.out_of_time,
            "lr_decay_epochs": fitted.lr_decay_epochs,  # epochs after which trainer.plateau_lr_factor applied
            **{k: v for k, v in asdict(facts).items() if not k.endswith("_s")},
            "loss": loss,  # the training loss's class and whether model.loss_auto chose it
        },
        "timings": {
            "prepare_s": facts.prepare_s,
            "train_s": fitted.train_seconds,
            "valid_eval_s": fitted.eval_seconds,
            "test_eval_s": test.seconds,
            "total_s": facts.total_s,
        },
        "throughput": {
            "train_sequences_per_s": fitted.sequences_per_second,
            "train_targets_per_s": fitted.targets_per_second,
            "eval_users_per_s": test.users_per_second,
        },
    }
