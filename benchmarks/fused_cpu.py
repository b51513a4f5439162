"""Two fused paths on a CPU: the full softmax taken with its gradient (model.loss.fused, the default) against the
textbook one, and torch's fused Adam step (seqexp/training/optimizer.py) against its per-tensor loop.

    python benchmarks/fused_cpu.py [--beauty ../shared/data/beauty-bert4rec] [--threads 1 2] [--out FILE]

1. The loss alone, forward + backward, at the shapes a Beauty batch of 128 gives (D = 64, 54,543 table rows):
   ~175 masked positions for BERT4Rec (20% of ~6.8 training events a user), ~750 for SASRec; and ml-100k's 1,683
   rows at 6,000 positions (a small catalogue). Three implementations of one loss:
   `textbook` (F.cross_entropy over all logits: FullSoftmax(fused=False)), `fused` (FullSoftmax(), chunks of
   positions, gradient taken in forward) and `item-chunked` (ChunkedFullSoftmax, chunks of 8,192 items, logits
   recomputed in backward). Median ms of `--repeats` calls after two warm-up calls; the gradients of the three are
   checked equal first.
2. One Adam step over a Beauty-sized model (the 54,544 x 64 item table and 40 small tensors), torch's default
   (per-tensor loop on a CPU), `foreach=True` and `fused=True`: median ms; the three updates checked equal first.
3. With `--beauty`: bert4rec and sasrec (their cards, full softmax, fp32) trained for `--batches` batches of one
   epoch, with both fused paths (the defaults) against neither (`++model.loss.fused=false` and
   `++model.optimizer.foreach=false`, which keeps the per-tensor Adam), one run at a time: s/epoch extrapolated,
   peak RSS.

Prints the tables and writes them to benchmarks/results/fused_cpu.md (or `--out`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

from seqexp.model.losses import ChunkedFullSoftmax, FullSoftmax

ROOT = Path(__file__).resolve().parents[1]

SHAPES = [  # (case, positions P, table rows N + 1)
    ("Beauty, BERT4Rec batch", 175, 54_543),
    ("Beauty, SASRec batch", 750, 54_543),
    ("ml-100k, SASRec batch", 6_000, 1_683),
]
LOSSES = {
    "textbook": FullSoftmax(fused=False),
    "fused": FullSoftmax(),
    "item-chunked": ChunkedFullSoftmax(8192),
}


def loss_table(threads: list[int], repeats: int) -> list[str]:
    rows = [
        "| case | P x (N + 1) | threads | textbook ms | fused ms | item-chunked ms | textbook / fused |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, n_pos, n_rows in SHAPES:
        gen = torch.Generator().manual_seed(0)
        h = torch.randn(n_pos, 64, generator=gen).requires_grad_()
        table = (torch.randn(n_rows, 64, generator=gen) * 0.02).requires_grad_()
        targets = torch.randint(1, n_rows, (n_pos,), generator=gen)
        grads = {name: torch.autograd.grad(fn(h, targets, table), (h, table)) for name, fn in LOSSES.items()}
        for name in ("fused", "item-chunked"):  # the same loss: equal gradients before any timing
            for got, want in zip(grads[name], grads["textbook"], strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            ms = {name: _median_ms(fn, h, targets, table, repeats) for name, fn in LOSSES.items()}
            rows.append(
                f"| {case} | {n_pos:,} x {n_rows:,} | {n_threads} | {ms['textbook']:,.0f} | {ms['fused']:,.0f} | "
                f"{ms['item-chunked']:,.0f} | {ms['textbook'] / ms['fused']:.2f}x |"
            )
            print(rows[-1], flush=True)
    return rows


def _median_ms(fn, h: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, repeats: int) -> float:
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        torch.autograd.grad(fn(h, targets, table), (h, table))
        if i >= 2:  # two warm-up calls
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def adam_table(threads: list[int], repeats: int) -> list[str]:
    rows = ["| threads | default ms | foreach ms | fused ms | default / fused |", "|---|---|---|---|---|"]
    shapes = [(54_544, 64)] + [(64, 64)] * 24 + [(256, 64), (64, 256), (64,), (256,)] * 4
    finals = {}
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        ms = {}
        for name, kwargs in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
            gen = torch.Generator().manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            opt = torch.optim.Adam(params, lr=1e-3, **kwargs)
            times = []
            for i in range(repeats + 2):
                t0 = time.perf_counter()
                opt.step()
                if i >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
            ms[name], finals[name] = statistics.median(times), params[0].detach()
        for name in ("foreach", "fused"):  # the same update
            torch.testing.assert_close(finals[name], finals["default"], rtol=1e-5, atol=1e-6)
        rows.append(
            f"| {n_threads} | {ms['default']:,.1f} | {ms['foreach']:,.1f} | {ms['fused']:,.1f} | "
            f"{ms['default'] / ms['fused']:.1f}x |"
        )
        print(rows[-1], flush=True)
    return rows


def training_table(beauty: str, threads: int, batches: int, workdir: Path) -> list[str]:
    from speed import epoch_seconds, run_train  # benchmarks/speed.py: one seqexp-train subprocess, its peak RSS

    args = SimpleNamespace(workdir=workdir, threads=threads, override=[])
    rows = [
        f"| model | softmax and Adam | s/epoch ({batches} batches, extrapolated) | train targets/s | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for model in ("bert4rec", "sasrec"):
        for path, extra in (
            ("neither", ["++model.loss.fused=false", "++model.optimizer.foreach=false"]),
            ("fused", []),
        ):
            res, rss, _ = run_train(
                f"fused-{model}-{path}",
                ["data=beauty", f"data.path={beauty}", f"model={model}", "trainer.max_epochs=1",
                 f"trainer.limit_train_batches={batches}", "trainer.save_checkpoint=false", "trainer.precision=no",
                 "eval.sample_users=256", *extra],
                args,
            )  # fmt: skip
            targets_s = res["history"][0]["train/targets_per_second"]
            rows.append(f"| {model} | {path} | {epoch_seconds(res):,.0f} | {targets_s:,.0f} | {rss:,.0f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beauty", help="folder holding beauty.txt: also time training (skipped when not given)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads for the loss table")
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per loss and shape")
    ap.add_argument("--batches", type=int, default=40, help="training batches per Beauty run")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/seqexp-fused"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    t0 = time.perf_counter()
    lines = [
        "# Fused CPU paths: the full softmax with its gradient, and torch's fused Adam",
        "",
        f"Command: `python benchmarks/fused_cpu.py{' --beauty ' + args.beauty if args.beauty else ''} "
        f"--threads {' '.join(map(str, args.threads))} --repeats {args.repeats} --batches {args.batches}`  ",
        f"Machine: {platform.machine()} {platform.processor() or 'cpu'}, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}.",
        "",
        "## The loss alone (forward + backward, D = 64, fp32)",
        "",
        *loss_table(args.threads, args.repeats),
        "",
        "## One Adam step (a Beauty-sized model: 3.7M parameters in 41 tensors)",
        "",
        *adam_table(args.threads, args.repeats),
        "",
    ]
    if args.beauty:
        lines += [
            f"## Training on Amazon Beauty ({max(args.threads)} threads, fp32, one run at a time)",
            "",
            *training_table(args.beauty, max(args.threads), args.batches, args.workdir),
            "",
        ]
    lines.append(f"Total {time.perf_counter() - t0:,.0f} s.")
    emit(
        "\n".join(lines),
        args.out or ROOT / "benchmarks" / "results" / "fused_cpu.md",
    )


if __name__ == "__main__":
    main()
