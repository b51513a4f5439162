"""Top-K recommendations from a trained run: `seqexp-recommend RUN_DIR "i1 i2 i3" ["i4 i5" ...]`.

A model trained with per-event features (model.features=[behavior, time_gap]) needs each event's behaviour
and time, as training saw them: `seqexp-recommend RUN_DIR "12:pv@1700000000 12:cart@1700000060"`, or
`--events FILE` (JSON/CSV, see seqexp/app/events.py). Given bare ids it warns and reads them as unknown.
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

from seqexp.app.events import DEFAULT_SEPARATORS, Event, parse_history, read_events_file, split_history
from seqexp.app.history import EncodedHistories, TimeUnit, encode_histories
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

    def encode(self, histories: Sequence[Sequence[object]]) -> EncodedHistories:
        """Histories of Events (or bare raw item ids) -> model inputs with the features training built.
        Messages about skipped items and missing features come back in `.warnings`."""
        return encode_histories(
            histories, self.index, self.max_len, self.model.features, self.behavior_vocab, self.time_unit
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
        self, histories: Sequence[Sequence[object]], k: int = 10, exclude_history: bool = True
    ) -> list[list[Recommendation]]:
        """Top-k items for each history (oldest event first): each event an `Event(item, behavior, timestamp)`
        or a bare raw item id. Unknown item ids are reported with a warning and skipped; so is a feature
        model given events without behaviour or time. A history that is empty, or has no known item, is
        an error. Histories longer than the model's max_len keep their most recent max_len events."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise RecommendError(f"k={k!r}: the number of items to recommend must be a positive integer")
        encoded = self.encode(histories)
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
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _histories(args: argparse.Namespace, rec: Recommender) -> list[list[Event]]:
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
    if args.events:
        histories += read_events_file(args.events)
    return histories


def cli(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.k < 1:
            raise RecommendError(f"-k {args.k}: the number of items to recommend must be a positive integer")
        if not args.histories and not args.events:
            raise RecommendError("no history given: pass item ids as arguments, or --events FILE")
        with printed_warnings("seqexp-recommend"):
            rec = Recommender.from_run(args.run_dir)
            histories = _histories(args, rec)
            results = rec.recommend(histories, k=args.k, exclude_history=not args.include_history)
    except SeqexpError as e:
        print(f"seqexp-recommend: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([[{"item_id": r.item_id, "score": r.score} for r in rs] for rs in results]))
        return 0
    for n, (history, rs) in enumerate(zip(histories, results, strict=True), start=1):
        print(f"history {n}: {' '.join(e.item for e in history)}")
        for rank, r in enumerate(rs, start=1):
            print(f"  {rank:>3}. {r.item_id:<20} {r.score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
