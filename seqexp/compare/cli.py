"""`seqexp-compare PATH...`: a leaderboard over run dirs and multirun dirs, or over W&B runs.

seqexp-compare logs/train/multiruns/2026-11-27_12-00-00                 # terminal table
seqexp-compare logs/ --format markdown --plot leaderboard.png --baseline gru
seqexp-compare logs/ --log-wandb --group my-sweep                       # + a W&B Table and the plot
seqexp-compare --from-wandb my-team/seqexp --group my-sweep             # from W&B (online)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from seqexp.compare.format import print_table, to_csv, to_json, to_markdown
from seqexp.compare.leaderboard import build_rows
from seqexp.compare.plot import plot_leaderboard
from seqexp.compare.runs import read_runs
from seqexp.compare.wandb_io import log_leaderboard, records_from_wandb


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqexp-compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="run dirs or folders holding them (searched recursively)")
    parser.add_argument("--baseline", default="lstm", help="model to compare against (default: the article's lstm)")
    parser.add_argument("--format", choices=["table", "markdown", "csv", "json"], default="table")
    parser.add_argument("--output", help="write the formatted leaderboard to this file instead of stdout")
    parser.add_argument("--plot", help="draw the leaderboard and validation curves to this PNG")
    parser.add_argument("--log-wandb", action="store_true", help="log the leaderboard (and plot) as a W&B run")
    parser.add_argument("--from-wandb", metavar="ENTITY/PROJECT", help="read runs from W&B instead of PATHs")
    parser.add_argument(
        "--group",
        help="W&B group to read from (--from-wandb) and to log into (--log-wandb; "
        "default: the group of the compared runs when they share one)",
    )
    parser.add_argument("--project", default="seqexp", help="W&B project for --log-wandb")
    args = parser.parse_args(argv)
    if not args.paths and not args.from_wandb:
        parser.error("give run dirs (PATH...) or --from-wandb ENTITY/PROJECT")
    try:
        runs = records_from_wandb(args.from_wandb, args.group) if args.from_wandb else read_runs(args.paths)
    except FileNotFoundError as e:
        print(f"seqexp-compare: error: {e}", file=sys.stderr)
        return 2
    rows = build_rows(runs, baseline=args.baseline)
    others = [r for r in runs if r.status != "completed"]
    if not rows:
        print(f"seqexp-compare: error: no completed runs under {args.paths or args.from_wandb}", file=sys.stderr)
        return 2
    if args.format == "table" and not args.output:
        print_table(rows, others)
    else:
        text = {
            "markdown": lambda: to_markdown(rows, others),
            "csv": lambda: to_csv(rows),
            "json": lambda: to_json(rows, others),
            "table": lambda: to_markdown(rows, others),
        }[args.format]()
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
    plot = plot_leaderboard(rows, args.plot) if args.plot else None
    if args.log_wandb:
        groups = {r.group for r in runs if r.group}
        group = args.group or (groups.pop() if len(groups) == 1 else None)  # default: the sweep's own group
        where = log_leaderboard(
            rows, others, plot, project=args.project, group=group, mode=os.environ.get("WANDB_MODE", "offline")
        )
        if where:
            print(f"leaderboard logged to the W&B run in {Path(where).parent}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
