"""Where seqexp's Hydra configs live: conf/ at the repository root (source checkout, editable install) or
seqexp/conf inside a wheel (pyproject.toml force-includes it). Importing it registers the resolvers those configs
use (seqexp.app.resolvers), so that a config composed with Hydra's compose API resolves (data.path of data=synthetic
needs one) whether or not seqexp.app.train was imported."""

from __future__ import annotations

from pathlib import Path

from seqexp.app.resolvers import register as _register_resolvers

_register_resolvers()


def _conf_dir() -> str:
    package = Path(__file__).resolve().parents[1]  # seqexp/
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").exists():
            return str(candidate)
    raise RuntimeError(f"seqexp configs not found next to {package}")


CONF_DIR = _conf_dir()
