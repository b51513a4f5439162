"""What a run reports: W&B trackers, results.json, console tables, failure records, the sweep report."""

from seqexp.tracking.trackers import NullTracker, WandbTracker, flatten

__all__ = ["NullTracker", "WandbTracker", "flatten"]
