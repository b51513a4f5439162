"""Top-K recommendations from a trained run: `seqexp-recommend RUN_DIR "i1 i2 i3" ["i4 i5" ...]`.

A model trained with per-event features (model.features=[behavior, time_gap]) needs each event's behaviour
and time, as training saw them: `seqexp-recommend RUN_DIR "12:pv@1700000000 12:cart@1700000060"`, or
`--events FILE` (JSON/CSV, see seqexp/app/events.py). Given bare ids it warns and reads them as unknown.
Histories from an events file are named by their `history` id in warnings and output; one whose items are all
unknown to the model is skipped with a warning (unless every history is: an error).
A time is unix seconds, a date-time, or a number in the unit of the training log (e.g. milliseconds).

Python API:
    rec = Recommender.from_run("logs/train/runs/2026-11-27_12-00-00")
    rec.recommend([["12", "7", "93"]], k=10)   # -> [[Recommendation(item_id, score), ...]]
    rec.recommend([[Event("12", "pv", 1700000000), Event("7", "cart", 1700000060)]])
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import torch

from seqexp.app.events import DEFAULT_SEPARATORS, Event, parse_history, read_named_histories, split_history
from seqexp.app.history import EncodedHistories, TimeUnit, encode_histories, training_id
from seqexp.app.trained_run import load_run, printed_warnings
from seqexp.errors import RecommendError, SeqexpError
from seqexp.evaluation.metrics import mask_scores
from seqexp.model.recommender import SequenceRecommender


@dataclass(frozen=True)
class Recommendation:
    item_id: str  # raw item id, as in the log
    score: float  # the model's score (higher is better); comparable within one history only


class Recommender:
    def __init__(
        self,
        model: SequenceRecommender,
        item_ids: list[str],
        max_len: int,
        behavior_vocab: list[str] | None = None,
        time_unit: TimeUnit | None = None,
    ) -> None:
        self.model = model.eval()
        self.item_ids = item_ids  # index i + 1 <-> item_ids[i]
        self.index = {raw: i + 1 for i, raw in enumerate(item_ids)}
        self.max_len = max_len
        self.behavior_vocab = behavior_vocab  # behaviour name <-> code - 1, as in training (None: not recorded)
        self.time_unit = time_unit or TimeUnit()  # how training read the log's numeric times (None: by their size)

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu") -> Recommender:
        """The run's best checkpoint; warns when the run did not finish (see seqexp/app/trained_run.py)."""
        ckpt, model = load_run(Path(run_dir), "seqexp-recommend", RecommendError)
        vocab, unit = ckpt.get("behavior_vocab"), TimeUnit.of_checkpoint(ckpt)
        return cls(model.to(device), list(ckpt["item_ids"]), int(ckpt["max_len"]), vocab, unit)

    def encode(self, histories: Sequence[Sequence[object]], names: Sequence[str] | None = None) -> EncodedHistories:
        """Histories of Events (or bare raw item ids) -> model inputs with the features training built.
        Messages about skipped items and missing features come back in `.warnings`, naming history i
        `history {names[i]}` (default: its number from 1)."""
        return encode_histories(
            histories, self.index, self.max_len, self.model.features, self.behavior_vocab, self.time_unit, names
        )

    @torch.no_grad()
    def scores(self, histories: Sequence[Sequence[object]]) -> torch.Tensor:
        """(B, N + 1) raw scores (column i <-> item_ids[i - 1], column 0 padding), nothing masked: exactly the
        scores the evaluation computes for the same histories and events."""
        encoded = self.encode(histories)
        _warn(encoded.warnings)
        return self._score(encoded)

    def _score(self, encoded: EncodedHistories) -> torch.Tensor:
        device = next(self.model.parameters()).device
        features = {k: v.to(device) for k, v in encoded.features.items()}
        return self.model.score(encoded.inputs.to(device), features or None).float()  # (B, N + 1)

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[object]],
        k: int = 10,
        exclude_history: bool = True,
        names: Sequence[str] | None = None,
    ) -> list[list[Recommendation]]:
        """Top-k items for each history (oldest event first): each event an `Event(item, behavior, timestamp)`
        or a bare raw item id. Unknown item ids are reported with a warning and skipped; so is a feature
        model given events without behaviour or time. A history that is empty, or has no known item, is
        an error. Histories longer than the model's max_len keep their most recent max_len events. Messages name
        history i `history {names[i]}` (default: its number from 1)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise RecommendError(f"k={k!r}: the number of items to recommend must be a positive integer")
        encoded = self.encode(histories, names)
        _warn(encoded.warnings)
        scores = self._score(encoded)
        device = scores.device
        if exclude_history:
            rows = torch.cat([torch.full((len(e),), r) for r, e in enumerate(encoded.items)])
            cols = torch.tensor([i for e in encoded.items for i in e])
            mask_scores(scores, rows.to(device), cols.to(device))
        else:
            mask_scores(scores)
        top = scores.topk(min(k, self.model.n_items), dim=1)
        return [
            [
                Recommendation(self.item_ids[i - 1], float(s))
                for s, i in zip(vals.tolist(), idx.tolist(), strict=True)
                if s != float("-inf")
            ]
            for vals, idx in zip(top.values, top.indices, strict=True)
        ]


def _warn(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other seqexp error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="seqexp-recommend",
        description=__doc__.splitlines()[0],
        epilog="event syntax and events files: see seqexp/app/events.py",
    )
    parser.add_argument("run_dir", help="a run folder written by seqexp-train (or its checkpoints/best.pt)")
    parser.add_argument(
        "histories",
        nargs="*",
        help="one history per argument, oldest event first: events ITEM[:BEHAVIOR][@TIME] (e.g. 12:cart@1700000000) "
        "separated by spaces or commas (or by --sep)",
    )
    parser.add_argument("--events", metavar="FILE", help="histories from a .json, .csv or .tsv events file")
    parser.add_argument("--sep", help="separator between the events of a history argument (default: spaces, commas)")
    parser.add_argument("--plain", action="store_true", help="tokens are whole item ids (ids containing ':' or '@')")
    parser.add_argument("-k", type=int, default=10, help="how many items to recommend (default 10)")
    parser.add_argument("--include-history", action="store_true", help="allow items of the history in the result")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print JSON instead of a table: for history arguments, a list with one list of {"item_id", "score"} '
        'per history; with --events, a list of {"history": ID, "items": [{"item_id", "score"}, ...]}, ID being the '
        'file\'s history value (its number in the file where the file names none; "arg N" for an argument)',
    )
    return parser


@dataclass(frozen=True)
class Batch:
    """The histories to serve, in order, how messages name each, and (with --events) the ids the output gives."""

    histories: list[list[Event]]
    names: list[str]  # messages and the table say `history {name}`: "1", "'alice'", "2 of events.json"
    ids: list[str | int] | None  # the json "history" keys; None (history arguments only): a bare list per history


def _histories(args: argparse.Namespace, rec: Recommender) -> Batch:
    """The command line's histories (then the events file's), refusing tokens that read two ways."""
    histories = []
    spaced = [i for i in rec.item_ids if DEFAULT_SEPARATORS.search(i)] if args.sep is None else []
    for n, text in enumerate(args.histories, start=1):
        clash = next((i for i in spaced if i in text), None)
        if clash is not None:
            raise RecommendError(
                f"history {n}: item id {clash!r} contains a space or comma, the default event separator; "
                f"separate events with --sep (e.g. --sep ';') or use an --events file"
            )
        for token in split_history(text, args.sep) if not args.plain else ():
            if (":" in token or "@" in token) and token in rec.index:
                raise RecommendError(
                    f"history {n}: token {token!r} is an item id of this model and also reads as "
                    f"ITEM[:BEHAVIOR][@TIME]; pass --plain (tokens are whole item ids) or use an --events file"
                )
        histories.append(parse_history(text, f"history {n}", args.sep, args.plain))
    names = [str(n) for n in range(1, len(histories) + 1)]
    if not args.events:
        return Batch(histories, names, None)
    path = Path(args.events)
    ids: list[str | int] = [f"arg {n}" for n in range(1, len(histories) + 1)]
    for key, events in read_named_histories(path):
        histories.append(events)
        ids.append(key)
        names.append(repr(key) if isinstance(key, str) else f"{key} of {path.name}")
    return _skip_unknown(Batch(histories, names, ids), rec, len(args.histories), path)


def _skip_unknown(batch: Batch, rec: Recommender, first: int, path: Path) -> Batch:
    """Without the events file's histories (from index `first`) whose items are all unknown to the model, with one
    warning counting them and naming up to 10; when every history is such, all are kept: serving them is the error
    naming the first."""
    unknown = {
        i
        for i in range(first, len(batch.histories))
        if batch.histories[i] and not any(training_id(e.item, rec.index) in rec.index for e in batch.histories[i])
    }
    if not unknown or len(unknown) == len(batch.histories):
        return batch
    ids = batch.ids or []
    shown = [ids[i] for i in sorted(unknown)[:10]]
    more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    warnings.warn(
        f"events file {path}: {len(unknown)} of {len(batch.histories) - first} histories have no item known to this "
        f"model and are skipped: {shown}{more}; give raw item ids as they appear in the training log",
        UserWarning,
        stacklevel=2,
    )
    keep = [i for i in range(len(batch.histories)) if i not in unknown]
    return Batch([batch.histories[i] for i in keep], [batch.names[i] for i in keep], [ids[i] for i in keep])


def cli(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.k < 1:
            raise RecommendError(f"-k {args.k}: the number of items to recommend must be a positive integer")
        if not args.histories and not args.events:
            raise RecommendError("no history given: pass item ids as arguments, or --events FILE")
        with printed_warnings("seqexp-recommend"):
            rec = Recommender.from_run(args.run_dir)
            batch = _histories(args, rec)
            results = rec.recommend(
                batch.histories, k=args.k, exclude_history=not args.include_history, names=batch.names
            )
    except SeqexpError as e:
        print(f"seqexp-recommend: error: {e}", file=sys.stderr)
        return 2
    _print(batch, results, args.json)
    return 0


def _print(batch: Batch, results: list[list[Recommendation]], as_json: bool) -> None:
    """A table, or JSON: a list per history (arguments only) or {"history": id, "items": [...]} per history."""
    if as_json:
        lists = [[{"item_id": r.item_id, "score": r.score} for r in rs] for rs in results]
        keyed = None if batch.ids is None else zip(batch.ids, lists, strict=True)
        print(json.dumps(lists if keyed is None else [{"history": h, "items": items} for h, items in keyed]))
        return
    for name, history, rs in zip(batch.names, batch.histories, results, strict=True):
        print(f"history {name}: {' '.join(e.item for e in history)}")
        for rank, r in enumerate(rs, start=1):
            print(f"  {rank:>3}. {r.item_id:<20} {r.score:.4f}")


if __name__ == "__main__":
    sys.exit(cli())
