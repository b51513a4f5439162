"""results.json: everything a comparison needs (written with seqexp.io.write_json)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = (
    "seqexp",
    "torch",
    "transformers",
    "accelerate",
    "hydra-core",
    "omegaconf",
    "wandb",
    "numpy",
    "pandas",
    "pyarrow",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
