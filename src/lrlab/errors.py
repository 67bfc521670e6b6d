"""User-facing errors: one line that names the config key, the value and what to do."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad setting. ``str(err)`` reads ``<key> <problem>``, e.g. ``optimizer.lr must be > 0 (got -0.1)``."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key} {problem}")
