"""Sweeps: the Ray launcher preset (parallel jobs, a failing one isolated), Optuna, and the W&B sweep specs."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import REPO, TINY, compose_train

SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
TINY_JOB = [o for o in TINY if not o.startswith("data.max_len")]


def _multirun(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEQEXP_ROOT": str(tmp_path), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "seqexp.app.train", "-m", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def _sweep_dir(tmp_path: Path, task: str = "train") -> Path:
    (sweep,) = (tmp_path / "logs" / task / "multiruns").iterdir()
    return sweep


@pytest.mark.slow
def test_ray_launcher_runs_jobs_in_parallel_and_isolates_a_failing_one(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    proc = _multirun(tmp_path, "hydra/launcher=ray", *TINY_JOB, "data.max_len=8,9,10,1")
    out = proc.stdout + proc.stderr
    assert "Ray Launcher is launching 4 jobs" in out
    assert proc.returncode == 1, out[-3000:]  # the sweep says a job failed ...
    sweep = _sweep_dir(tmp_path)
    results = {
        d.name: json.loads((d / "results.json").read_text())
        for d in sweep.iterdir()
        if d.is_dir() and not d.name.startswith(".")
    }
    statuses = sorted(r["status"] for r in results.values())
    assert statuses == ["completed", "completed", "completed", "failed"]  # ... after its siblings finished
    (failed,) = [name for name, r in results.items() if r["status"] == "failed"]
    assert "data.max_len=1" in results[failed]["error"] and "ConfigError" in results[failed]["error"]
    assert "Traceback" in (sweep / failed / "traceback.txt").read_text()
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert summary["jobs"] == 4 and summary["completed"] == 3 and len(summary["failed"]) == 1
    assert "data.max_len=1" in summary["failed"][0]["overrides"]
    assert "3 of 4 jobs completed, 1 failed" in out


@pytest.mark.slow
def test_optuna_search_runs_trials_and_persists_the_study(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    db = tmp_path / "optuna.db"
    proc = _multirun(
        tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage=sqlite:///{db}", *TINY
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    sweep = _sweep_dir(tmp_path, "hparams_search")
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {
        "model.optimizer.lr",
        "model.embedding_dropout",
        "model.optimizer.weight_decay",
    }
    trials = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert len(trials) == 3 and all(t["status"] == "completed" for t in trials)
    assert result["best_value"] == pytest.approx(max(t["metrics"]["valid/ndcg@10"] for t in trials))
    import optuna

    study = optuna.load_study(study_name="lstm-synthetic", storage=f"sqlite:///{db}")
    assert len(study.trials) == 3


def _sweep_overrides(spec: dict) -> list[list[str]]:
    """Every combination a W&B sweep spec can produce (grid values; ends of continuous ranges), as overrides."""
    choices = []
    for key, p in spec["parameters"].items():
        if "value" in p:
            options = [p["value"]]
        elif "values" in p:
            options = p["values"]
        else:
            options = [p["min"], p["max"]]
        choices.append([f"{key}={v}" for v in options])
    return [list(c) for c in itertools.product(*choices)]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_wandb_sweep_combination_composes_as_hydra_overrides(tmp_path, path):
    spec = yaml.safe_load(path.read_text())
    assert spec["method"] in ("grid", "random", "bayes") and spec["metric"]["name"] == "valid/ndcg@10"
    assert spec["command"][-3:] == ["-m", "seqexp.app.train", "${args_no_hyphens}"]
    combos = _sweep_overrides(spec)
    assert combos
    for overrides in combos:
        cfg = compose_train(tmp_path, *overrides)  # a typo in a key or an option fails here
        OmegaConf.resolve(cfg)
        for o in overrides:
            key, value = o.split("=", 1)
            if "." in key:  # a leaf value reaches the composed config
                assert str(OmegaConf.select(cfg, key)) == str(value), o


def test_agent_launcher_script_is_valid_bash():
    script = REPO / "sweeps" / "launch_agents.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert proc.returncode != 0 and "usage: launch_agents.sh" in proc.stderr


@pytest.mark.parametrize("visible, expected", [("", ["agent 1 on CPU"]), ("1", ["agent on GPU 1"]), (None, None)])
def test_agent_launcher_keeps_the_gpus_the_user_made_visible(tmp_path, visible, expected):
    """Formerly CUDA_VISIBLE_DEVICES="" (hide every GPU) was read as unset, and an agent started on every GPU."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text('#!/bin/sh\n[ "$1" = -L ] && echo "GPU 0" && exit 0\necho 0; echo 1\n')
    (bin_dir / "wandb").write_text('#!/bin/sh\necho "wandb $* CUDA=[$CUDA_VISIBLE_DEVICES]" >> "$LOG"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(tmp_path / "calls.log")}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.run(
        ["bash", str(REPO / "sweeps" / "launch_agents.sh"), "e/p/s"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == (expected or ["agent on GPU 0", "agent on GPU 1"])  # None: nvidia-smi's two
    calls = sorted((tmp_path / "calls.log").read_text().splitlines())
    cuda = {"": ["[]"], "1": ["[1]"], None: ["[0]", "[1]"]}[visible]
    assert calls == [f"wandb agent e/p/s CUDA={c}" for c in cuda]


@pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema")  # deliberate, see seqexp/resolvers.py
@pytest.mark.parametrize("launcher", ["ray", "slurm"])
def test_launcher_presets_compose_with_their_plugin_schema(tmp_path, launcher):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    import seqexp.app.train  # noqa: F401  (registers the seqexp.* resolvers, as the app does)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    hydra_launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    if launcher == "ray":
        assert hydra_launcher["_target_"].endswith("RayLauncher")
        assert hydra_launcher["ray"]["remote"]["num_gpus"] == (1 if __import__("torch").cuda.is_available() else 0)
        assert hydra_launcher["ray"]["remote"]["max_calls"] == 1
    else:
        assert hydra_launcher["_target_"].endswith("SlurmLauncher")
        assert hydra_launcher["gpus_per_node"] == 1 and hydra_launcher["partition"] is None
        assert hydra_launcher["submitit_folder"].endswith(".submitit/%j")


def test_jobs_without_a_hydra_folder_are_counted_from_their_status_records(tmp_path):
    """hydra.output_subdir=null writes no .hydra/: formerly the summary said "0 of 0 jobs completed" (exit 0)
    although both jobs had failed."""
    from seqexp.io import write_json
    from seqexp.tracking.sweep_report import job_status_path, summarise

    sweep = tmp_path / "sweep"
    for num, status in ((0, "failed"), (1, "completed"), (2, "failed")):
        error = "ConfigError: trainer.max_epochs=0 must be >= 1" if status == "failed" else None
        record = {"status": status, "error": error, "dir": str(sweep / str(num)), "overrides": [f"seed={num}"]}
        write_json(job_status_path(sweep, num), record)
    (sweep / "1" / ".hydra").mkdir(parents=True)  # one job with its folder: counted once
    (sweep / "1" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    summary = summarise(sweep)
    assert (summary["jobs"], summary["completed"]) == (3, 1)
    assert [(j["overrides"], j["error"]) for j in summary["failed"]] == [
        (["seed=0"], "ConfigError: trainer.max_epochs=0 must be >= 1"),
        (["seed=2"], "ConfigError: trainer.max_epochs=0 must be >= 1"),
    ]


def test_runs_started_in_the_same_second_get_their_own_run_dirs(monkeypatch):
    """W&B agents launched together: formerly one shared `<date>_<time>`, one was refused, and the other's .hydra/
    held the refused run's config. The process id keeps them apart; every torchrun rank still shares its agent's."""
    from seqexp.app import resolvers

    monkeypatch.setattr(resolvers.time, "strftime", lambda fmt, *when: "2026-12-03_15-42-25")
    monkeypatch.setattr(resolvers.socket, "gethostname", lambda: "node-a")
    monkeypatch.setattr(resolvers.os, "getpid", lambda: 111)
    first = resolvers.run_stamp()
    monkeypatch.setattr(resolvers.os, "getpid", lambda: 222)
    second = resolvers.run_stamp()
    monkeypatch.setattr(resolvers.socket, "gethostname", lambda: "node-b")  # another container, the same pid
    other_host = resolvers.run_stamp()
    assert first.startswith("2026-12-03_15-42-25_111-") and second.startswith("2026-12-03_15-42-25_222-")
    assert len({first, second, other_host}) == 3 and other_host.startswith("2026-12-03_15-42-25_222-")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    monkeypatch.setattr(resolvers.os, "getppid", lambda: 77)
    monkeypatch.setattr(resolvers, "_process_start_time", lambda pid: 1.0)
    assert resolvers.run_stamp() == f"2026-12-03_15-42-25_ddp77-{resolvers._host()}"  # every rank of the job
