"""Write a Taobao UserBehavior-like CSV of any size, streamed in chunks with bounded memory, seeded.

    python benchmarks/make_taobao_like.py --events 10_000_000 --items 4_162_024 --out /tmp/taobao_10m.csv
    [--users N] [--categories C] [--seed 0] [--chunk-events 2_000_000] [--cover auto|on|off]

Same format as Alibaba's UserBehavior.csv (Tianchi; Zhu et al., "Learning Tree-based Deep Model for
Recommender Systems", KDD 2018): no header, `user_id,item_id,category_id,behavior_type,timestamp`, behaviour
in pv / cart / fav / buy, unix seconds within 2017-11-25..2017-12-03 (China time), each user's rows together
and in time order. `data=taobao data.path=<file>` reads it unchanged.

What it imitates, measured on the three public slices in ../shared/data/taobao-userbehavior
(benchmarks/results/scale.md compares a real slice with a generated file of the same size):
- item popularity: Zipf-Mandelbrot over the catalogue (rank r drawn with weight (r + q)^-ZIPF_S); every item
  at least once when events >= items (`--cover auto`), as in the real file, whose catalogue is its items;
- categories: each item has one category, category sizes Zipf (CAT_S); within a session an event stays in the
  previous event's category with probability STAY_CATEGORY (real: 46-50% of consecutive in-session events);
- users: events per user log-normal (sigma USER_SIGMA, mean events / users; real mean 101.4);
- sessions: a gap between a user's consecutive events is longer than 30 min with probability SESSION_BREAK
  (real 0.16); in-session gaps log-normal (median ~60 s), gaps between sessions log-normal (median ~6 h),
  a user's history squeezed into the 9 days when longer, then a time warp gives the real hour-of-day profile;
- re-visits: REPEAT of the events re-touch an item of the same user's history, LAG back (real: 21-23%, lag
  median 5, never the immediately preceding event); cart / fav / buy depend on it (buys 4x likelier on a
  re-visited item), and the overall mix is the real file's 89.6 / 5.5 / 2.9 / 2.0%.
Memory: the per-item tables (a few arrays of `items` numbers) plus one chunk (~100 bytes an event), so 100M
events over 4.2M items stay well under 2 GB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

T0, T1 = 1511539200, 1512316800  # 2017-11-25 00:00 .. 2017-12-04 00:00 China time (UTC+8), unix seconds
ZIPF_S = 0.95  # item popularity (rank + ZIPF_Q * items)^-ZIPF_S, Zipf-Mandelbrot; fitted on the rdav27_ slice
ZIPF_Q = 2.4e-4  # head offset as a fraction of the catalogue (1,000 of 4.16M): distinct items, top-1% share
CAT_S = 1.7  # category sizes (rank + CAT_Q * categories)^-CAT_S: rdav27_ shows 3,757 categories, the top
CAT_Q = 0.0025  # 1% of them holding 49% of the events
STAY_CATEGORY = 0.6  # P(next in-session event stays in the category): gives ~48% same-category pairs
USER_SIGMA = 0.9  # log-normal sigma of events per user (whole-history slices: 0.82, 0.94)
SESSION_BREAK = 0.16  # P(gap > 30 min) between consecutive events of a user
IN_GAP = (4.25, 1.3)  # log-normal (mu, sigma) of in-session gaps in seconds (real log1p gaps: 4.0-4.1, 1.3)
OUT_GAP = (10.4, 1.29)  # log-normal (mu, sigma) of gaps between sessions (real: 9.9-10.0, 1.29)
REPEAT = 0.25  # P(an event re-touches the user's history) before failures (lag past the first event)
LAG = (1.25, 1.9)  # log-normal of the look-back: lag = 1 + ceil(exp(N(mu, sigma))) >= 2 (real q25/50/75: 2/5/19)
BEHAVIORS = np.array(["pv", "cart", "fav", "buy"])
MIX_NEW = [0.8946, 0.0605, 0.0328, 0.0121]  # behaviour mix of a first touch ...
MIX_REPEAT = [0.9005, 0.0363, 0.0148, 0.0484]  # ... and of a re-visit: together the real 89.6/5.5/2.9/2.0%
# share of the day's events per hour (China time), pooled from the whole-history slices (14,321 events)
HOURS = np.array([3.6, 1.0, 0.9, 0.4, 0.5, 0.3, 2.1, 2.6, 3.2, 2.9, 4.8, 3.9, 5.2, 4.9, 5.1, 5.7, 5.4, 4.3,
                  4.2, 4.8, 7.9, 9.8, 10.4, 5.8])  # fmt: skip


class Catalogue:
    """Items by popularity rank (0 = most popular) with their ids, categories and Zipf weights, and a
    category-sorted cumulative weight so that a draw within one category is one searchsorted."""

    def __init__(self, rng: np.random.Generator, n_items: int, n_categories: int) -> None:
        weight = (np.arange(1, n_items + 1, dtype=np.float64) + ZIPF_Q * n_items) ** -ZIPF_S
        self.cum = np.cumsum(weight)  # (M,) global cumulative weight by rank
        cat_w = (np.arange(1, n_categories + 1, dtype=np.float64) + CAT_Q * n_categories) ** -CAT_S
        self.cat = rng.choice(n_categories, n_items, p=cat_w / cat_w.sum()).astype(np.int32)  # (M,) rank -> cat
        self.cat[rng.permutation(n_items)[:n_categories]] = np.arange(n_categories, dtype=np.int32)  # none empty
        self.order = np.argsort(self.cat, kind="stable").astype(np.int64)  # ranks grouped by category
        self.cat_cum = np.cumsum(weight[self.order])  # (M,)
        bounds = np.searchsorted(self.cat[self.order], np.arange(n_categories + 1))
        self.cat_lo = np.concatenate([[0.0], self.cat_cum])[bounds[:-1]]  # (C,) cumulative weight before cat
        self.cat_hi = self.cat_cum[bounds[1:] - 1]  # (C,) cumulative weight at the category's last item
        self.item_id = rng.choice(int(n_items * 1.24) + 1, n_items, replace=False) + 1  # real ids: 1..5.16M
        self.cat_id = rng.choice(int(n_items * 1.24) + n_categories + 1, n_categories, replace=False) + 1
        self.n_items = n_items

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) ranks drawn by global popularity."""
        return np.minimum(np.searchsorted(self.cum, rng.random(n) * self.cum[-1], "right"), self.n_items - 1)

    def draw_in(self, rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
        """(n,) ranks drawn by popularity within each given category."""
        u = self.cat_lo[cats] + rng.random(len(cats)) * (self.cat_hi[cats] - self.cat_lo[cats])
        pos = np.minimum(np.searchsorted(self.cat_cum, u, "right"), self.n_items - 1)
        return self.order[pos]


def user_counts(rng: np.random.Generator, n_events: int, n_users: int) -> np.ndarray:
    """(U,) events per user: log-normal, at least 1, summing to exactly n_events."""
    raw = rng.lognormal(0.0, USER_SIGMA, n_users)
    counts = np.maximum(1, np.floor(raw / raw.sum() * (n_events - n_users)).astype(np.int64) + 1)
    short = n_events - counts.sum()  # rounding remainder (>= 0): one more event for random users
    counts[rng.choice(n_users, int(short), replace=False)] += 1
    return counts


def timestamps(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) unix seconds of a chunk's users (each user's in order) and (n,) True where a session starts."""
    n = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)  # (n,) index of each event's user's first event
    first = np.arange(n) == starts
    brk = (rng.random(n) < SESSION_BREAK) | first
    gap = np.where(brk, rng.lognormal(*OUT_GAP, n), np.minimum(rng.lognormal(*IN_GAP, n), 1800.0) - 1.0)
    gap = np.maximum(np.round(gap), 0.0)
    gap[first] = 0.0
    long = np.where(brk, gap, 0.0)
    span_long = np.add.reduceat(long, starts[first]) if n else long  # (U,) time between sessions
    span_in = np.add.reduceat(gap, starts[first]) - span_long if n else long  # (U,) time inside sessions
    window = T1 - T0 - 1
    scale = np.clip((window - span_in) / np.maximum(span_long, 1.0), 0.0, 1.0)  # squeeze into the 9 days
    gap = np.where(brk, gap * np.repeat(scale, counts), gap)
    cum = np.cumsum(gap)
    offset = cum - np.repeat(cum[starts[first]], counts)  # (n,) seconds since the user's first event
    span = np.repeat(offset[np.cumsum(counts) - 1], counts)
    t = (rng.random(len(counts)).repeat(counts) * np.maximum(window - span, 0.0)) + offset
    return T0 + warp(t), brk


def warp(t: np.ndarray) -> np.ndarray:
    """Monotone map of uniform time in the window onto the real hour-of-day profile (events per hour)."""
    days = (T1 - T0) // 86400
    rate = np.tile(HOURS / HOURS.sum(), days)
    knots_out = np.arange(days * 24 + 1) * 3600.0  # hour boundaries in the warped time
    knots_in = np.concatenate([[0.0], np.cumsum(rate) / rate.sum() * (T1 - T0)])
    return np.floor(np.interp(t, knots_in, knots_out)).astype(np.int64)


def items_for(rng: np.random.Generator, cat: Catalogue, brk: np.ndarray, user_pos: np.ndarray, cover: np.ndarray):
    """(n,) item ranks and (n,) re-visit flags of one chunk: new draws (global, or within the previous
    event's category), `cover` ranks at random places (so that every item occurs), then re-visits that copy
    the item `lag` events back in the same user's history."""
    n, first = len(brk), user_pos == 0
    lag = 1 + np.ceil(np.exp(rng.normal(*LAG, n))).astype(np.int64)
    rep = (rng.random(n) < REPEAT) & (lag <= user_pos)
    stay = (rng.random(n) < STAY_CATEGORY) & ~brk & ~first
    root = ~stay & ~rep  # a global draw; stays follow the category of the last root event
    ranks = np.zeros(n, dtype=np.int64)
    ranks[root] = cat.draw(rng, int(root.sum()))
    last_root = np.maximum.accumulate(np.where(root | first, np.arange(n), 0))
    follow = stay & ~rep
    ranks[follow] = cat.draw_in(rng, cat.cat[ranks[last_root[follow]]])
    slots = rng.choice(n, len(cover), replace=False)
    ranks[slots], rep[slots] = cover, False
    src = np.where(rep, np.arange(n) - lag, np.arange(n))
    for _ in range(64):  # pointer jumping: a re-visit of a re-visit copies the original
        nxt = src[src]
        if np.array_equal(nxt, src):
            break
        src = nxt
    return ranks[src], rep


def generate(
    out: Path,
    n_events: int,
    n_items: int,
    n_users: int,
    n_categories: int,
    seed: int = 0,
    chunk_events: int = 2_000_000,
    cover: bool = True,
) -> dict:
    """Write the CSV chunk by chunk; returns {"events", "users", "items", "categories"} as written."""
    rng = np.random.default_rng(seed)
    cat = Catalogue(rng, n_items, n_categories)
    counts = user_counts(rng, n_events, n_users)
    user_id = np.sort(rng.choice(int(n_users * 1.03) + 1, n_users, replace=False)) + 1  # real ids: 1..1.02M
    cover_ranks = rng.permutation(n_items) if cover else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    cuts = np.unique(
        np.concatenate([np.searchsorted(ends, np.arange(chunk_events, n_events, chunk_events)), [n_users]])
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    done, lo = 0, 0
    with pacsv.CSVWriter(out, _schema(), write_options=options) as writer:
        for hi in cuts:
            hi = int(max(hi, lo + 1))
            c = counts[lo:hi]
            n = int(c.sum())
            k0, k1 = (done * len(cover_ranks)) // n_events, ((done + n) * len(cover_ranks)) // n_events
            ts, brk = timestamps(rng, c)
            user_pos = np.arange(n) - np.repeat(np.cumsum(c) - c, c)
            ranks, rep = items_for(rng, cat, brk, user_pos, cover_ranks[k0:k1])
            writer.write_table(_table(rng, cat, np.repeat(user_id[lo:hi], c), ranks, rep, ts))
            done, lo = done + n, hi
            if lo >= n_users:
                break
    return {"events": done, "users": n_users, "items": n_items, "categories": n_categories}


def _schema() -> pa.Schema:
    return pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()), ("category_id", pa.int64()),
                      ("behavior_type", pa.string()), ("timestamp", pa.int64())])  # fmt: skip


def _table(rng: np.random.Generator, cat: Catalogue, users, ranks, rep, ts) -> pa.Table:
    u = rng.random(len(ranks))
    code = np.where(rep, np.searchsorted(np.cumsum(MIX_REPEAT), u * sum(MIX_REPEAT), "right"),
                    np.searchsorted(np.cumsum(MIX_NEW), u * sum(MIX_NEW), "right"))  # fmt: skip
    behavior = pa.DictionaryArray.from_arrays(pa.array(np.minimum(code, 3).astype(np.int8)), pa.array(BEHAVIORS))
    columns = [users, cat.item_id[ranks], cat.cat_id[cat.cat[ranks]], behavior.cast(pa.string()), ts]
    return pa.Table.from_arrays([pa.array(c) if not isinstance(c, pa.Array) else c for c in columns],
                                schema=_schema())  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, required=True, help="rows to write (real file: 100,150,807)")
    ap.add_argument("--items", type=int, required=True, help="catalogue size (real file: 4,162,024)")
    ap.add_argument("--out", type=Path, required=True, help="CSV file to write (its folder must exist)")
    ap.add_argument("--users", type=int, default=None, help="default: events / 101.4 (the real file's mean)")
    ap.add_argument("--categories", type=int, default=None, help="default: items / 441 (real: 9,439)")
    ap.add_argument("--seed", type=int, default=0, help="same seed and arguments: the same file")
    ap.add_argument("--chunk-events", type=int, default=2_000_000, help="rows generated at a time (memory)")
    ap.add_argument("--cover", choices=["auto", "on", "off"], default="auto",
                    help="every item at least once: auto = when events >= items")  # fmt: skip
    args = ap.parse_args(argv)
    args.users = args.users if args.users is not None else max(1, round(args.events / 101.37))
    args.categories = args.categories if args.categories is not None else max(1, round(args.items / 441))
    problem = _problem(args)
    if problem:
        ap.error(problem)
    return args


def _problem(a: argparse.Namespace) -> str | None:
    """One message naming the bad argument and the fix, or None."""
    if a.events < 1 or a.items < 1 or a.users < 1 or a.categories < 1 or a.chunk_events < 1:
        return "--events, --items, --users, --categories and --chunk-events must be positive integers"
    if a.users > a.events:
        return f"--users {a.users:,} is more than --events {a.events:,}: every user needs at least one event"
    if a.categories > a.items:
        return f"--categories {a.categories:,} is more than --items {a.items:,}: every category needs an item"
    if a.cover == "on" and a.events < a.items:
        return f"--cover on needs --events ({a.events:,}) >= --items ({a.items:,}) to show every item once"
    if not a.out.parent.is_dir():
        return f"--out {a.out}: folder {a.out.parent} does not exist (create it first)"
    return None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cover = args.cover == "on" or (args.cover == "auto" and args.events >= args.items)
    info = generate(args.out, args.events, args.items, args.users, args.categories, args.seed,
                    args.chunk_events, cover)  # fmt: skip
    print(f"wrote {args.out}: {info['events']:,} events, {info['users']:,} users, "
          f"{info['items']:,} items in the catalogue, {info['categories']:,} categories", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
