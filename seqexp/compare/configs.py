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

from seqexp.evaluation.protocol import NO_RESULT_CHANGE

# recorded settings that never tell two runs of a row apart: the seed (a row's runs differ in it), where files lie
# (another machine's paths; the data fingerprint stands for the data), and the settings that change no number
NOT_COMPARED = (
    "seed", "task_name", "data.path", "data.filename", "data.item_side.file", "pretrained.text.model_dir",
    *NO_RESULT_CHANGE,
)  # fmt: skip


def flat_config(config: Any) -> dict[str, str]:
    """results.json's `config` -> {dotted key: value as JSON text}, without NOT_COMPARED; {} when there is none."""
    if not isinstance(config, Mapping):
        return {}
    out: dict[str, str] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, key + ".")
            elif not key.startswith(NOT_COMPARED):
                out[key] = json.dumps(v, sort_keys=True, default=str)

    walk(config, "")
    return out


def label_configs(runs: list[Any]) -> None:
    """Set `config_label` on each completed run: the settings in which it differs from runs of the same data,
    model and overrides ("" when none differ)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in runs:
        if r.status == "completed":
            groups[(r.data, r.fingerprint, r.model, tuple(sorted(r.overrides)))].append(r)
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
