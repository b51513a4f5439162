"""One job on two "nodes": two separate `torchrun --nnodes=2 --nproc_per_node=1` agents that meet through a c10d
rendezvous on loopback, as two machines would (each machine runs its own agent; here both are subprocesses of
this test). One run dir (given to both: each agent has its own start time, so `${seqexp.run_stamp:}` would name
two), rank 0's results.json, and test metrics equal to a single-process evaluation of the saved checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, compose_train, evaluate_checkpoint

pytestmark = pytest.mark.slow
DDP_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(node_rank: int, port: int, run_dir: Path, overrides: list[str]) -> list[str]:
    """What one machine of a 2-node job runs (docs/scale.md): its own agent, the shared rendezvous endpoint."""
    torchrun = Path(sys.executable).with_name("torchrun")
    exe = str(torchrun if torchrun.exists() else shutil.which("torchrun"))
    return [
        exe,
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}",
        "--rdzv_id=seqexp-multinode-test",
        f"--node_rank={node_rank}",  # c10d assigns ranks itself; kept as a cluster script would pass it
        "--max_restarts=0",
        "-m",
        "seqexp.app.train",
        *overrides,
        f"hydra.run.dir={run_dir}",
    ]


def test_two_torchrun_nodes_with_a_c10d_rendezvous_match_a_single_process_evaluation(tmp_path):
    overrides = [*TINY, "trainer.max_epochs=2", "trainer.device=cpu"]
    run_dir = tmp_path / "logs" / "train" / "runs" / "two-nodes"
    clean = {k: v for k, v in os.environ.items() if k not in DDP_VARIABLES}
    env = {**clean, "SEQEXP_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    port = free_port()
    nodes = [
        subprocess.Popen(
            node_command(rank, port, run_dir, overrides),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=150)[0] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for rank, (node, out) in enumerate(zip(nodes, outputs, strict=True)):
        assert node.returncode == 0, f"node {rank}:\n{out[-4000:]}"

    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert runs == [run_dir]  # one run dir for the whole job, none named by either agent's start time
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "completed" and res["training"]["processes"] == 2
    assert res["training"]["device"].startswith("cpu")

    # the saved checkpoint, evaluated in this single process, gives the same test metrics
    cfg = compose_train(tmp_path, *overrides, f"paths.data_dir={tmp_path / 'data'}")
    single = evaluate_checkpoint(run_dir, cfg, tmp_path / "other-cache")
    assert len(single.users) == len(res["per_user"]["values"])  # both nodes' shards gathered: every test user
    for name, value in single.metrics.items():
        assert res["metrics"][f"test/{name}"] == pytest.approx(value, abs=1e-6), name
    assert res["per_user"]["values"] == pytest.approx(single.per_user["ndcg@10"].tolist(), abs=1e-6)
