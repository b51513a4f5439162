"""Rank 0's last stage, after results.json is written: the same payload in W&B, example top-K lists, the
checkpoint artifact (when the tracker is asked to), and the console table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqexp.data.loader import EvalTensors
from seqexp.data.sequences import PreparedData
from seqexp.data.splits import EvalSet
from seqexp.evaluation.protocol import EvalProtocol
from seqexp.model.recommender import SequenceRecommender
from seqexp.tracking.console import print_metrics_table
from seqexp.tracking.top_k_table import top_k_examples
from seqexp.tracking.trackers import NullTracker


def publish(
    results: dict[str, Any],
    run_dir: Path,
    tracker: NullTracker,
    model: SequenceRecommender,
    data: PreparedData,
    test_set: tuple[EvalSet, EvalTensors],
    protocol: EvalProtocol,
    checkpoint: Path,
) -> None:
    """Report a finished run whose results.json is written (call on rank 0 only)."""
    # the same payload (minus config and history) in W&B, so that `seqexp-compare --from-wandb` can pair runs
    tracker.summary({"results": {k: v for k, v in results.items() if k not in ("config", "history", "versions")}})
    tracker.summary(
        {
            **results["metrics"],
            **{f"popularity/{k}": v for k, v in results["popularity"].items()},
            "best_epoch": results["training"]["best_epoch"],
            **{f"throughput/{k}": v for k, v in results["throughput"].items()},
        }
    )
    columns, rows = top_k_examples(model, data, *test_set, protocol.filter_seen)
    tracker.log_table("test/top_k_examples", columns, rows)
    name = f"model-{results['model']}-{results['data']}-s{results['seed']}"
    if checkpoint.exists():
        tracker.log_checkpoint_artifact(checkpoint, name=name)
    tracker.finish()
    training, timings = results["training"], results["timings"]
    split_metrics = {
        part: {k.split("/", 1)[1]: v for k, v in source.items() if k.startswith(part + "/")}
        for part, source in (("valid", results["metrics"]), ("test", results["metrics"]))
    }
    pop = {part: {k.split("/", 1)[1]: v for k, v in results["popularity"].items() if k.startswith(part + "/")}
           for part in ("valid", "test")}  # fmt: skip
    print_metrics_table(
        results["model"],
        split_metrics["valid"],
        split_metrics["test"],
        pop["valid"],
        pop["test"],
        protocol.ks,
        valid_users=results["protocol"].get("valid_sample_users"),
        footer=f"{training['epochs_run']} epochs (best {training['best_epoch']}), {timings['total_s']:.1f} s total, "
        f"{results['throughput']['train_sequences_per_s']:.0f} training sequences/s; run dir {run_dir}",
    )
