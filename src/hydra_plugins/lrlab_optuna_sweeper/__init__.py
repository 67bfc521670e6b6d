"""lrlab's Optuna sweeper for Hydra (``hydra/sweeper=lrlab_optuna``), built on Optuna's ask-and-tell API.

The upstream hydra-optuna-sweeper pins optuna<3, whose sqlite storage fails under SQLAlchemy 2, and cannot prune
(its jobs never see their trial). This one runs on current Optuna, keeps its study in persistent storage that a
rerun resumes, and hands each job its trial so the job can report per-epoch metrics and be pruned.
"""
