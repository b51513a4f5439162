"""What the evaluation protocol can and cannot measure on a given split: targets eval.filter_seen hides, and
validation samples that are not samples."""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from seqexp.data.loader import EvalTensors
from seqexp.evaluation.protocol import EvalProtocol

log = logging.getLogger(__name__)
REPEAT_WARN_SHARE = 0.01  # above this share of repeated targets the ceiling on HR@K is worth a warning


def repeated_target_share(tensors: EvalTensors) -> float:
    """The share of rows whose target is among the items of the row's history (its `seen_items`): the rows that
    eval.filter_seen masks out of their own ranking, so they can never be hit."""
    m = len(tensors)
    if m == 0:
        return 0.0
    lengths = tensors.seen_offsets[1:] - tensors.seen_offsets[:-1]  # (M,)
    rows = torch.repeat_interleave(torch.arange(m), lengths)  # (S,) row of each seen item
    hit = tensors.seen_items == tensors.targets[rows]  # (S,)
    repeated = torch.zeros(m, dtype=torch.bool)
    repeated[rows[hit]] = True
    return float(repeated.double().mean())  # float64: 0.7, not 0.699999988 in results.json


def unreachable_targets(filter_seen: bool, valid: EvalTensors, test: EvalTensors) -> dict[str, float]:
    """{"valid": share, "test": share} of targets that can never be hit (0 when eval.filter_seen is off), with
    one warning when either share is above REPEAT_WARN_SHARE."""
    if not filter_seen:
        return {"valid": 0.0, "test": 0.0}
    shares = {"valid": repeated_target_share(valid), "test": repeated_target_share(test)}
    if max(shares.values()) > REPEAT_WARN_SHARE:
        log.warning(
            "%.0f%% of test targets (%.0f%% of validation targets) are items already in the user's history and can "
            "never be hit under eval.filter_seen=true (the published protocol), so every metric has that ceiling; "
            "for a repeat-consumption log set eval.filter_seen=false (recorded as protocol.unreachable_targets)",
            100 * shares["test"],
            100 * shares["valid"],
        )
    return shares


def checked_protocol(protocol: EvalProtocol, valid: EvalTensors, test: EvalTensors) -> EvalProtocol:
    """`protocol` fitted to this split: the real validation sample size, and the share of unreachable targets."""
    shares = unreachable_targets(protocol.filter_seen, valid, test)
    return replace(fit_valid_sample(protocol, len(valid)), unreachable_targets=shares)


def fit_valid_sample(protocol: EvalProtocol, n_valid: int) -> EvalProtocol:
    """The protocol with eval.sample_users dropped (null: every user) when it asks for at least the `n_valid`
    validation users there are, so results.json and the console never call every user a sample."""
    asked = protocol.valid_sample_users
    if asked is None or asked < n_valid:
        return protocol
    log.warning(
        "eval.sample_users=%d covers every one of the %d validation users: every user validates (recorded as "
        "protocol.valid_sample_users=null, the same as eval.sample_users=null)",
        asked,
        n_valid,
    )
    return replace(protocol, valid_sample_users=None)
