"""The sweeper itself: ask Optuna for trials, launch them through Hydra's launcher, tell Optuna the results."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("lrlab")

DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def distribution(key: str, value: Any) -> Any:
    """An Optuna distribution from a parsed Hydra sweep: choice(...), range(...), interval(...), tag(log, ...)."""
    import optuna.distributions as d

    if isinstance(value, ChoiceSweep):
        return d.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        return d.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step or 1))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return d.IntDistribution(value.start, value.end, log=log_scale)
        return d.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"hydra.sweeper.params.{key}: {value!r} is not choice(...), range(...) or interval(...)")


def parse_sweep(key: str, spec: str) -> Any:
    return OverridesParser.create().parse_overrides([f"{key}={spec}"])[0].value()


class LrlabOptunaSweeper(Sweeper):
    def __init__(self, study_name: str, storage: str | None, direction: str, n_trials: int, n_jobs: int,
                 seed: int | None, params: dict[str, Any], pruner: Any):
        self.study_name = study_name
        self.storage = storage
        self.direction = DIRECTIONS[str(direction)]
        self.n_trials = n_trials
        self.n_jobs = max(1, n_jobs)
        self.seed = seed
        self.params = dict(params or {})
        self.pruner = pruner

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _study(self) -> Any:
        import optuna

        if self.storage and self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=self.pruner.n_startup_trials,
                                              n_warmup_steps=self.pruner.n_warmup_steps)
                  if self.pruner.enabled else optuna.pruners.NopPruner())
        return optuna.create_study(study_name=self.study_name, storage=self.storage, load_if_exists=True,
                                   direction=self.direction, sampler=optuna.samplers.TPESampler(seed=self.seed),
                                   pruner=pruner)

    def sweep(self, arguments: list[str]) -> None:

        space = {key: distribution(key, parse_sweep(key, str(spec))) for key, spec in self.params.items()}
        fixed = []
        for override in OverridesParser.create().parse_overrides(arguments):
            if override.is_sweep_override():  # a sweep on the command line joins the search space
                space[override.get_key_element()] = distribution(override.get_key_element(), override.value())
            else:
                fixed.append(override.input_line)
        study = self._study()
        already = len(study.trials)
        log.info("optuna study %r (%s): %d trials so far, %d more", self.study_name, self.storage or "in memory",
                 already, self.n_trials)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        done = 0
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [[*fixed, *(f"{k}={v}" for k, v in t.params.items()), self._trial_override(t)] for t in trials]
            results = self.launcher.launch(batch, initial_job_idx=already + done)
            for trial, result in zip(trials, results):
                self._tell(study, trial, result)
            done += len(trials)
        self._write_results(study)

    def _trial_override(self, trial: Any) -> str:
        storage = f"'{self.storage}'" if self.storage else "null"
        pruner = (f"{{n_startup_trials: {self.pruner.n_startup_trials}, n_warmup_steps: {self.pruner.n_warmup_steps}}}"
                  if self.pruner.enabled else "null")
        # Optuna has no public accessor for a trial's storage id; the job needs it to rebuild its Trial. The job
        # also rebuilds the pruner: a loaded study has Optuna's default one, not the sweeper's.
        return (f"trial={{study: '{self.study_name}', storage: {storage}, number: {trial.number}, "
                f"id: {trial._trial_id}, pruner: {pruner}}}")

    def _tell(self, study: Any, trial: Any, result: Any) -> None:
        import optuna

        record_path = Path(result.hydra_cfg.hydra.runtime.output_dir) / "metrics.json"
        status = json.loads(record_path.read_text()).get("status") if record_path.exists() else "failed"
        value = result.return_value
        if status == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif status in ("completed", "diverged") and value is not None and not math.isnan(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.info("trial %d: %s %s", trial.number, status, "" if value is None else f"value={value:.4g}")

    def _write_results(self, study: Any) -> None:
        import optuna

        finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        results: dict[str, Any] = {"study": self.study_name, "storage": self.storage, "trials": len(study.trials),
                                   "completed": len(finished)}
        if finished:
            results |= {"best_value": study.best_value, "best_params": study.best_params,
                        "best_trial": study.best_trial.number}
            log.info("best so far: trial %d, value %.4g, %s", study.best_trial.number, study.best_value,
                     " ".join(f"{k}={v}" for k, v in study.best_params.items()))
        OmegaConf.save(OmegaConf.create(results), Path(str(self.config.hydra.sweep.dir)) / "optimization_results.yaml")
