"""A seeded synthetic e-commerce behaviour log: the embedded default data set (`data=synthetic`).

What it imitates (in the spirit of the Taobao UserBehavior log):
  - items belong to categories; popularity is Zipf-skewed within each category;
  - each user prefers a few categories (Dirichlet weights) and browses in sessions that stay in one category;
  - inside a session the next item follows one of the current item's "successors" (an item-to-item
    transition graph: accessories after a phone, the next volume of a series) with probability
    `p_follow`, else a popular item of the category. This is the sequential signal a model can learn
    and a popularity ranking cannot;
  - every view (`pv`) may lead to `cart` / `fav` on the same item, and a cart to a `buy`: a funnel;
  - timestamps: sessions days apart, events within a session a minute or so apart (unix seconds).

The file is written once per parameter set and then read through the same reader as real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqexp.io import atomic_write

COLUMNS = ["user_id", "item_id", "category_id", "behavior", "timestamp"]


def generate_log(
    n_users: int = 2000,
    n_items: int = 1000,
    n_categories: int = 25,
    mean_events: float = 30.0,
    mean_session: float = 6.0,
    p_follow: float = 0.7,
    n_successors: int = 3,
    p_cart: float = 0.08,
    p_fav: float = 0.04,
    p_buy_after_cart: float = 0.4,
    zipf_a: float = 1.1,
    start: int = 1_700_000_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Return the log as a DataFrame with columns user_id, item_id, category_id, behavior, timestamp."""
    rng = np.random.default_rng(seed)
    category, members, pop, successors = _catalogue(rng, n_items, n_categories, n_successors, zipf_a)
    succ_p = 0.6 ** np.arange(n_successors)  # the first successor is the likeliest next item
    succ_p /= succ_p.sum()
    prefs = rng.dirichlet(np.full(n_categories, 0.2), size=n_users)

    users, items, behaviors, times = [], [], [], []
    for u in range(n_users):
        n_events = max(5, int(rng.geometric(1.0 / mean_events)))
        t = start + int(rng.integers(0, 30 * 86400))
        done = 0
        while done < n_events:
            c = rng.choice(n_categories, p=prefs[u])
            cur = rng.choice(members[c], p=pop[c])
            for _ in range(min(int(rng.geometric(1.0 / mean_session)), n_events - done)):
                users.append(u), items.append(cur), behaviors.append("pv"), times.append(t)
                if rng.random() < p_cart:
                    users.append(u), items.append(cur), behaviors.append("cart"), times.append(t + 20)
                    if rng.random() < p_buy_after_cart:
                        users.append(u), items.append(cur), behaviors.append("buy"), times.append(t + 90)
                elif rng.random() < p_fav:
                    users.append(u), items.append(cur), behaviors.append("fav"), times.append(t + 15)
                done += 1
                t += 30 + int(rng.exponential(60))
                if rng.random() < p_follow:
                    cur = successors[cur, rng.choice(n_successors, p=succ_p)]
                else:
                    cur = rng.choice(members[c], p=pop[c])
            t += int(rng.exponential(2 * 86400))
    item_arr = np.asarray(items)
    return pd.DataFrame(
        {
            "user_id": np.asarray(users) + 1,
            "item_id": item_arr + 1,
            "category_id": category[item_arr] + 1,
            "behavior": behaviors,
            "timestamp": np.asarray(times, dtype=np.int64),
        }
    )[COLUMNS]


def _catalogue(
    rng: np.random.Generator, n_items: int, n_categories: int, n_successors: int, zipf_a: float
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Items' categories, each category's members and their Zipf popularity (over a random order), and each
    item's `n_successors` likely next items (same category, drawn by popularity): (n_items, n_successors)."""
    category = rng.integers(n_categories, size=n_items)
    members = [np.flatnonzero(category == c) for c in range(n_categories)]
    members = [m if len(m) else rng.integers(n_items, size=1) for m in members]
    pop = [(1.0 / np.arange(1, len(m) + 1) ** zipf_a)[rng.permutation(len(m))] for m in members]
    pop = [p / p.sum() for p in pop]
    successors = np.empty((n_items, n_successors), dtype=np.int64)
    for c, m in enumerate(members):
        for i in m:
            successors[i] = rng.choice(m, size=n_successors, p=pop[c])
    return category, members, pop, successors


def ensure_synthetic_log(path: str | Path, **params: object) -> Path:
    """Write the log to `path` unless it is already there (atomically: temp file + rename)."""
    path = Path(path).expanduser()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    df = generate_log(**params)  # type: ignore[arg-type]
    if path.suffix == ".parquet":
        atomic_write(path, lambda f: df.to_parquet(f, index=False))
    else:
        atomic_write(path, lambda f: f.write(df.to_csv(index=False).encode()))
    return path
