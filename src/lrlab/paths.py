"""Run-directory naming: OmegaConf resolvers used by the ``hydra.run`` / ``hydra.sweep`` keys in conf/train.yaml.

Registered when the CLI module is imported, before Hydra resolves its output directories.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

RECORD_NAME = "metrics.json"  # each run's machine-readable record (lrlab.record)


def fresh_dir(path: str) -> str:
    """``path`` itself if it is free, else ``path-1``, ``path-2``, …: a new run never lands in an old run's dir.

    Registered with ``use_cache=True``: Hydra resolves ``hydra.run.dir`` several times per run (and copies the
    cache into every job of a sweep), and all of them must see the same answer although the dir exists by then.
    """
    candidate, n = path, 0
    while os.path.exists(candidate) and os.listdir(candidate):
        n += 1
        candidate = f"{path}-{n}"
    return candidate


def job_dirname(override_dirname: str, job_num: int) -> str:
    """A sweep job's dir: its overrides (``optimizer.lr=0.1,scheduler=cosine``), or ``job<N>`` when it has none."""
    name = override_dirname.replace(os.sep, "_")
    return name if name else f"job{job_num}"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("lrlab.fresh_dir", fresh_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lrlab.job_dirname", job_dirname, replace=True)
