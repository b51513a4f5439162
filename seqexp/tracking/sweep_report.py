"""A Hydra callback that ends every multirun with a report: how many jobs completed, which failed and why.

Jobs never kill their siblings (a failing job records results.json with status "failed" and its traceback in
its own run dir, see seqexp.tracking.failures); this report is where the sweep says so. It is written to
<sweep dir>/sweep_summary.json and printed; with fail_on_error the command then exits with status 1.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seqexp.io import write_json

log = logging.getLogger(__name__)


def summarise(sweep_dir: Path) -> dict[str, Any]:
    """Every job folder of a sweep (the ones Hydra wrote a .hydra/ into) with its status and error."""
    jobs = []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra"), key=lambda p: str(p)):
        job_dir = hydra_dir.parent
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = (
            [str(o) for o in yaml.safe_load(overrides_file.read_text()) or []] if overrides_file.exists() else []
        )
        results = job_dir / "results.json"
        if results.exists():
            res = json.loads(results.read_text())
            jobs.append(
                {"dir": str(job_dir), "status": res.get("status"), "error": res.get("error"), "overrides": overrides}
            )
        else:
            jobs.append(
                {"dir": str(job_dir), "status": "no results.json (killed, or still running?)", "overrides": overrides}
            )
    failed = [j for j in jobs if j["status"] != "completed"]
    return {"sweep_dir": str(sweep_dir), "jobs": len(jobs), "completed": len(jobs) - len(failed), "failed": failed}


class SweepReport(Callback):
    def __init__(self, fail_on_error: bool = True) -> None:
        self.fail_on_error = fail_on_error

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.exists():
            return
        summary = summarise(sweep_dir)
        write_json(sweep_dir / "sweep_summary.json", summary)
        msg = f"sweep {sweep_dir}: {summary['completed']} of {summary['jobs']} jobs completed"
        if not summary["failed"]:
            log.info(msg)
            return
        lines = [msg + f", {len(summary['failed'])} failed:"]
        for job in summary["failed"]:
            lines.append(f"  {job['dir']}  [{' '.join(job['overrides'])}]")
            lines.append(f"      {job.get('error') or job['status']}  (traceback: {job['dir']}/traceback.txt)")
        text = "\n".join(lines)
        log.error(text)
        if self.fail_on_error:
            raise SystemExit(1)
