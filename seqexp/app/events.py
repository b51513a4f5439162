"""Events for serving: an item with, optionally, its behaviour and time, as training saw each event.

A feature model (`model.features=[behavior, time_gap]`) scores a history from its items *and* their
behaviours and times; given bare item ids it reads every behaviour and gap as unknown and its scores
differ from the evaluation's. So the command line and event files carry all three:

    token syntax   ITEM[:BEHAVIOR][@TIME]   e.g. 12   12:cart   12@1700000000   12:cart@2023-11-14T22:13:20
                   TIME: unix seconds or a date-time (parsed as training parsed the log's timestamps)
    events file    --events FILE.json: [[event, ...], ...], one list per history; an event is an item id
                   or {"item": ..., "behavior": ..., "timestamp": ...}
                   --events FILE.csv / .tsv: columns item (required), behavior, timestamp, history
                   (optional; rows with the same history value form one history, in file order, and
                   `seqexp-recommend` names the history by that value in its warnings and output)

The token syntax is unambiguous by construction: the time follows the first '@' and the behaviour the
single ':' before it; a token with a second '@', or two ':' before the '@', is an error. Item ids that
contain ':' or '@' are given with `--plain` (tokens are whole item ids) or in an events file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from seqexp.errors import RecommendError

DEFAULT_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Event:
    """One event of a history: a raw item id (as in the training log), its behaviour name and its time."""

    item: str
    behavior: str | None = None
    timestamp: str | float | None = None  # unix seconds, or a date-time string


def split_history(text: str, sep: str | None = None) -> list[str]:
    """One command-line history -> its tokens: split on `sep` when given, else on whitespace and commas."""
    parts = text.split(sep) if sep else DEFAULT_SEPARATORS.split(text)
    return [p.strip() for p in parts if p.strip()]


def parse_token(token: str, where: str) -> Event:
    """`ITEM[:BEHAVIOR][@TIME]` -> Event; an ambiguous or incomplete token is a RecommendError naming it."""
    head, at, time = token.partition("@")
    item, colon, behavior = head.partition(":")
    fix = "item ids that contain ':' or '@' need --plain (tokens are whole item ids) or an --events file"
    if "@" in time or ":" in behavior:
        raise RecommendError(f"{where}: token {token!r} is ambiguous (ITEM[:BEHAVIOR][@TIME] expected); {fix}")
    if not item or (colon and not behavior) or (at and not time.strip()):
        raise RecommendError(
            f"{where}: token {token!r} has an empty item, behaviour or time (ITEM[:BEHAVIOR][@TIME] expected); {fix}"
        )
    return Event(item.strip(), behavior.strip() if colon else None, time.strip() if at else None)


def parse_history(text: str, where: str, sep: str | None = None, plain: bool = False) -> list[Event]:
    """A command-line history argument -> its events (oldest first)."""
    tokens = split_history(text, sep)
    if plain:
        return [Event(t) for t in tokens]
    return [parse_token(t, f"{where}, event {n}") for n, t in enumerate(tokens, start=1)]


def read_events_file(path: str | Path) -> list[list[Event]]:
    """A JSON or CSV/TSV events file (see the module docstring) -> histories of events."""
    return [events for _, events in read_named_histories(path)]


def read_named_histories(path: str | Path) -> list[tuple[str | int, list[Event]]]:
    """An events file -> (id, events) per history, in file order: the id is the CSV/TSV `history` value, or the
    history's number in the file (from 1) where the file names none (JSON, or no `history` column)."""
    path = Path(path)
    if not path.is_file():
        raise RecommendError(f"events file {path} does not exist; pass a .json, .csv or .tsv file of events")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return _read_table(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    raise RecommendError(f"events file {path}: unknown format {path.suffix!r}; use .json, .csv or .tsv")


def _read_json(path: Path) -> list[tuple[str | int, list[Event]]]:
    try:
        payload = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise RecommendError(f"events file {path} is not valid JSON ({e}); see `seqexp-recommend --help`") from e
    shape = 'a list of histories, each a list of item ids or {"item": ..., "behavior": ..., "timestamp": ...}'
    if not isinstance(payload, list) or not all(isinstance(h, list) for h in payload):
        raise RecommendError(f"events file {path}: expected {shape}")
    return [(h, [_json_event(e, path, h, n) for n, e in enumerate(hist, 1)]) for h, hist in enumerate(payload, 1)]


def _json_event(value: object, path: Path, history: int, n: int) -> Event:
    where = f"events file {path}, history {history}, event {n}"
    if not isinstance(value, dict):
        return Event(_json_item(value, where, f'{value!r} is neither an item id nor an object with an "item" key'))
    if "item" not in value:
        raise RecommendError(f'{where}: {value!r} is neither an item id nor an object with an "item" key')
    extra = set(value) - {"item", "behavior", "timestamp"}
    if extra:
        raise RecommendError(f"{where}: unknown key(s) {sorted(extra)}; the keys are item, behavior, timestamp")
    item = _json_item(value["item"], where, f'"item" {value["item"]!r} is not an item id')
    behavior, ts = value.get("behavior"), value.get("timestamp")
    if isinstance(behavior, bool) or not isinstance(behavior, (str, int, type(None))):
        raise RecommendError(f'{where}: "behavior" {behavior!r} is not a behaviour name; give a string, e.g. "cart"')
    if isinstance(ts, bool) or not isinstance(ts, (str, int, float, type(None))):
        raise RecommendError(f"{where}: timestamp {ts!r} is neither unix seconds nor a date-time string")
    return Event(item, None if behavior is None else str(behavior).strip() or None, ts)


def _json_item(value: object, where: str, problem: str) -> str:
    """A JSON item id -> its text: a non-empty string, a whole number, or a whole float (`12.0`, as a float export
    writes an integer id; read as training read such ids). Anything else (null, true, 1.5, a list) is refused:
    formerly `null` was served as the unknown item "None", with only a warning."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise RecommendError(f'{where}: {problem}; give the raw item id as a string or a whole number, e.g. "12"')


def _read_table(path: Path, sep: str) -> list[tuple[str | int, list[Event]]]:
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        kind = "TSV" if sep == "\t" else "CSV"
        raise RecommendError(f"events file {path} does not parse as {kind}: {e}") from e
    columns = {c.strip(): c for c in table.columns}
    unknown = set(columns) - {"item", "behavior", "timestamp", "history"}
    if "item" not in columns or unknown:
        raise RecommendError(
            f"events file {path} has columns {list(columns)}; it needs an `item` column and may have "
            f"`behavior`, `timestamp` and `history` (nothing else)"
        )
    histories: dict[str, list[Event]] = {}
    for row, rec in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
        item = rec[columns["item"]].strip()
        if not item:
            raise RecommendError(f"events file {path}, row {row}: the item is empty")
        behavior = rec[columns["behavior"]].strip() if "behavior" in columns else ""
        ts = rec[columns["timestamp"]].strip() if "timestamp" in columns else ""
        key = rec[columns["history"]].strip() if "history" in columns else ""
        histories.setdefault(key, []).append(Event(item, behavior or None, ts or None))
    if not histories:
        raise RecommendError(f"events file {path} has no events")
    if "history" not in columns:
        return [(1, histories[""])]
    return list(histories.items())
