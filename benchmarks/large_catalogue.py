"""Large catalogues on CPU: (1) peak memory and time of one forward+backward of FullSoftmax vs ChunkedFullSoftmax,
(2) the cost of a training step with a sampled loss as the catalogue grows, dense Adam vs a sparse item table
with SparseItemOptimizer.

    python benchmarks/large_catalogue.py [--full-at-500k] [--threads 1]

Every measurement is its own subprocess, so that its peak RSS (resource.getrusage ru_maxrss) is its own. The
full softmax holds several (P, N + 1) float32 matrices (logits, log-softmax, their gradient): at P = 2048 and
N = 500k that is ~4 GB each, more than this shared machine's budget, so by default it runs at N = 100k and the
table gives its slope; `--full-at-500k` runs it as well (needs ~13 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from _markdown import emit  # benchmarks/_markdown.py: run as a script, its folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
P, D = 2048, 64  # positions per batch and hidden size of part (1)
NOTES = [
    "Reading: (1) the full softmax's extra memory is ~2.8 copies of the (P, N + 1) float32 logits (2.3 GB at 100k,",
    "so ~11.7 GB at 500k: not run by default, see --full-at-500k); the chunked loss adds the table's gradient plus",
    "O(P x chunk) and gives the same loss, at the same speed. (2) dense Adam's step grows with N (it reads and",
    "writes the whole table, its gradient and two moments); with a sparse table only the gathered rows move. What",
    "still grows with N in the sparse step is torch.multinomial over the (N + 1,) sampling probabilities.",
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def softmax_case(loss_name: str, n_items: int, chunk: int) -> dict:
    import torch

    from seqexp.model.losses import ChunkedFullSoftmax, FullSoftmax

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(P, D, generator=gen).requires_grad_()
    table = (torch.randn(n_items + 1, D, generator=gen) * 0.1).requires_grad_()
    targets = torch.randint(1, n_items + 1, (P,), generator=gen)
    loss_fn = FullSoftmax() if loss_name == "full" else ChunkedFullSoftmax(chunk)
    base = _peak_mb()
    t0 = time.perf_counter()
    loss = loss_fn(h, targets, table)
    loss.backward()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": _peak_mb(), "before_mb": base, "loss": float(loss.detach())}


def step_case(n_items: int, sparse: bool, steps: int, dim: int) -> dict:
    """Seconds per training step (forward, backward, clip, optimiser step) of a 1-layer GRU, sampled softmax."""
    import torch

    from seqexp.model.encoders.rnn import GRUEncoder
    from seqexp.model.losses import SampledSoftmax
    from seqexp.model.objectives import NextItemObjective
    from seqexp.model.recommender import SequenceRecommender
    from seqexp.model.sparse_items import SparseItemOptimizer, clip_grad_norm_, enable_sparse_items, loss_table

    torch.manual_seed(0)
    model = SequenceRecommender(n_items, GRUEncoder(dim, 1), NextItemObjective(), loss=SampledSoftmax(1024))
    if sparse:
        enable_sparse_items(model)
        opt = SparseItemOptimizer(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    times = []
    for i in range(steps + 2):  # the first two steps (allocations, lazy state) are not timed
        windows = torch.randint(1, n_items + 1, (64, 21), generator=gen)  # (B, L + 1)
        inputs, targets = windows[:, :-1], windows[:, 1:]
        t0 = time.perf_counter()
        h = model.encode(inputs)  # (B, L, D)
        loss = model.loss(h.reshape(-1, dim), targets.reshape(-1), loss_table(model))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)  # as trainer.grad_clip=1.0 (the default)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"seconds": times[len(times) // 2], "peak_mb": _peak_mb()}


def _child(spec: dict, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--child", json.dumps(spec), "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def softmax_table(args: argparse.Namespace) -> list[str]:
    cases = [("full", 100_000), ("chunked", 100_000), ("chunked", 500_000)]
    if args.full_at_500k:
        cases.append(("full", 500_000))
    lines = [
        f"## (1) Exact cross-entropy, one forward + backward, P = {P} positions, D = {D}, chunk = {args.chunk}",
        "",
        "| loss | items N | seconds | peak RSS MB | RSS before the loss MB | loss value |",
        "|---|---|---|---|---|---|",
    ]
    for name, n in cases:
        r = _child({"part": "softmax", "loss": name, "n": n, "chunk": args.chunk}, args.threads)
        print(name, n, r, flush=True)
        lines.append(
            f"| {name} | {n:,} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['before_mb']:.0f} | {r['loss']:.4f} |"
        )
    return lines


def step_table(args: argparse.Namespace) -> list[str]:
    lines = [
        f"## (2) Training step, sampled softmax (1024 uniform negatives), GRU D = {args.dim}, batch 64 x 20, "
        f"grad clip 1.0; median of {args.steps} steps",
        "",
        "| items N | dense Adam s/step | sparse (SparseItemOptimizer) s/step| dense peak RSS MB | sparse peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for n in (54_542, 1_000_000, 4_200_000):
        dense = _child({"part": "step", "n": n, "sparse": False, "steps": args.steps, "dim": args.dim}, args.threads)
        sparse = _child({"part": "step", "n": n, "sparse": True, "steps": args.steps, "dim": args.dim}, args.threads)
        print(n, dense, sparse, flush=True)
        lines.append(
            f"| {n:,} | {dense['seconds']:.3f} | {sparse['seconds']:.3f} | {dense['peak_mb']:.0f} | "
            f"{sparse['peak_mb']:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--full-at-500k", action="store_true")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        spec = json.loads(args.child)
        if spec["part"] == "softmax":
            print(json.dumps(softmax_case(spec["loss"], spec["n"], spec["chunk"])))
        else:
            print(json.dumps(step_case(spec["n"], spec["sparse"], spec["steps"], spec["dim"])))
        return
    header = [
        "# Large catalogues: exact chunked softmax and sparse item tables (CPU)",
        "",
        f"Command: `python benchmarks/large_catalogue.py{' --full-at-500k' if args.full_at_500k else ''}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} shared cores, {args.threads} torch thread(s); "
        f"each row is its own process (peak RSS = resource.getrusage ru_maxrss, whole process incl. torch).",
        "",
    ]
    body = softmax_table(args) + [""] + step_table(args)
    load = os.getloadavg()[0]
    footer = ["", f"Load average at the end: {load:.1f} (other engineers' jobs share the cores).", "", *NOTES]
    emit("\n".join(header + body + footer) + "\n", ROOT / "benchmarks" / "results" / "large_catalogue.md")


if __name__ == "__main__":
    main()
