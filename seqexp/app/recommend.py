"""Top-K recommendations from a trained run: `seqexp-recommend RUN_DIR "i1 i2 i3" ["i4 i5" ...]`.

Python API:
    rec = Recommender.from_run("logs/train/runs/2026-11-27_12-00-00")
    rec.recommend([["12", "7", "93"]], k=10)   # -> [[Recommendation(item_id, score), ...]]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seqexp.errors import RecommendError, SeqexpError
from seqexp.evaluation.metrics import mask_scores
from seqexp.model.recommender import SequenceRecommender, restore_model
from seqexp.training.checkpoint import load_checkpoint

CHECKPOINT = Path("checkpoints") / "best.pt"


@dataclass(frozen=True)
class Recommendation:
    item_id: str  # raw item id, as in the log
    score: float  # the model's score (higher is better); comparable within one history only


class Recommender:
    def __init__(self, model: SequenceRecommender, item_ids: list[str], max_len: int) -> None:
        self.model = model.eval()
        self.item_ids = item_ids  # index i + 1 <-> item_ids[i]
        self.index = {raw: i + 1 for i, raw in enumerate(item_ids)}
        self.max_len = max_len

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu") -> Recommender:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RecommendError(f"run dir {run_dir} does not exist; pass the folder a `seqexp-train` run wrote")
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        model = restore_model(ckpt)
        return cls(model.to(device), list(ckpt["item_ids"]), int(ckpt["max_len"]))

    def encode_history(self, history: Sequence[object]) -> tuple[list[int], list[str]]:
        """Raw ids -> item indices; returns (known indices, unknown raw ids)."""
        known, unknown = [], []
        for raw in history:
            idx = self.index.get(str(raw).strip())
            if idx is None:
                unknown.append(str(raw))
            else:
                known.append(idx)
        return known, unknown

    @torch.no_grad()
    def recommend(
        self, histories: Sequence[Sequence[object]], k: int = 10, exclude_history: bool = True
    ) -> list[list[Recommendation]]:
        """Top-k items for each history (oldest event first). Unknown item ids are reported with a warning
        and skipped; a history that is empty, or has no known item, is an error. Histories longer than
        the model's max_len keep their most recent max_len events."""
        if not histories:
            raise RecommendError("no history given: pass at least one list of item ids")
        encoded = []
        for n, history in enumerate(histories):
            known, unknown = self.encode_history(history)
            if unknown and known:
                warnings.warn(
                    f"history {n + 1}: {len(unknown)} unknown item id(s) skipped: {unknown[:10]}", stacklevel=2
                )
            if not known:
                what = "is empty" if not history else f"has no item known to this model (unknown: {unknown[:10]})"
                raise RecommendError(f"history {n + 1} {what}; give raw item ids as they appear in the training log")
            encoded.append(known)
        device = next(self.model.parameters()).device
        inputs = torch.zeros(len(encoded), self.max_len, dtype=torch.long)  # (B, L), left-padded
        for r, items in enumerate(encoded):
            items = items[-self.max_len :]
            inputs[r, self.max_len - len(items) :] = torch.tensor(items)
        scores = self.model.score(inputs.to(device)).float()  # (B, N + 1)
        if exclude_history:
            rows = torch.cat([torch.full((len(e),), r) for r, e in enumerate(encoded)])
            cols = torch.tensor([i for e in encoded for i in e])
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


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqexp-recommend", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder written by seqexp-train")
    parser.add_argument(
        "histories",
        nargs="+",
        help="one history per argument: raw item ids, oldest first, separated by spaces or commas",
    )
    parser.add_argument("-k", type=int, default=10, help="how many items to recommend (default 10)")
    parser.add_argument("--include-history", action="store_true", help="allow items of the history in the result")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    histories = [h.replace(",", " ").split() for h in args.histories]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = Recommender.from_run(args.run_dir)
            results = rec.recommend(histories, k=args.k, exclude_history=not args.include_history)
        for w in caught:
            print(f"seqexp-recommend: warning: {w.message}", file=sys.stderr)
    except SeqexpError as e:
        print(f"seqexp-recommend: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([[{"item_id": r.item_id, "score": r.score} for r in rs] for rs in results]))
        return 0
    for n, (history, rs) in enumerate(zip(histories, results, strict=True), start=1):
        print(f"history {n}: {' '.join(history)}")
        for rank, r in enumerate(rs, start=1):
            print(f"  {rank:>3}. {r.item_id:<20} {r.score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
