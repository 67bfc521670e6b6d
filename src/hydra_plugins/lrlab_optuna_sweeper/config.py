"""The sweeper's settings, registered as ``hydra/sweeper=lrlab_optuna`` (conf/hparams_search/*.yaml uses it).

No ``from __future__ import annotations`` here: OmegaConf reads these types at run time.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class PrunerConf:
    """Optuna's MedianPruner: stop a trial whose intermediate value is worse than the median of earlier trials."""

    n_startup_trials: int = 3   # trials that are never pruned (the median needs company)
    n_warmup_steps: int = 1     # epochs of each trial that are never pruned
    enabled: bool = True


@dataclass
class LrlabOptunaSweeperConf:
    _target_: str = "hydra_plugins.lrlab_optuna_sweeper.optuna_sweeper.LrlabOptunaSweeper"
    study_name: str = "lrlab"
    # Optuna storage URL; sqlite keeps the study on disk so a rerun adds trials to it. null: in memory, no resume.
    storage: Optional[str] = None
    direction: str = "maximize"           # maximize | minimize (max | min also accepted)
    n_trials: int = 10                    # trials to run in this invocation (added to any in the study already)
    n_jobs: int = 1                       # trials launched together per batch
    seed: Optional[int] = None            # seeds the TPE sampler
    # search space: config key -> Hydra sweep syntax, e.g. "tag(log, interval(1e-4, 1.0))" or "choice(sgd, adam)"
    params: Dict[str, Any] = field(default_factory=dict)
    pruner: PrunerConf = field(default_factory=PrunerConf)


ConfigStore.instance().store(group="hydra/sweeper", name="lrlab_optuna", node=LrlabOptunaSweeperConf, provider="lrlab")
