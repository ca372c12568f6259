"""``ktrdr.train_strategy``: the one-call entry point (DESIGN.md §9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ktrdr.config.loader import StrategySource
from ktrdr.errors import ExecutionModeError
from ktrdr.training.train_strategy import StrategyTrainer, resolve_strategy

EXECUTION_MODES = ("local", "host")


def train_strategy(
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start_date: str,
    end_date: str,
    strategy_config: StrategySource,
    execution_mode: str = "local",
    **kwargs: Any,
) -> dict[str, Any]:
    """Train ``strategy_config`` (a path, a dict, or a name in KTRDR_STRATEGIES_DIR) and save it.

    Keyword arguments go to ``StrategyTrainer`` (``models_dir``, ``data_dir``) and to
    ``train_multi_symbol_strategy`` (``validation_split``, ``progress_callback``,
    ``cancellation_token``, ``progress_manager``, ``save``, ``device``). Returns the §9 result.
    Raises ExecutionModeError for a mode this installation cannot run.
    """
    if execution_mode not in EXECUTION_MODES:
        raise ExecutionModeError(
            f"execution_mode={execution_mode!r} is not valid; use {' or '.join(EXECUTION_MODES)}"
        )
    if execution_mode == "host":
        raise ExecutionModeError(
            "execution_mode='host' needs the training host service, which is not part of this "
            "ktrdr yet; use execution_mode='local'"
        )
    trainer = StrategyTrainer(
        models_dir=kwargs.pop("models_dir", None), data_dir=kwargs.pop("data_dir", None)
    )
    return trainer.train_multi_symbol_strategy(
        resolve_strategy(strategy_config), symbols, timeframes, start_date, end_date, **kwargs
    )
