"""`seqexp-compare PATH...`: a leaderboard over run dirs and multirun dirs, or over W&B runs.

seqexp-compare logs/train/multiruns/2026-11-27_12-00-00                 # terminal table
seqexp-compare logs/ --format markdown --plot leaderboard.png --baseline gru
seqexp-compare logs/ --metric test/hr@10                                # rank by another metric
seqexp-compare logs/ --diversity --paired-metric test/novelty@10        # + Gini, entropy, novelty, ... columns
seqexp-compare logs/ --log-wandb --group my-sweep                       # + a W&B Table and the plot
seqexp-compare --from-wandb my-team/seqexp --group my-sweep             # from W&B (online)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from seqexp.compare.format import describe, print_table, to_csv, to_json, to_markdown
from seqexp.compare.leaderboard import (
    Row,
    build_rows,
    check_baseline,
    check_metric,
    check_paired_metric,
    diversity_columns,
)
from seqexp.compare.plot import plot_leaderboard
from seqexp.compare.runs import CompareError, RunRecord, read_runs
from seqexp.compare.seeds import drop_repeated_seeds
from seqexp.compare.wandb_io import log_leaderboard, records_from_wandb
from seqexp.errors import SeqexpError
from seqexp.io import write_text

PROG = "seqexp-compare"
DEFAULT_BASELINE = "lstm"  # the reference article's model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="run dirs or folders holding them (searched recursively)")
    parser.add_argument("--baseline", help=f"model to compare against (default: the article's {DEFAULT_BASELINE})")
    parser.add_argument(
        "--baseline-variant",
        nargs="+",
        default=[],
        metavar="OVERRIDE",
        help="the baseline is the row of --baseline whose runs have all these overrides (e.g. "
        "model.encoder.dropout=0.2): compares two variants of one encoder, paired per user",
    )
    parser.add_argument(
        "--metric",
        default="test/ndcg@10",
        help="metric that ranks the rows, best first, and gives 'vs baseline' (default test/ndcg@10; paired tests stay "
        "on NDCG@10); gini and avg_pop rank ascending: lower is better, and the header says so",
    )
    parser.add_argument(
        "--diversity",
        action="store_true",
        help="add the beyond-accuracy columns of the test top-10: gini, entropy, novelty, avg_pop, tail_share, ild",
    )
    parser.add_argument(
        "--paired-metric",
        default="test/ndcg@10",
        help="per-user metric of the paired tests (default test/ndcg@10; or test/novelty@10, test/avg_pop@10, "
        "test/tail_share@10, test/ild@10)",
    )
    parser.add_argument(
        "--same-variant",
        nargs="+",
        default=[],
        metavar="KEY",
        help="overrides (keys or prefixes, e.g. trainer.max_epochs trainer.patience) that never split rows: runs "
        "that differ only in them are seeds of one variant (e.g. runs resumed with another budget)",
    )
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.baseline_variant and args.baseline is None:
        parser.error("--baseline-variant needs --baseline: name the model whose variant is the baseline")
    if not_overrides := [o for o in args.baseline_variant if "=" not in o]:
        parser.error(
            f"--baseline-variant takes overrides key=value, not {' '.join(not_overrides)!r}: put the run dirs "
            "(PATH...) before --baseline-variant"
        )
    if not args.paths and not args.from_wandb:
        parser.error("give run dirs (PATH...) or --from-wandb ENTITY/PROJECT")
    try:
        runs = _load(args)
        rows = _rows(runs, args)
        others = [r for r in runs if r.status != "completed"]
        plot = _plot(rows, args.plot) if args.plot else None  # first: a bad --plot path stops before any output
        _write(rows, others, args)
    except SeqexpError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if args.log_wandb:
        groups = {r.group for r in runs if r.group}
        group = args.group or (groups.pop() if len(groups) == 1 else None)  # default: the sweep's own group
        where = log_leaderboard(
            rows, others, plot, project=args.project, group=group, mode=os.environ.get("WANDB_MODE", "offline")
        )
        if where:
            print(f"leaderboard logged to the W&B run in {Path(where).parent}", file=sys.stderr)
    return 0


def _load(args: argparse.Namespace) -> list[RunRecord]:
    """The runs to compare; a warning line on stderr for each one skipped (unreadable, not ours, untrained, a seed
    already counted)."""
    if args.from_wandb:
        try:
            runs = records_from_wandb(args.from_wandb, args.group)
        except Exception as e:  # network, login, a wrong ENTITY/PROJECT: the W&B client's own error types vary
            raise CompareError(
                f"cannot read runs of {args.from_wandb!r} from W&B ({type(e).__name__}: {e}); "
                "check ENTITY/PROJECT, the network and `wandb login`"
            ) from e
    else:
        runs = read_runs(args.paths)
    runs = drop_repeated_seeds(same_variant(runs, args.same_variant))  # rows as --same-variant merges them
    for r in runs:
        if r.status == "skipped":
            print(f"{PROG}: warning: skipped {describe(r).removeprefix('skipped: ')}", file=sys.stderr)
    return runs


def same_variant(runs: list[RunRecord], keys: Sequence[str]) -> list[RunRecord]:
    """Drop the overrides named by --same-variant from every run, so that they never split leaderboard rows."""
    prefixes = tuple(k.lstrip("+~") for k in keys if k.strip("+~ "))  # an empty key would match every override
    for r in runs if prefixes else []:
        r.overrides = [o for o in r.overrides if not o.lstrip("+~").startswith(prefixes)]
    return runs


def _rows(runs: list[RunRecord], args: argparse.Namespace) -> list[Row]:
    if not any(r.status == "completed" for r in runs):
        where = ", ".join(args.paths) or args.from_wandb
        counts = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in sorted({r.status for r in runs}))
        raise CompareError(f"no completed runs to rank under {where} ({counts})")
    check_metric(runs, args.metric)
    if args.baseline is not None:
        check_baseline(runs, args.baseline, args.baseline_variant)
    check_paired_metric(runs, args.paired_metric)
    columns = diversity_columns(runs) if args.diversity else ()
    return build_rows(
        runs, baseline=args.baseline or DEFAULT_BASELINE, metric=args.metric, columns=columns,
        paired_metric=args.paired_metric, baseline_variant=args.baseline_variant,
    )  # fmt: skip


def _write(rows: list[Row], others: list[RunRecord], args: argparse.Namespace) -> None:
    if args.format == "table" and not args.output:
        print_table(rows, others)
        return
    if args.format == "csv":  # a CSV holds the rows only: say which runs it leaves out (markdown and json list them)
        for r in (r for r in others if r.status != "skipped"):  # skipped ones were warned about when read
            print(
                f"{PROG}: warning: {r.source} ({r.status}: {r.error or 'no error recorded'}) is not in the CSV",
                file=sys.stderr,
            )
    render = {"markdown": to_markdown, "table": to_markdown, "json": to_json, "csv": lambda r, _: to_csv(r)}
    text = render[args.format](rows, others)
    if not args.output:
        sys.stdout.write(text)
        return
    try:
        write_text(Path(args.output), text)
    except OSError as e:
        raise CompareError(f"cannot write --output {args.output}: {e.strerror or e}") from e


def _plot(rows: list[Row], path: str) -> Path:
    """The plot written to `path`; a folder is refused (matplotlib wrote `<folder>.png` beside it, exit 0), and a
    name without an extension gets `.png`, which the path returned (and logged to W&B) now says."""
    if Path(path).is_dir():
        raise CompareError(f"--plot {path} is a folder; give a file name, e.g. --plot {Path(path) / 'leaderboard.png'}")
    if not Path(path).suffix:
        path = f"{path}.png"
    try:
        return plot_leaderboard(rows, path)
    except (OSError, ValueError) as e:  # ValueError: matplotlib does not know the file extension
        raise CompareError(f"cannot write --plot {path}: {getattr(e, 'strerror', None) or e}") from e


if __name__ == "__main__":
    sys.exit(main())
