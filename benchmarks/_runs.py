"""What the training benchmarks share: reuse a finished run, or train one in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from seqexp.evaluation.protocol import NO_RESULT_CHANGE

ROOT = Path(__file__).resolve().parents[1]


def loss_overrides(model: str, loss: str) -> list[str]:
    """Overrides that train `model` with conf/model/loss/<loss>.yaml ("full": the full softmax). A card whose loss is
    a defaults entry (esasrec) swaps it with `model/loss=...`; the others hold an inline full softmax, which
    `+model/loss=...` replaces (and "full" needs no override)."""
    card = yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())
    if any(isinstance(entry, dict) and "loss" in entry for entry in card.get("defaults", [])):
        return [f"model/loss={loss}"]
    return [] if loss == "full" else [f"+model/loss={loss}"]


def values_not_composed(config: DictConfig | dict, overrides: list[str]) -> list[str]:
    """The `key=value` overrides whose value is not what `config` holds at that key (parsed as Hydra parses them:
    3e-3 is 0.003, null is None, and True is not 1). A later override of a key replaces an earlier one, as in Hydra;
    group choices (`model=`, `+model/loss=`), deletions (`~key`) and `hydra.` keys are not config values: skipped."""
    config = OmegaConf.create(config) if isinstance(config, dict) else config
    parser, last = OverridesParser.create(), {}
    for override in overrides:
        parsed = parser.parse_override(override)
        key = parsed.key_or_group
        if not (parsed.is_delete() or key.startswith("hydra.") or is_group(override)):
            last[key] = (override, parsed.value())
    return [
        override
        for key, (override, value) in last.items()
        if not _same_value(OmegaConf.select(config, key, default="<absent>"), value)
    ]


def is_group(override: str) -> bool:
    """A config-group choice (`model=sasrec`, `+model/loss=sampled`), not a config value."""
    return (ROOT / "conf" / override.lstrip("+~").split("=", 1)[0]).is_dir()


def _same_value(composed: object, asked: object) -> bool:
    """Equal and of the same kind: True is not 1, False is not 0."""
    return composed == asked and isinstance(composed, bool) == isinstance(asked, bool)


def finished(run_dir: Path) -> dict | None:
    """The run's results.json when it completed, else None."""
    results = run_dir / "results.json"
    if results.exists() and (r := json.loads(results.read_text())).get("status") == "completed":
        return r
    return None


# never a reason to refuse a finished run: what changes no number it reports, and the time budget (its callers
# compare that themselves: tune_beauty continues a budget-stopped trial given more)
NEUTRAL = (*NO_RESULT_CHANGE, "trainer.max_minutes")


def before_they_existed() -> dict[str, object]:
    """Config keys added after runs were written, with the value that gives the behaviour before them (the resume
    check's list, and the plateau decay, which is not part of a run's identity)."""
    from seqexp.app.resume import ADDED_LATER

    return {**ADDED_LATER, "trainer.plateau_lr_factor": None, "trainer.plateau_decays": 1}


def finished_as_asked(run_dir: Path, overrides: list[str]) -> dict | None:
    """The run's results.json when it completed with these overrides' values (data.path compared as a file, not as
    text), else None (not finished). A finished run of other settings, found by its dir name, is refused with a
    SystemExit naming them: formerly it was reused, and the results file printed the new command above its numbers."""
    done = finished(run_dir)
    if done is None:
        return None
    asked = [o for o in overrides if not o.lstrip("+~").startswith(NEUTRAL)]
    config = OmegaConf.create(done.get("config") or {})
    for key, value in before_they_existed().items():  # a run from before a key existed ran with its old behaviour
        if OmegaConf.select(config, key, default="<absent>") == "<absent>":
            OmegaConf.update(config, key, value, force_add=True)
    differ = values_not_composed(config, [o for o in asked if not o.startswith("data.path=")])
    for override in (o for o in asked if o.startswith("data.path=")):
        ran = OmegaConf.select(config, "data.path", default=None)
        if ran is None or Path(str(ran)).resolve() != Path(override.split("=", 1)[1]).resolve():
            differ.append(override)
    if differ:
        raise SystemExit(
            f"{run_dir} holds a finished run of other settings (its config has not {' '.join(differ)}); move it "
            f"away or choose another --workdir, so that this command's results are its own"
        )
    return done


def train(overrides: list[str], threads: int, label: str) -> bool:
    """`python -m seqexp.app.train <overrides>` with `threads` OpenMP threads; False (and its stderr) on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "seqexp.app.train", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        print(f"{label} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    return proc.returncode == 0
