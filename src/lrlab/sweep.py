"""Multirun bookkeeping: Hydra callbacks that check a grid before it starts and sum it up when it ends.

The summary reads the runs' metrics.json files rather than in-process state, so it works the same under any
launcher (basic, joblib, submitit): each job may have run in another process or on another machine.
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

from lrlab.paths import ATTEMPTS_DIR, RECORD_NAME

log = logging.getLogger("lrlab")


def job_records(sweep_dir: Path) -> dict[Path, dict[str, Any]]:
    """Run dir → its metrics.json, for every run below ``sweep_dir`` that has one."""
    records = {}
    for path in sorted(sweep_dir.rglob(RECORD_NAME)):
        if ATTEMPTS_DIR in path.relative_to(sweep_dir).parts:
            continue
        try:
            records[path.parent] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return records


class SweepPreflight(Callback):
    """Before the first job of ``-m`` starts: compose and validate every point of the grid; any bad point stops the
    whole command at once (exit status 2) with one line per bad point, before anything is trained or written.

    Searched sweeps (Optuna) are checked with their fixed overrides: their points are only known as they are asked.
    When the jobs run in other processes (joblib, submitit, Ray), this process never trains: it checks that each
    target's package is installed without importing torch and Lightning (seconds), and each job checks the rest.
    """

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs: Any) -> None:
        from hydra import compose
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from lrlab.validate import problems

        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        if str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            points = [point for batch in BasicSweeper.split_arguments(parsed, None) for point in batch]
        else:
            points = [[o.input_line for o in parsed if not o.is_sweep_override()]]
        in_process = str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher")
        bad = []
        for point in points:
            found = problems(compose(config_name=config_name, overrides=[*point, "output_dir=unused"]), imports=in_process)
            bad += [(point, problem) for problem in found]
        if bad:
            for point, problem in bad:
                print(f"lrlab: bad grid point [{' '.join(point)}]: {problem}", file=sys.stderr)
            print(f"lrlab: error: {len({tuple(p) for p, _ in bad})} of {len(points)} grid points are invalid; "
                  "nothing was started", file=sys.stderr)
            sys.exit(2)


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
