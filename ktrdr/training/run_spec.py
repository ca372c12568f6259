"""What one training run is: a ``RunSpec``, checked once where the run is asked for.

Every entry point (``ktrdr train``, ``ktrdr.train_strategy``, the backend API, the training host,
sweeps, walk-forward) builds its runs with ``build_run_spec`` and nothing else; everything below
it (the facade, the executor, the worker processes, the run backends) trusts what the spec
guarantees and does not check it again. What needs the bars (coverage, gaps) or the machine
(whether a requested device exists here) is checked where the run executes, in step 1 and at the
start of the run.

A spec is frozen and picklable: it crosses into worker processes and Ray tasks as it is.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr import settings
from ktrdr.config import load_strategy_config
from ktrdr.config.loader import StrategySource
from ktrdr.data.timeframes import sort_timeframes
from ktrdr.data.validation import check_date_range, check_names, check_symbol, show
from ktrdr.errors import DataError, StrategyConfigError, TrainingError
from ktrdr.training.data_loading import DATA_MODES
from ktrdr.training.data_split import split_fractions

if TYPE_CHECKING:
    from ktrdr.store.model_artifact import ModelArtifact
    from ktrdr.store.model_storage import SavedModel

# cpu, cuda, cuda:N or mps: whether it exists is known only on the machine that trains.
_DEVICE = re.compile(r"^(cpu|mps|cuda|cuda:[0-9]{1,2})$")
# A run id names a host session and an operation, and may become part of a file name.
RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)
# The two orchestrations a run can take: TrainingExecutor, or the reference inside
# StrategyTrainer.
EXECUTION_PATH = "training_executor"
REFERENCE_PATH = "strategy_trainer"
EXECUTION_PATHS = (EXECUTION_PATH, REFERENCE_PATH)
MAX_THREADS = 256


@dataclass(frozen=True)
class RunSpec:
    """One training run, already checked (build it with ``build_run_spec``).

    ``strategy`` is the resolved strategy dict with ``overrides`` applied (``overrides`` is kept
    for the record: a sweep writes it into the manifest). ``timeframes`` are shortest first.
    ``threads=None`` lets the run choose torch's thread count; ``device=None`` picks the best
    device where it runs. ``data_dir``/``models_dir`` ``None`` mean ``KTRDR_DATA_DIR`` and
    ``KTRDR_MODELS_DIR`` where the run executes. ``test_split_warnings`` is off for a run judged
    on later bars, not on its own test split.
    """

    strategy: dict[str, Any]
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start_date: str
    end_date: str
    overrides: dict[str, Any] = field(default_factory=dict)
    save: bool = True
    threads: int | None = None
    device: str | None = None
    data_dir: str | None = None
    models_dir: str | None = None
    validation_split: float | None = None
    run_id: str = ""
    test_split_warnings: bool = True
    # The orchestration to train with (``training_executor`` or ``strategy_trainer``), chosen
    # where the run was started; None: the flag or the rollout decides where it runs.
    execution_path: str | None = None

    @property
    def name(self) -> str:
        """The strategy's name."""
        return str(self.strategy["name"])

    @property
    def seed(self) -> int:
        return int(self.strategy["training"]["seed"])


@dataclass(frozen=True)
class TrainingRun:
    """What one finished training gives: the result dict, the artifact (saved or not) and,
    when the spec said ``save``, where it was saved."""

    result: dict[str, Any]
    artifact: ModelArtifact
    saved: SavedModel | None = None


def resolve_strategy(strategy: StrategySource) -> StrategySource:
    """A strategy given by name resolves to ``{KTRDR_STRATEGIES_DIR}/{name}.yaml``."""
    if (
        isinstance(strategy, str)
        and not strategy.endswith((".yaml", ".yml"))
        and "/" not in strategy
        and not Path(strategy).exists()
    ):
        return settings.strategies_dir() / f"{strategy}.yaml"
    return strategy


def build_run_spec(
    strategy: StrategySource,
    symbols: Sequence[str] | None = None,
    timeframes: Sequence[str] | None = None,
    start_date: object = None,
    end_date: object = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    save: bool = True,
    threads: int | None = None,
    device: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    validation_split: float | None = None,
    data_mode: str = "local",
    run_id: str | None = None,
    test_split_warnings: bool = True,
    execution_path: str | None = None,
) -> RunSpec:
    """The checked spec of one run: every check that needs no bars, done here and only here.

    ``strategy`` is a path, a name in ``KTRDR_STRATEGIES_DIR`` or a dict; ``overrides`` are
    dotted keys (``{"training.epochs": 5}``). ``symbols``/``timeframes`` default to the
    strategy's ``training_data``. Raises StrategyConfigError for the strategy or an override,
    DataError for symbols, timeframes, dates or the data mode, TrainingError for a thread count,
    device or run id that cannot be. ``test_split_warnings=False`` is for a run that is judged
    on bars after its window, never on its own test split (a walk-forward fold): the split's
    warnings about that test share are then left out of its log and its result.
    ``execution_path`` (one of ``EXECUTION_PATHS``) is the path chosen where the run was
    started; None leaves the choice to the flag or the rollout where it runs.
    """
    config = load_strategy_config(resolve_strategy(strategy), dict(overrides or {}) or None)
    chosen_symbols = check_names(
        config["training_data"]["symbols"] if symbols is None else symbols, "symbols", "EURUSD"
    )
    if not chosen_symbols:
        raise DataError("no symbols given; name at least one, e.g. EURUSD")
    for symbol in chosen_symbols:
        check_symbol(symbol)
    if len(set(chosen_symbols)) != len(chosen_symbols):
        raise DataError(f"symbols are listed more than once: {', '.join(chosen_symbols)}")
    chosen_timeframes = sort_timeframes(
        check_names(
            config["training_data"]["timeframes"] if timeframes is None else timeframes,
            "timeframes",
            "1h",
        )
    )
    if not chosen_timeframes:
        raise DataError("no timeframes given; name at least one, e.g. 1h")
    check_date_range(start_date, end_date)  # type: ignore[arg-type]
    if data_mode not in DATA_MODES:
        raise DataError(f"data_mode={data_mode!r} is not supported; use {', '.join(DATA_MODES)}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS
    ):
        raise TrainingError(f"threads={show(threads)}: use a whole number from 1 to {MAX_THREADS}")
    if device is not None and not (isinstance(device, str) and _DEVICE.fullmatch(device.lower())):
        raise TrainingError(f"device={show(device)} is not a device; use cpu, cuda, cuda:N or mps")
    if validation_split is not None:
        if isinstance(validation_split, bool) or not isinstance(validation_split, int | float):
            raise StrategyConfigError(
                f"validation_split={show(validation_split)}: use a share such as 0.15"
            )
        split_fractions(config, validation_split)  # out of range, or contradicts data_split
    if execution_path is not None and execution_path not in EXECUTION_PATHS:
        raise TrainingError(
            f"execution path {show(execution_path)}: use one of {', '.join(EXECUTION_PATHS)}"
        )
    if run_id is not None and not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
        raise TrainingError(f"run id {show(run_id)}: use 1-64 letters, digits, '_' or '-'")
    return RunSpec(
        strategy=config,
        symbols=tuple(chosen_symbols),
        timeframes=tuple(chosen_timeframes),
        start_date=str(start_date),
        end_date=str(end_date),
        overrides=dict(overrides or {}),
        save=bool(save),
        threads=threads,
        device=None if device is None else device.lower(),
        data_dir=None if data_dir is None else str(data_dir),
        models_dir=None if models_dir is None else str(models_dir),
        validation_split=None if validation_split is None else float(validation_split),
        run_id=run_id or uuid.uuid4().hex,
        test_split_warnings=bool(test_split_warnings),
        execution_path=execution_path,
    )
