"""One job on two processes: `torchrun --nproc_per_node 2` on CPU (gloo). One run dir, one W&B run, and test
metrics equal to a single-process evaluation of the saved checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, compose_train, evaluate_checkpoint
from seqexp.model.recommender import build_model
from seqexp.ranks import shard_bounds

pytestmark = pytest.mark.slow
DDP_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def test_shards_tile_the_rows_in_order():
    for n, size in ((10, 3), (2, 4), (0, 2), (7, 1)):
        blocks = [shard_bounds(n, r, size) for r in range(size)]
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))


def test_torchrun_two_processes_match_a_single_process_evaluation(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    overrides = [o for o in TINY if o != "logger=none"] + ["logger=wandb", "trainer.max_epochs=3"]
    env = {**os.environ, "SEQEXP_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun if torchrun.exists() else shutil.which("torchrun")), "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, "-m", "seqexp.app.train", *overrides], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, runs  # both ranks share one run dir
    run = runs[0]
    res = json.loads((run / "results.json").read_text())
    assert res["status"] == "completed" and res["training"]["processes"] == 2
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run, rank 0's

    # the saved checkpoint, evaluated in this single process, gives the same test metrics
    cfg = compose_train(tmp_path, *overrides, f"paths.data_dir={tmp_path / 'data'}")
    single = evaluate_checkpoint(run, cfg, tmp_path / "other-cache")
    for name, value in single.metrics.items():
        assert res["metrics"][f"test/{name}"] == pytest.approx(value, abs=1e-6), name
    assert res["per_user"]["values"] == pytest.approx(single.per_user["ndcg@10"].tolist(), abs=1e-6)


def test_slurm_tasks_launched_by_submitit_become_ranks(monkeypatch):
    from seqexp.training.distributed import export_slurm_environment

    # a private copy of the environment: RANK/WORLD_SIZE must not leak into later tests (they would start DDP)
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in DDP_VARIABLES})
    slurm = {
        "SLURM_JOB_ID": "123",
        "SLURM_NTASKS": "2",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "1",
    }
    os.environ.update(slurm)
    export_slurm_environment()
    assert "RANK" not in os.environ  # plain srun, not submitit: left to torchrun
    os.environ["SUBMITIT_EXECUTOR"] = "slurm"
    export_slurm_environment()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("1", "2", "1")
    assert os.environ["MASTER_ADDR"] == "gpu07" and int(os.environ["MASTER_PORT"]) > 0


@pytest.mark.parametrize(
    "name", [p.stem for p in sorted((Path(__file__).resolve().parents[1] / "conf" / "model").glob("*.yaml"))]
)
def test_every_trainable_parameter_gets_a_gradient_as_ddp_requires(tmp_path, name):
    """DDP (torchrun) stops at the second step when a parameter got no gradient in the first ("Expected to have
    finished reduction in the prior iteration"); one training step here shows which card would."""
    import torch

    cfg = compose_train(tmp_path, f"model={name}", "model.embedding_dim=16", "data.max_len=10")
    model = build_model(cfg.model, 40, torch.ones(41))
    windows = torch.randint(1, 41, (4, 11), generator=torch.Generator().manual_seed(0))
    inputs, targets, side = model.training_batch(windows)
    model(inputs, targets, side).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == [], unused
