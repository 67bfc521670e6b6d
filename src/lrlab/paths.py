"""Run-directory naming: OmegaConf resolvers used by the ``hydra.run`` / ``hydra.sweep`` keys in conf/train.yaml.

Registered when the CLI module is imported, before Hydra resolves its output directories.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

RECORD_NAME = "metrics.json"  # each run's machine-readable record (lrlab.record)
ATTEMPTS_DIR = "attempts"     # inside a run dir: earlier failed attempts, set aside by a resumed rerun


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


def run_dir(resume: object, default: str) -> str:
    """``hydra.run.dir``: the dir given to ``resume=<run dir>`` (continue that run in place), else a fresh one."""
    if isinstance(resume, str) and resume:
        return os.path.abspath(os.path.expanduser(resume))
    return fresh_dir(default)


def hydra_subdir(output_dir: str) -> str | None:
    """``hydra.output_subdir``: ``.hydra`` — unless the dir already holds a run's, which is never overwritten."""
    return None if os.path.exists(os.path.join(output_dir, ".hydra", "config.yaml")) else ".hydra"


def job_dirname(override_dirname: str, job_num: int) -> str:
    """A sweep job's dir: its overrides (``optimizer.lr=0.1,scheduler=cosine``), or ``job<N>`` when it has none."""
    name = override_dirname.replace(os.sep, "_")
    return name if name else f"job{job_num}"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("lrlab.fresh_dir", fresh_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lrlab.run_dir", run_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lrlab.hydra_subdir", hydra_subdir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lrlab.job_dirname", job_dirname, replace=True)
