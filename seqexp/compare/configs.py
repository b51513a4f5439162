"""Runs whose recorded configs differ are told apart even when their overrides match.

A row of the leaderboard is (data, model, variant), and the variant is the overrides that set a run apart. Two runs
with the same overrides can still have run other settings: a model YAML copied under a new file name that keeps the
card's `name:` (README, "Add an encoder"), or the card defaults of another seqexp version. Formerly they were averaged
as seeds of one row (a 32-dim and a 128-dim LSTM as "lstm", 3 seeds), or one was dropped as a repeated seed. Here the
settings every such run records, and in which they differ, join their variant (`model.embedding_dim=32`).
Keys only some runs record (added in a later version) are not compared: their absence says nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

# The recorded settings that define what a run computes: those a resume must match (seqexp/app/resume.py
# IDENTITY_KEYS, without the seed; tests/test_compare_trust.py keeps the two lists equal), not imported from there,
# which would load torch into seqexp-compare. Everything else (paths, logging, trainer budgets that --same-variant
# merges, model.loss_auto below its threshold, pretrained.* of a run without pretrained vectors) never splits a row.
DEFINING = (
    "model", "split", "eval", "optimized_metric", "trainer.selection_window", "trainer.eval_every", "data.max_len",
    "data.train_stride", "trainer.limit_train_batches",
)  # fmt: skip
NOT_DEFINING = ("model.loss_auto", "model.loss.fused", "eval.batch_size", "eval.item_chunk")  # same numbers either way


def flat_config(config: Any) -> dict[str, str]:
    """results.json's `config` -> {dotted key: value as JSON text} of the DEFINING settings (with pretrained.* when
    the run's item vectors came from them, and data.item_side.* but its file when from text); {} when none."""
    if not isinstance(config, Mapping):
        return {}
    model = config.get("model")
    item_init = str(model.get("item_init", "random")) if isinstance(model, Mapping) else "random"
    defining = (
        *DEFINING,
        *(("pretrained",) if item_init != "random" else ()),
        *(("data.item_side",) if item_init == "text" else ()),
    )
    out: dict[str, str] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, key + ".")
            elif _under(key, defining) and not _under(key, NOT_DEFINING) and key != "data.item_side.file":
                out[key] = json.dumps(v, sort_keys=True, default=str)

    walk(config, "")
    return out


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def label_configs(runs: list[Any]) -> None:
    """Set `config_label` on each completed run: the defining settings in which it differs from runs of the same
    data, model and recorded overrides ("" when none differ). Runs whose overrides differ are told apart by them
    (or merged by --same-variant), not here: the settings those overrides reach differ too, and are theirs."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in runs:  # runs of one command line (as recorded: --same-variant has not merged anything here)
        if r.status == "completed":
            groups[(r.data, r.fingerprint, r.model, r.recorded_overrides)].append(r)
    for group in groups.values():
        recorded = [r for r in group if r.config]
        if len(recorded) < 2:
            continue
        common = set.intersection(*(set(r.config) for r in recorded))
        differing = sorted(k for k in common if len({r.config[k] for r in recorded}) > 1)
        for r in group if differing else ():
            r.config_label = (
                " ".join(f"{k}={_shown(r.config[k])}" for k in differing) if r.config else "(config not recorded)"
            )


def _shown(value: str) -> str:
    """A JSON text as an override would write it (strings without their quotes)."""
    parsed = json.loads(value)
    return parsed if isinstance(parsed, str) else "null" if parsed is None else value
