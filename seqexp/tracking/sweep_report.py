"""A Hydra callback that ends every multirun with a report: how many jobs completed, which failed and why.

Jobs never kill their siblings (a failing job records results.json with status "failed" and its traceback in
its own run dir, see seqexp.tracking.failures); this report is where the sweep says so. It is written to
<sweep dir>/sweep_summary.json and printed; with fail_on_error the command then exits with status 1.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seqexp.io import write_json

log = logging.getLogger(__name__)


STATUS_DIR = ".job_status"  # <sweep dir>/.job_status/<job num>.json: each job's outcome in this execution


def job_status_path(sweep_dir: Path, job_num: int | str) -> Path:
    return sweep_dir / STATUS_DIR / f"{job_num}.json"


def summarise(sweep_dir: Path, started: float | None = None) -> dict[str, Any]:
    """Every job of a sweep (a folder Hydra wrote a .hydra/ into, or a job's own status record) with its status
    and error. With `started` (this execution's start time), job folders left from an earlier execution of the
    same sweep dir are ignored, and each job's own status record (completed, failed, refused) wins over a
    results.json that may belong to an earlier run in the same folder."""
    statuses = {}
    for record in sorted((sweep_dir / STATUS_DIR).glob("*.json")):
        entry = json.loads(record.read_text())
        statuses[str(Path(entry["dir"]).resolve())] = entry
    jobs = {}
    for hydra_dir in sorted(sweep_dir.rglob(".hydra"), key=lambda p: str(p)):
        job_dir, overrides_file = hydra_dir.parent, hydra_dir / "overrides.yaml"
        if started is not None and overrides_file.exists() and overrides_file.stat().st_mtime < started - 1:
            continue  # a job of an earlier execution of this sweep dir
        overrides = (
            [str(o) for o in yaml.safe_load(overrides_file.read_text()) or []] if overrides_file.exists() else []
        )
        jobs[str(job_dir.resolve())] = {
            "dir": str(job_dir),
            **_status_of(job_dir, statuses, started),
            "overrides": overrides,
        }
    for key, entry in statuses.items():  # jobs without a .hydra/ folder (hydra.output_subdir=null) count too
        if key not in jobs:
            jobs[key] = {"dir": entry["dir"], "status": entry["status"], "error": entry.get("error"),
                         "overrides": entry.get("overrides", [])}  # fmt: skip
    jobs = sorted(jobs.values(), key=lambda j: j["dir"])
    failed = [j for j in jobs if j["status"] != "completed"]
    return {"sweep_dir": str(sweep_dir), "jobs": len(jobs), "completed": len(jobs) - len(failed), "failed": failed}


def _status_of(job_dir: Path, statuses: dict[str, dict], started: float | None) -> dict[str, Any]:
    own = statuses.get(str(job_dir.resolve()))
    if own is not None:
        return {"status": own["status"], "error": own.get("error")}
    results = job_dir / "results.json"
    if results.exists() and (started is None or results.stat().st_mtime >= started - 1):
        res = json.loads(results.read_text())
        return {"status": res.get("status"), "error": res.get("error")}
    return {"status": "no results.json from this sweep (killed, or still running?)", "error": None}


class SweepReport(Callback):
    def __init__(self, fail_on_error: bool = True) -> None:
        self.fail_on_error = fail_on_error
        self.started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Forget the job records of an earlier execution of the same sweep dir."""
        self.started = time.time()
        shutil.rmtree(Path(str(config.hydra.sweep.dir)) / STATUS_DIR, ignore_errors=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.exists():
            return
        summary = summarise(sweep_dir, self.started)
        write_json(sweep_dir / "sweep_summary.json", summary)
        msg = f"sweep {sweep_dir}: {summary['completed']} of {summary['jobs']} jobs completed"
        if not summary["failed"]:
            log.info(msg)
            return
        lines = [msg + f", {len(summary['failed'])} failed:"]
        for job in summary["failed"]:
            lines.append(f"  {job['dir']}  [{' '.join(job['overrides'])}]")
            lines.append(f"      {job.get('error') or job['status']}")
        text = "\n".join(lines)
        log.error(text)
        if self.fail_on_error:
            raise SystemExit(1)
