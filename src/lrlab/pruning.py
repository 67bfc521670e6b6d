"""The job side of an Optuna search: report the objective after every validation, stop when the study prunes."""

from __future__ import annotations

import math
import pytorch_lightning as pl
from omegaconf import DictConfig


class TrialPruning(pl.Callback):
    """Reports ``metric`` to the trial the sweeper handed this job (``trial`` in the config); on prune, stops.

    ``trial``: {study, storage, number, id, pruner: MedianPruner arguments or null}.
    """

    def __init__(self, trial_cfg: DictConfig, metric: str):
        import optuna

        if not trial_cfg.storage:
            raise ValueError("trial.storage is null: pruning needs the study in a storage the job can open")
        pruner = (optuna.pruners.MedianPruner(**trial_cfg.pruner) if trial_cfg.get("pruner")
                  else optuna.pruners.NopPruner())
        study = optuna.load_study(study_name=trial_cfg.study, storage=trial_cfg.storage, pruner=pruner)
        self.trial = optuna.trial.Trial(study, trial_cfg.id)
        self.metric = metric
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.current_epoch
            trainer.should_stop = True

