"""A sweep's output without its sweeper's noise (``hydra.callbacks`` in configs/search/optuna.yaml)."""

import logging
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class QuietOptuna(Callback):
    """Before the Optuna sweeper starts: alembic's seven ``setup plugin …`` lines (optuna imports
    alembic) are dropped, and off a terminal optuna's messages go through mgnet's log handlers,
    plain, instead of optuna's own stderr handler with its ANSI colour codes."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if sys.stderr.isatty():
            return
        import optuna

        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()
