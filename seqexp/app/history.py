"""Served histories -> the model's input tensors, with per-event feature codes built exactly as training built them.

Training (seqexp.data.features) codes a behaviour as its index in the log's `behavior_vocab` + 1 and a time
gap with `time_gap_buckets` over the user's events; the history window is the most recent max_len events,
left-padded. Here the same functions run on the served events, so that a test user's history served through
`Recommender` gets the scores the test evaluation computed (tests/test_serving.py checks equality).
Events whose item the model does not know are dropped before the gaps are taken, as preparation drops
events of unknown items before training computes them. A time training drops (rule bad_timestamp: not after 1970,
or in the future) is one error naming the history, the item and the time.

Numeric times are read in the unit training read the log's times in (the checkpoint's `timestamp_unit`: a log in
milliseconds was converted to seconds, so a served history in milliseconds is too); values whose size clearly says
another unit of unix time (unix seconds, the documented TIME syntax, given to a model of a millisecond log) are read
in that unit, as `data.timestamp_unit=auto` reads a log, unless training was told the unit (then a warning).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from omegaconf import OmegaConf

from seqexp.app.events import Event
from seqexp.data.columns import FLOAT_WRITTEN, UNITS, parse_timestamps, timestamp_unit
from seqexp.data.dates import to_seconds
from seqexp.data.features import time_gap_buckets
from seqexp.data.loader import left_padded_windows
from seqexp.errors import RecommendError


@dataclass
class EncodedHistories:
    inputs: torch.Tensor  # (B, L) item indices, left-padded with 0
    features: dict[str, torch.Tensor]  # name -> (B, L) codes aligned with inputs, 0 = padding / unknown
    items: list[list[int]]  # each history's known item indices (all of them, for excluding the history)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimeUnit:
    """How training read the log's numeric timestamps: the unit, and whether `data.timestamp_unit` named it."""

    unit: str | None = None  # s, ms, us or ns; None: not recorded (an older checkpoint) or a log of date-times
    forced: bool = False  # data.timestamp_unit=<unit> in training (not auto)
    fmt: str | None = None  # data.timestamp_format training read the log's date-time text with (e.g. '%Y%m%d')

    @classmethod
    def of_checkpoint(cls, ckpt: dict[str, Any]) -> TimeUnit:
        """From the checkpoint's `timestamp_unit` (written by seqexp.app.stages) and its config's data.timestamp_unit.
        A checkpoint without the key and trained with `auto` gives unit None: served numbers are then read by their
        size, as `auto` read the log (its default), so the unit a log in milliseconds was converted from is found
        again, and unix seconds stay seconds; reading them all as seconds would put served milliseconds 1000x off."""
        cfg = OmegaConf.create(ckpt["config"])
        setting = str(OmegaConf.select(cfg, "data.timestamp_unit", default="auto"))
        forced = setting in UNITS
        fmt = OmegaConf.select(cfg, "data.timestamp_format", default=None)
        return cls(ckpt.get("timestamp_unit") or (setting if forced else None), forced, str(fmt) if fmt else None)


def as_event(value: object) -> Event:
    """An Event as it is; any other value is a bare raw item id."""
    return value if isinstance(value, Event) else Event(str(value).strip())


def encode_histories(
    histories: Sequence[Sequence[object]],
    index: dict[str, int],
    max_len: int,
    features: Sequence[str],
    behavior_vocab: list[str] | None,
    time_unit: TimeUnit | None = None,
    names: Sequence[str] | None = None,
) -> EncodedHistories:
    """Raw histories (Event or raw item id, oldest first) -> left-padded inputs and feature codes; numeric times
    are read as `time_unit` says (None: by their size). Messages call history i `history {names[i]}` (e.g.
    "history 'alice'"), else `history {i + 1}`."""
    if not histories:
        raise RecommendError("no history given: pass at least one list of item ids")
    rows, codes, warnings, bare = [], {name: [] for name in features}, [], []
    for i, history in enumerate(histories):
        n = names[i] if names else i + 1
        events = [_as_training_id(as_event(e), index) for e in history]
        kept = [e for e in events if e.item in index]
        unknown = [e.item for e in events if e.item not in index]
        if not kept:
            what = "is empty" if not events else f"has no item known to this model (unknown: {unknown[:10]})"
            raise RecommendError(f"history {n} {what}; give raw item ids as they appear in the training log")
        if unknown:
            warnings.append(f"history {n}: {len(unknown)} unknown item id(s) skipped: {unknown[:10]}")
        rows.append([index[e.item] for e in kept])
        gaps = _gap_codes(kept, n, time_unit or TimeUnit(), warnings)
        for name in features:
            values = _behavior_codes(kept, n, behavior_vocab) if name == "behavior" else gaps
            codes[name].append(values if values is not None else np.zeros(len(kept), np.int64))
        if any(_missing(name, kept) for name in features):
            bare.append(n)
    if bare:
        warnings.append(
            f"this model uses features {list(features)}, but history {', '.join(map(str, bare))} lacks behaviours "
            f"or timestamps: they read as unknown, so the scores differ from the evaluation's; give events as "
            f"ITEM:BEHAVIOR@TIME (or an --events file with behavior and timestamp)"
        )
    offsets = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    starts, ends = offsets[:-1], offsets[1:]

    def window(flat: list[np.ndarray] | list[list[int]]) -> torch.Tensor:
        return torch.from_numpy(left_padded_windows(np.concatenate(flat).astype(np.int64), starts, ends, max_len))

    return EncodedHistories(window(rows), {k: window(v) for k, v in codes.items()}, rows, warnings)


def training_id(item: str, index: dict[str, int]) -> str:
    """A served item id as training stored it: an id a float export wrote (`12.0`) that the model knows only as `12`
    is that item, as preparation rewrote `12.0` to `12` in a column of integer ids (formerly serving skipped it as
    unknown). An id the model knows as written, or one it knows in neither form, is returned as it is."""
    if item in index or not re.fullmatch(FLOAT_WRITTEN, item):
        return item
    whole = item.split(".")[0]  # as columns.normalise_float_integers rewrites it
    return whole if whole in index else item


def _as_training_id(event: Event, index: dict[str, int]) -> Event:
    item = training_id(event.item, index)
    return event if item == event.item else replace(event, item=item)


def _missing(name: str, events: list[Event]) -> bool:
    if name == "behavior":
        return any(e.behavior is None for e in events)
    return any(e.timestamp is None for e in events)


def _behavior_codes(events: list[Event], n: int | str, vocab: list[str] | None) -> np.ndarray | None:
    """Vocabulary index + 1 per event, 0 where no behaviour was given; an unknown name is an error."""
    if all(e.behavior is None for e in events):
        return None
    if vocab is None:
        raise RecommendError(
            "this run's checkpoint has no behaviour vocabulary (written by an older seqexp), so behaviour names "
            "cannot be mapped to the codes it was trained with; retrain the run, or give bare item ids"
        )
    code = {name: i + 1 for i, name in enumerate(vocab)}
    out = np.zeros(len(events), np.int64)
    for m, e in enumerate(events):
        if e.behavior is not None:
            if e.behavior not in code:
                raise RecommendError(
                    f"history {n}: behaviour {e.behavior!r} of item {e.item!r} is not one this model was trained "
                    f"with (it knows {vocab}); use one of those names"
                )
            out[m] = code[e.behavior]
    return out


def _gap_codes(events: list[Event], n: int | str, time_unit: TimeUnit, warnings: list[str]) -> np.ndarray | None:
    """time_gap buckets over the history's timestamps, exactly as training computes them per user."""
    given = [e.timestamp is not None for e in events]
    if not any(given):
        return None
    if not all(given):
        missing = [e.item for e, g in zip(events, given, strict=True) if not g][:5]
        raise RecommendError(
            f"history {n}: some events have a timestamp and some do not (without: items {missing}); the time "
            f"gaps need every event's time: give all of them, or none"
        )
    texts = [str(e.timestamp).strip() for e in events]
    formatted = _formatted(texts, events, n, time_unit.fmt)
    values, numeric = (formatted, False) if formatted is not None else parse_timestamps(pa.array(texts, pa.string()))
    for e, s in zip(events, values, strict=True):
        if not np.isfinite(s):
            raise RecommendError(
                f"history {n}: timestamp {e.timestamp!r} of item {e.item!r} is neither unix seconds nor a "
                f"date-time (e.g. 1700000000 or 2023-11-14T22:13:20)"
            )
    seconds = values  # date-times are parsed into unix seconds
    if numeric:
        unit, warning = served_unit(values, time_unit, n)
        seconds = values / UNITS[unit]
        warnings += [warning] if warning else []
    _refuse_times_training_drops(events, seconds, n)
    back = np.flatnonzero(np.diff(seconds) < 0)
    if len(back):
        e = events[int(back[0]) + 1]
        raise RecommendError(
            f"history {n}: event {int(back[0]) + 2} (item {e.item!r}, time {e.timestamp!r}) is earlier than the "
            f"event before it; list events oldest first"
        )
    return time_gap_buckets(seconds, np.array([0, len(events)], dtype=np.int64))


def _formatted(texts: list[str], events: list[Event], n: int | str, fmt: str | None) -> np.ndarray | None:
    """Unix seconds of a history's times read with the data.timestamp_format training read the log with, or None
    when there is none or no time fits it (they are then read as unix times or ISO date-times). Formerly the format
    was ignored: '20231205' under '%Y%m%d' was read as unix seconds (August 1970), and every gap came out wrong."""
    if fmt is None:
        return None
    seconds = to_seconds(np.asarray(texts, dtype=object), fmt)
    fits = np.isfinite(seconds)
    if not fits.any():
        return None
    if not fits.all():
        e = events[int(np.flatnonzero(~fits)[0])]
        raise RecommendError(
            f"history {n}: timestamp {e.timestamp!r} of item {e.item!r} does not fit data.timestamp_format={fmt!r}, "
            f"which training read the log with, while other times of the history do; give every time in that "
            f"format, or every time as unix seconds or ISO 8601"
        )
    return seconds


def _refuse_times_training_drops(events: list[Event], seconds: np.ndarray, n: int | str) -> None:
    """A time training drops as bad_timestamp (seqexp.data.clean: not after 1970, or more than a day in the future)
    is one error naming the history, the item and the time, never scored silently."""
    bad = np.flatnonzero((seconds <= 0) | (seconds > time.time() + 86400))
    if len(bad):
        e = events[int(bad[0])]
        when = "is not after 1970-01-01" if seconds[bad[0]] <= 0 else "lies in the future"
        raise RecommendError(
            f"history {n}: timestamp {e.timestamp!r} of item {e.item!r} {when}, and training drops such events "
            f"(rule bad_timestamp); times must be positive unix seconds or date-times (e.g. 1700000000 or "
            f"2023-11-14T22:13:20)"
        )


def served_unit(values: np.ndarray, time_unit: TimeUnit, n: int | str) -> tuple[str, str | None]:
    """(the unit to read one history's numeric times in, a warning or None): training's unit, unless their size
    clearly says another unit of unix time (plausible there, not in training's unit): then that unit, as
    data.timestamp_unit=auto would read them, or with a unit training was told, training's and a warning."""
    by_size, _ = timestamp_unit(values, "auto")
    trained = time_unit.unit
    if trained is None:
        return by_size, None
    if by_size == trained or not _unix_times(values / UNITS[by_size]) or _unix_times(values / UNITS[trained]):
        return trained, None
    if not time_unit.forced:
        return by_size, None
    return trained, (
        f"history {n}: timestamps read as {trained}, the unit training was told (data.timestamp_unit={trained}), "
        f"although their size says {by_size}; if they are in {by_size}, give them in {trained} or as date-times"
    )


def _unix_times(seconds: np.ndarray) -> bool:
    """Whether the values' median is a plausible unix time in seconds: after 1973-03 (1e8) and before tomorrow."""
    median = float(np.median(seconds))
    return 1e8 <= median <= time.time() + 86400
