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

The file is written once per parameter set and then read through the same reader as real data: its name
(`synthetic_file_name`) carries every setting, and a sidecar `<file>.params.json` records them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqexp.io import atomic_write

log = logging.getLogger(__name__)

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


def generator_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of generate_log: `params` over its defaults (numbers as floats where the default is one)."""
    defaults = {k: p.default for k, p in inspect.signature(generate_log).parameters.items()}
    full = {**defaults, **dict(params)}
    return {k: float(v) if isinstance(defaults.get(k), float) and isinstance(v, int) else v for k, v in full.items()}


def synthetic_file_name(params: Mapping[str, Any]) -> str:
    """`taobao_like_u{n_users}_i{n_items}_s{seed}.csv`, plus a short hash of the settings that differ from the
    defaults otherwise (p_follow, mean_events, ...): each parameter set gets its own file. Formerly only those three
    were in the name, and a log generated with other settings was read for every later setting."""
    full, defaults = generator_settings(params), generator_settings({})
    stem = f"taobao_like_u{full['n_users']}_i{full['n_items']}_s{full['seed']}"
    named = ("n_users", "n_items", "seed")
    others = {k: v for k, v in sorted(full.items()) if k not in named and (k not in defaults or v != defaults[k])}
    if others:
        stem += "_" + hashlib.sha256(json.dumps(others, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return stem + ".csv"


def ensure_synthetic_log(path: str | Path, **params: object) -> Path:
    """Write the log to `path` unless it is already there with these settings (atomically: temp file + rename).

    The settings are recorded beside it (`<file>.params.json`). A file written with other settings, or one without
    a record whose content these settings do not reproduce, is moved aside (`<name>.replaced-<time><suffix>`) and
    written again: a run never trains on a log generated with other settings than its results.json records."""
    path = Path(path).expanduser()
    settings = generator_settings(params)
    record = path.with_name(path.name + ".params.json")
    recorded = _recorded(record)
    if path.exists() and recorded == settings:
        return path
    df = generate_log(**settings)
    if path.exists():
        if recorded is None and _holds(path, df):  # written before the settings were recorded: these ones
            _write_record(record, settings)
            return path
        stamp = f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{os.getpid()}"  # two replacements in one second: two files
        aside = path.with_name(f"{path.stem}.replaced-{stamp}{path.suffix}")
        try:
            path.rename(aside)
        except FileNotFoundError:  # a parallel job of the same sweep moved it first: it writes the same log
            aside = None
        log.warning(
            "%s was generated with other data.generate settings (%s); it was moved to %s and written again",
            path, recorded if recorded is not None else "not recorded", aside.name if aside else "(by another job)",
        )  # fmt: skip
    if path.suffix == ".parquet":
        atomic_write(path, lambda f: df.to_parquet(f, index=False))
    else:
        atomic_write(path, lambda f: f.write(df.to_csv(index=False).encode()))
    _write_record(record, settings)
    return path


def _recorded(record: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_record(record: Path, settings: dict[str, Any]) -> None:
    text = json.dumps(settings, indent=1, sort_keys=True, default=str)
    atomic_write(record, lambda f: f.write(text.encode()))


def _holds(path: Path, df: pd.DataFrame) -> bool:
    """Whether the file at `path` is `df` as ensure_synthetic_log writes it."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path).equals(df)
        return path.read_bytes() == df.to_csv(index=False).encode()
    except (OSError, ValueError):
        return False
