"""``ktrdr.train_strategy``: the one-call entry point.

See docs/architecture.md: the executor and the facade.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ktrdr import settings
from ktrdr.async_infrastructure.cancellation import CancellationToken
from ktrdr.async_infrastructure.progress import GenericProgressManager
from ktrdr.config.loader import StrategySource
from ktrdr.errors import CancellationError, ExecutionModeError
from ktrdr.runs.execution_mode import ExecutionModeSelector, check_mode
from ktrdr.runs.ledger import RunLedger, RunRecorder, open_ledger, with_chosen_path
from ktrdr.runs.worker import peak_rss_bytes
from ktrdr.training.model_training import ProgressCallback
from ktrdr.training.run_spec import RunSpec, build_run_spec
from ktrdr.training.train_strategy import StrategyTrainer

# What train_strategy's keyword arguments may be: the spec's, and how to follow the run.
_SPEC_ARGUMENTS = frozenset(
    {"models_dir", "data_dir", "validation_split", "save", "device", "threads", "overrides"}
)
_RUN_ARGUMENTS = frozenset({"progress_callback", "cancellation_token", "progress_manager"})


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
    Keyword arguments: the run spec's (``overrides``, e.g. ``{"training.epochs": 5}``,
    ``models_dir``, ``data_dir``, ``validation_split``, ``save``, ``device``, ``threads``; see
    ``build_run_spec``) and how to follow the run (``progress_callback``,
    ``cancellation_token``, ``progress_manager``). Returns the §9 result. Raises what
    ``build_run_spec`` raises, ExecutionModeError for a mode this installation cannot run,
    TypeError for an unknown keyword.
    """
    check_mode(execution_mode)
    host_url = kwargs.pop("host_url", None)
    require_gpu = bool(kwargs.pop("require_gpu", False))
    unknown = sorted(set(kwargs) - _SPEC_ARGUMENTS - _RUN_ARGUMENTS)
    if unknown:
        raise TypeError(f"train_strategy() got unknown keyword(s): {', '.join(unknown)}")
    spec = build_run_spec(
        strategy_config,
        symbols,
        timeframes,
        start_date,
        end_date,
        **{key: kwargs[key] for key in _SPEC_ARGUMENTS if key in kwargs},
    )
    return run_training(
        spec,
        execution_mode,
        host_url=host_url,
        require_gpu=require_gpu,
        progress_callback=kwargs.get("progress_callback"),
        cancellation_token=kwargs.get("cancellation_token"),
        progress_manager=kwargs.get("progress_manager"),
        validation_split_given="validation_split" in kwargs,
    )


def run_training(
    spec: RunSpec,
    execution_mode: str = "local",
    *,
    host_url: str | None = None,
    require_gpu: bool = False,
    progress_callback: ProgressCallback | None = None,
    cancellation_token: CancellationToken | None = None,
    progress_manager: GenericProgressManager | None = None,
    validation_split_given: bool = False,
) -> dict[str, Any]:
    """Train a checked spec where ``execution_mode`` says (see ``train_strategy``); the §9
    result. Raises ExecutionModeError for what a host run cannot take (``save=False``, a
    ``device``, a ``validation_split``, a ``progress_callback``)."""
    check_mode(execution_mode)
    spec = with_chosen_path(spec)
    ledger = open_ledger(spec.data_dir)
    if execution_mode != "local" or require_gpu:
        choice = ExecutionModeSelector(execution_mode, host_url).select(execution_mode, require_gpu)
        if choice.warning:
            warnings.warn(choice.warning, RuntimeWarning, stacklevel=3)
        if choice.mode == "host":
            from ktrdr.runs.host_mode import run_on_host

            unsupported = [
                name
                for name, given in (
                    ("save=False", not spec.save),
                    ("device", spec.device is not None),
                    ("validation_split", validation_split_given or spec.validation_split),
                    ("progress_callback", progress_callback is not None),
                )
                if given
            ]
            if unsupported:
                raise ExecutionModeError(
                    f"execution_mode='host' does not take {', '.join(unsupported)}"
                )
            return run_on_host(
                spec,
                host_url=settings.host_service_url(host_url),
                progress_manager=progress_manager,
                cancellation_token=cancellation_token,
                ledger=ledger,
            )
    return _train_here(spec, ledger, progress_callback, cancellation_token, progress_manager)


def _train_here(
    spec: RunSpec,
    ledger: RunLedger | None,
    progress_callback: ProgressCallback | None,
    cancellation_token: CancellationToken | None,
    progress_manager: GenericProgressManager | None,
) -> dict[str, Any]:
    """Train in this process, the run followed into its ledger row however it ends."""
    recorder = RunRecorder(ledger, spec, mode="local", backend="in_process")
    manager = progress_manager or GenericProgressManager(operation_id=spec.run_id)
    try:
        with recorder.following(manager, cancellation_token):
            run = StrategyTrainer().train(spec, progress_callback, cancellation_token, manager)
    except (CancellationError, KeyboardInterrupt) as exc:
        recorder.finish("cancelled", error_type="CancellationError", error=str(exc))
        raise
    except BaseException as exc:
        recorder.finish("failed", error_type=type(exc).__name__, error=str(exc))
        raise
    recorder.finish("completed", result=run.result, peak_rss_bytes=peak_rss_bytes())
    return run.result
