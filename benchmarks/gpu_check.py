"""The measuring steps of benchmarks/gpu_check.sh (one subcommand each) and the one table it prints.

    python benchmarks/gpu_check.py train --model sasrec --rows rows.jsonl --workdir W [-- hydra overrides]
        fp32, chunked CE, bf16 and torch.compile runs of one encoder, in this process: s/epoch (the last epoch,
        after compile's warm-up) and peak memory (torch.cuda.max_memory_allocated per run; on a CPU the
        process's peak RSS, which only grows: a smoke value, not a comparison)
    python benchmarks/gpu_check.py eval --items 4200000 --users 4096 --rows rows.jsonl [--device cuda]
        users/s of exact full ranking (seqexp.evaluation, eval.item_chunk) against a random item table
    python benchmarks/gpu_check.py collect-ray SWEEP_DIR SECONDS --rows rows.jsonl
    python benchmarks/gpu_check.py collect-run RUN_DIR SECONDS --rows rows.jsonl
    python benchmarks/gpu_check.py table --rows rows.jsonl --encoders "lstm gru" [--out FILE]
        every expected row, FAILED where a step failed or never wrote its row; exit 1 when any cell FAILED

A row is one JSON line {"check", "measure", "value"}; a step that fails writes "FAILED (why)" as its value.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> (overrides, the measure it reports)
    "fp32": (["trainer.precision=no"], ["s/epoch fp32", "peak MB full CE"]),
    "chunked": (["trainer.precision=no"], ["peak MB chunked CE"]),  # + conf/model/loss/chunked.yaml (VARIANT_LOSS)
    "bf16": (["trainer.precision=bf16"], ["s/epoch bf16"]),
    "compile": (["trainer.precision=no", "trainer.compile=true"], ["s/epoch compile"]),
}
VARIANT_LOSS = {"chunked": "chunked"}  # variant -> the conf/model/loss option it trains with; the others: full
OTHER_ROWS = [
    ("eval", "users/s, exact full ranking"),
    ("ray", "sweep of 2 jobs sharing one device"),
    ("torchrun", "1-process job"),
]


def expected_rows(encoders: list[str]) -> list[tuple[str, str]]:
    rows = [(m, measure) for m in encoders for _, measures in VARIANTS.values() for measure in measures]
    return rows + OTHER_ROWS


def write_row(path: Path, check: str, measure: str, value: str) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({"check": check, "measure": measure, "value": value}) + "\n")


def peak_memory_mb(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f} (cuda)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} (cpu RSS)"  # Linux: KiB


def train_variant(model: str, variant: str, workdir: Path, overrides: list[str]) -> dict[str, str]:
    """One run of `model` in this process; {measure: value} for the variant's measures."""
    import torch
    from _runs import loss_overrides  # benchmarks/_runs.py (run as a script, this folder is on sys.path)
    from accelerate.state import AcceleratorState
    from hydra import compose, initialize_config_dir

    from seqexp.app.train import train

    AcceleratorState._reset_state(reset_partial_state=True)  # each variant its own precision / compile setting
    torch._dynamo.reset()

    extra, measures = VARIANTS[variant]
    extra = [*extra, *loss_overrides(model, VARIANT_LOSS.get(variant, "full"))]  # full CE on esasrec too
    out = workdir / f"{model}-{variant}"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"model={model}", *overrides, *extra, f"paths.output_dir={out}"])
    cuda = torch.cuda.is_available() and str(cfg.trainer.device) != "cpu"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _, objects = train(cfg)
    epochs = [h["train/epoch_seconds"] for h in objects["results"]["history"]]
    values = {
        f"s/epoch {variant}": f"{epochs[-1]:.3g} (epoch 1: {epochs[0]:.3g})",  # epoch 1 includes compile's warm-up
        f"peak MB {'chunked' if variant == 'chunked' else 'full'} CE": peak_memory_mb("cuda" if cuda else "cpu"),
    }
    return {m: values[m] for m in measures}


def cmd_train(args: argparse.Namespace) -> None:
    """Every variant of one encoder; a failing variant writes FAILED in its cells and the others still run."""
    for variant in args.variants.split(","):
        try:
            for measure, value in train_variant(args.model, variant, args.workdir, args.overrides).items():
                write_row(args.rows, args.model, measure, value)
        except Exception as e:  # noqa: BLE001 - a check reports every failure as a cell and goes on
            traceback.print_exc()
            for measure in VARIANTS[variant][1]:
                write_row(args.rows, args.model, measure, f"FAILED ({type(e).__name__}: {str(e)[:80]})")


def synthetic_eval(n_items: int, n_users: int, dim: int, max_len: int, seed: int = 0):  # noqa: ANN201
    """A random item table (N + 1, D) and M users with random histories (M, L) and targets (M,)."""
    import torch

    from seqexp.data.loader import EvalTensors

    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, n_items + 1, (n_users, max_len), generator=g)
    seen = inputs.reshape(-1)  # each user's history is what eval.filter_seen masks
    tensors = EvalTensors(
        users=torch.arange(n_users),
        inputs=inputs,
        targets=torch.randint(1, n_items + 1, (n_users,), generator=g),
        seen_offsets=torch.arange(0, n_users * max_len + 1, max_len),
        seen_items=seen,
    )
    return torch.randn(n_items + 1, dim, generator=g), tensors


class LastItemScorer:
    """A factored scorer (user_states @ item_table().T, as SequenceRecommender.score): the state is the
    history's last item vector; what is measured is the ranking, not a model."""

    def __init__(self, table) -> None:  # noqa: ANN001
        self.table = table

    def user_states(self, history, features=None):  # noqa: ANN001, ANN201
        return self.table[history[:, -1]]  # (B, D)

    def item_table(self):  # noqa: ANN201
        return self.table  # (N + 1, D)


def cmd_eval(args: argparse.Namespace) -> None:
    import torch

    from seqexp.evaluation.protocol import evaluate

    measure = OTHER_ROWS[0][1]
    try:
        table, tensors = synthetic_eval(args.items, args.users, args.dim, args.max_len)
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        scorer = LastItemScorer(table.to(device))
        evaluate(scorer, tensors.rows(0, min(64, len(tensors))), n_items=args.items, item_chunk=args.chunk,
                 batch_size=args.batch, device=device)  # warm-up (kernels, allocator)  # fmt: skip
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = evaluate(scorer, tensors, n_items=args.items, item_chunk=args.chunk, batch_size=args.batch,
                          device=device)  # fmt: skip
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        assert len(result.users) == args.users and 0.0 <= result.metrics["ndcg@10"] <= 1.0
        value = (
            f"{args.users / seconds:,.0f} at {args.items:,} items ({device}, batch {args.batch}, "
            f"chunk {args.chunk}, peak MB {peak_memory_mb(device)})"
        )
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        value = f"FAILED ({type(e).__name__}: {str(e)[:80]})"
    write_row(args.rows, OTHER_ROWS[0][0], measure, value)


def cmd_collect_ray(args: argparse.Namespace) -> None:
    """The sweep's jobs: both completed, and the wall time of the whole sweep."""
    found = [json.loads(p.read_text()) for p in sorted(args.dir.glob("*/results.json"))]
    done = [r for r in found if r.get("status") == "completed"]
    devices = sorted({r["training"]["device"] for r in done})
    ok = len(done) == 2
    value = f"{len(done)}/2 jobs completed in {args.seconds:.0f} s (devices {', '.join(devices) or '-'})"
    write_row(args.rows, *OTHER_ROWS[1], value if ok else f"FAILED ({value})")


def cmd_collect_run(args: argparse.Namespace) -> None:
    """A torchrun job of one process: completed, one process, and its s/epoch."""
    path = args.dir / "results.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    ok = res.get("status") == "completed" and res.get("training", {}).get("processes") == 1
    if ok:
        value = (
            f"completed in {args.seconds:.0f} s, processes=1, {res['training']['device']}, "
            f"{res['history'][-1]['train/epoch_seconds']:.3g} s/epoch"
        )
    else:
        value = f"FAILED (status {res.get('status', 'no results.json')})"
    write_row(args.rows, *OTHER_ROWS[2], value)


def cmd_table(args: argparse.Namespace) -> int:
    """The one table; rows a step never wrote are FAILED. Returns 1 when any cell FAILED."""
    got: dict[tuple[str, str], str] = {}
    if args.rows.exists():
        for line in args.rows.read_text().splitlines():
            row = json.loads(line)
            got[(row["check"], row["measure"])] = row["value"]
    lines = ["| check | measure | value |", "|---|---|---|"]
    failed = 0
    for check, measure in expected_rows(args.encoders.split()):
        value = got.get((check, measure), "FAILED (no value: the step failed or ran out of time)")
        failed += value.startswith("FAILED")
        lines.append(f"| {check} | {measure} | {value} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if failed else 0


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", required=True)
    t.add_argument("--variants", default=",".join(VARIANTS))
    t.add_argument("--workdir", type=Path, required=True)
    t.add_argument("overrides", nargs="*", help="hydra overrides after --")
    e = sub.add_parser("eval")
    e.add_argument("--items", type=int, default=4_200_000)
    e.add_argument("--users", type=int, default=4096)
    e.add_argument("--dim", type=int, default=64)
    e.add_argument("--max-len", type=int, default=50)
    e.add_argument("--batch", type=int, default=512)
    e.add_argument("--chunk", type=int, default=262_144)
    e.add_argument("--device", default="auto")
    for name in ("collect-ray", "collect-run"):
        c = sub.add_parser(name)
        c.add_argument("dir", type=Path)
        c.add_argument("seconds", type=float)
    tab = sub.add_parser("table")
    tab.add_argument("--encoders", required=True)
    tab.add_argument("--out", type=Path)
    for p in (t, e, *sub.choices.values()):
        if not any(a.dest == "rows" for a in p._actions):
            p.add_argument("--rows", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    handlers = {"train": cmd_train, "eval": cmd_eval, "collect-ray": cmd_collect_ray, "collect-run": cmd_collect_run}
    if args.command == "table":
        return cmd_table(args)
    handlers[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
