"""Multirun bookkeeping: a Hydra callback that sums up a sweep from its runs' metrics.json files.

It reads the files rather than in-process state, so it sums up the same way under any launcher (basic, joblib,
submitit): each job may have run in another process or on another machine.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lrlab.paths import RECORD_NAME

log = logging.getLogger("lrlab")


def job_records(sweep_dir: Path) -> dict[Path, dict[str, Any]]:
    """Run dir → its metrics.json, for every run below ``sweep_dir`` that has one."""
    records = {}
    for path in sorted(sweep_dir.rglob(RECORD_NAME)):
        try:
            records[path.parent] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return records


class SweepSummary(Callback):
    """At the end of ``-m``: one line of counts per status; exit status 1 and one line per failed job if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = job_records(sweep_dir)
        counts = Counter(r.get("status", "unknown") for r in records.values())
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        log.info("sweep %s: %s. Report: lrlab-report %s", sweep_dir, summary or "no runs", sweep_dir)
        failed = {d: r for d, r in records.items() if r.get("status") == "failed"}
        if failed:
            for run_dir, record in failed.items():
                print(f"lrlab: failed: {run_dir.name}: {record.get('error', '?')}", file=sys.stderr)
            print(f"lrlab: error: {len(failed)} of {len(records)} jobs failed in {sweep_dir}", file=sys.stderr)
            sys.exit(1)
