"""``ktrdr.train_strategy``: the one-call entry point.

See docs/architecture.md: the executor and the facade.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ktrdr import settings
from ktrdr.config.loader import StrategySource
from ktrdr.training.execution_mode import ExecutionModeSelector, check_mode
from ktrdr.training.train_strategy import StrategyTrainer, resolve_strategy


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

    ``execution_mode`` is ``local``, ``host`` (on the training host service at ``host_url``,
    default ``TRAINING_HOST_SERVICE_URL``; the model is saved here) or ``auto``; a host that
    does not answer means a local run with a warning, unless ``require_gpu`` is set. On the
    host, the host's own bar store is read (``data_dir`` applies to local runs only).
    Keyword arguments go to ``StrategyTrainer`` (``models_dir``, ``data_dir``) and to
    ``train_multi_symbol_strategy`` (``validation_split``, ``progress_callback``,
    ``cancellation_token``, ``progress_manager``, ``save``, ``device``, ``threads``). Returns the
    §9 result. Raises ExecutionModeError for a mode this installation cannot run.
    """
    check_mode(execution_mode)
    host_url = kwargs.pop("host_url", None)
    require_gpu = bool(kwargs.pop("require_gpu", False))
    strategy = resolve_strategy(strategy_config)
    if execution_mode != "local" or require_gpu:
        choice = ExecutionModeSelector(execution_mode, host_url).select(execution_mode, require_gpu)
        if choice.warning:
            warnings.warn(choice.warning, RuntimeWarning, stacklevel=2)
        if choice.mode == "host":
            from ktrdr.training.host_mode import run_on_host

            unsupported = sorted(
                set(kwargs)
                - {"models_dir", "progress_manager", "cancellation_token", "threads", "data_dir"}
            )
            if unsupported:
                from ktrdr.errors import ExecutionModeError

                raise ExecutionModeError(
                    f"execution_mode='host' does not take {', '.join(unsupported)}"
                )
            return run_on_host(
                strategy,
                symbols,
                timeframes,
                start_date,
                end_date,
                host_url=settings.host_service_url(host_url),
                models_dir=kwargs.get("models_dir"),
                progress_manager=kwargs.get("progress_manager"),
                cancellation_token=kwargs.get("cancellation_token"),
                threads=kwargs.get("threads"),
            )
    trainer = StrategyTrainer(
        models_dir=kwargs.pop("models_dir", None), data_dir=kwargs.pop("data_dir", None)
    )
    return trainer.train_multi_symbol_strategy(
        strategy, symbols, timeframes, start_date, end_date, **kwargs
    )
