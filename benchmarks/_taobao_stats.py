"""Statistics of a UserBehavior-format CSV, to compare a real Taobao slice with a generated file of its size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NAMES = ["user", "item", "category", "behavior", "ts"]


def load(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=NAMES, on_bad_lines="skip").dropna()
    return df.astype({"user": np.int64, "item": np.int64, "category": np.int64, "ts": np.int64})


def item_stats(df: pd.DataFrame) -> dict:
    """Popularity: distinct items / categories, share of events on the top 1% of items / categories,
    fraction of items seen once, the most popular item's count, and the behaviour mix."""
    ic = df["item"].value_counts().to_numpy()
    cc = df["category"].value_counts().to_numpy()
    mix = df["behavior"].value_counts(normalize=True)
    return {
        "events": len(df),
        "users": df["user"].nunique(),
        "items": len(ic),
        "categories": len(cc),
        "top 1% items' share": ic[: max(1, len(ic) // 100)].sum() / ic.sum(),
        "items seen once": float((ic == 1).mean()),
        "top item's events": int(ic[0]),
        "top 1% categories' share": cc[: max(1, len(cc) // 100)].sum() / cc.sum(),
        **{f"{b} share": float(mix.get(b, 0.0)) for b in ("pv", "cart", "fav", "buy")},
    }


def user_stats(df: pd.DataFrame) -> dict:
    """Histories: events per user, session gaps, re-visits, category runs, hour of day."""
    df = df.sort_values(["user", "ts"], kind="stable")
    g = df.groupby("user", sort=False)
    epu = g.size().to_numpy()
    gap = g["ts"].diff().to_numpy()
    valid = ~np.isnan(gap)
    inside = valid & (gap <= 1800)
    between = valid & (gap > 1800)
    seen = g["item"].transform(lambda s: s.duplicated()).to_numpy(bool)
    prev_cat = g["category"].shift().to_numpy()
    prev_item = g["item"].shift().to_numpy()
    hour = ((df["ts"].to_numpy() + 8 * 3600) % 86400) // 3600
    return {
        "events per user (mean)": epu.mean(),
        "events per user (median)": float(np.median(epu)),
        "log events per user (sd)": float(np.log(epu).std()),
        "gaps > 30 min": float((gap[valid] > 1800).mean()),
        "in-session gap median s": float(np.median(gap[inside])),
        "between-session gap median h": float(np.median(gap[between]) / 3600),
        "re-visited events": float(seen.mean()),
        "buy share on re-visits": float((df["behavior"].to_numpy()[seen] == "buy").mean()),
        "same category as previous (in session)": float((df["category"].to_numpy() == prev_cat)[inside].mean()),
        "same item as previous (in session)": float((df["item"].to_numpy() == prev_item)[inside].mean()),
        "events 18-24 h (China time)": float((hour >= 18).mean()),
        "events 0-6 h": float((hour < 6).mean()),
    }


def table(title: str, real: dict, generated: dict, real_name: str) -> list[str]:
    rows = [f"**{title}**", "", f"| statistic | real ({real_name}) | generated |", "|---|---|---|"]
    for key, value in real.items():
        rows.append(f"| {key} | {_fmt(value)} | {_fmt(generated[key])} |")
    return rows + [""]


def _fmt(v: float) -> str:
    if isinstance(v, (int, np.integer)) or float(v).is_integer() and abs(v) >= 10:
        return f"{int(v):,}"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}"
