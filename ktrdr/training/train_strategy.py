"""StrategyTrainer: the long-lived public facade of training.
See docs/architecture.md: the executor and the facade.

Behind ``USE_TRAINING_EXECUTOR`` (or, when unset, ``TRAINING_EXECUTOR_ROLLOUT_PERCENT``) it either
delegates to ``TrainingExecutor`` or runs its own reference orchestration: a straight-line
sequence of the same step functions, kept independent on purpose so that the executor can be
compared against it (``make compare-paths``). Both give identical results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.async_infrastructure.progress import TRAINING_STEPS, GenericProgressManager
from ktrdr.config.features import feature_history_bars, feature_names, indicator_history_bars
from ktrdr.config.loader import StrategySource
from ktrdr.errors import CancellationError, KtrdrError, TrainingError
from ktrdr.store.manifest import data_fingerprint
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.store.model_storage import ModelStorage
from ktrdr.training.artifact_building import build_artifact
from ktrdr.training.data_loading import load_training_data
from ktrdr.training.data_split import split_data
from ktrdr.training.device_detection import detect_training_device
from ktrdr.training.evaluation import evaluate_model
from ktrdr.training.executor import LAST_CANCELLABLE_STEP, TrainingExecutor
from ktrdr.training.feature_engineering import engineer_features
from ktrdr.training.feature_importance import calculate_feature_importance
from ktrdr.training.feature_scaling import fit_scaler, scaled_arrays
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators
from ktrdr.training.label_generation import generate_labels
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import TRAINING_LOCK, ModelTrainer, ProgressCallback
from ktrdr.training.progress_integration import TrainingProgressIntegrator, symbol_progress
from ktrdr.training.result_building import (
    attach_saved_model,
    build_results,
    training_metrics,
    validate_training_result,
)
from ktrdr.training.rollout import execution_path_for
from ktrdr.training.run_spec import (
    EXECUTION_PATH,
    REFERENCE_PATH,
    RunSpec,
    TrainingRun,
    build_run_spec,
)
from ktrdr.training.threads import threads_for_training, torch_threads

logger = logging.getLogger(__name__)


class StrategyTrainer:
    """Train a strategy on one or more symbols and timeframes; see the module docstring."""

    def __init__(
        self,
        models_dir: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.data_dir = data_dir

    def train_multi_symbol_strategy(
        self,
        strategy_config: StrategySource,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        start_date: str,
        end_date: str,
        validation_split: float | None = None,
        data_mode: str = "local",
        progress_callback: ProgressCallback | None = None,
        cancellation_token: CancellationToken | None = None,
        progress_manager: GenericProgressManager | None = None,
        *,
        save: bool = True,
        device: str | None = None,
        threads: int | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build the run's spec (``build_run_spec``) and train it; the §9 result dict.

        ``train(spec)`` is the same with a spec built beforehand, and gives the artifact too.
        Raises what ``build_run_spec`` and ``train`` raise.
        """
        manager = progress_manager or GenericProgressManager()
        try:
            spec = build_run_spec(
                strategy_config,
                symbols,
                timeframes,
                start_date,
                end_date,
                overrides=overrides,
                save=save,
                threads=threads,
                device=device,
                data_dir=self.data_dir,
                models_dir=self.models_dir,
                validation_split=validation_split,
                data_mode=data_mode,
            )
        except KtrdrError as exc:
            manager.fail(str(exc))
            raise
        return self.train(spec, progress_callback, cancellation_token, manager).result

    def train(
        self,
        spec: RunSpec,
        progress_callback: ProgressCallback | None = None,
        cancellation_token: CancellationToken | None = None,
        progress_manager: GenericProgressManager | None = None,
    ) -> TrainingRun:
        """Train ``spec`` on the path the flag (or the rollout) chooses.

        Returns the result, the artifact and (with ``spec.save``) the saved version; with
        ``spec.save=False`` nothing is written. ``spec.models_dir``/``spec.data_dir`` are used
        as given (``StrategyTrainer``'s own folders apply to ``train_multi_symbol_strategy``).
        Raises the KtrdrError of the failing step, CancellationError when cancelled,
        StrategyConfigError for a bad flag value.
        """
        manager = progress_manager or GenericProgressManager()
        if execution_path_for(spec) == EXECUTION_PATH:
            executor = TrainingExecutor(
                progress_callback=progress_callback,
                cancellation_token=cancellation_token,
                progress_manager=manager,
            )
            return executor.run(spec)
        config = spec.strategy
        count = threads_for_training(
            config, len(feature_names(config, spec.timeframes)), spec.threads
        )
        with torch_threads(count):
            return self._train_reference(
                spec, progress_callback, cancellation_token, manager, count
            )

    def _train_reference(
        self,
        spec: RunSpec,
        progress_callback: ProgressCallback | None,
        token: CancellationToken | None,
        manager: GenericProgressManager,
        threads: int,
    ) -> TrainingRun:
        config = spec.strategy
        symbols, timeframes = list(spec.symbols), list(spec.timeframes)
        start_date, end_date = spec.start_date, spec.end_date
        storage = ModelStorage(spec.models_dir)
        started = datetime.now(UTC)
        step = 0

        def begin(number: int) -> None:
            nonlocal step
            if number <= LAST_CANCELLABLE_STEP:
                check_cancelled(token, f"step {number}")
            step = number
            manager.start_step(number, TRAINING_STEPS[number - 1])
            logger.info("Step %d/12: %s", number, TRAINING_STEPS[number - 1])

        try:
            device = detect_training_device(spec.device)
            base = timeframes[0]
            training = config["training"]
            if spec.save:
                storage.check_can_save(config["name"], symbols, timeframes)
            begin(1)
            history = indicator_history_bars(config) + feature_history_bars(config)
            bars = load_training_data(
                symbols,
                timeframes,
                start_date,
                end_date,
                data_dir=spec.data_dir,
                history_bars=history,
            )
            fingerprint = data_fingerprint(bars)
            data_warnings: list[str] = []
            begin(2)
            indicators = {
                s: calculate_indicators(bars[s], config, symbol=s)
                for s in symbol_progress(manager, symbols, token, "step 2")
            }
            begin(3)
            fuzzy = {
                s: generate_fuzzy_memberships(indicators[s], config)
                for s in symbol_progress(manager, symbols, token, "step 3")
            }
            begin(4)
            features = {
                s: engineer_features(
                    fuzzy[s],
                    indicators[s],
                    bars[s],
                    config,
                    start_date=start_date,
                    end_date=end_date,
                    symbol=s,
                    warnings=data_warnings,
                )
                for s in symbol_progress(manager, symbols, token, "step 4")
            }
            del indicators, fuzzy  # what step 4 consumed: released before the split copies rows
            begin(5)
            labels = {
                s: generate_labels(bars[s][base], config, timeframe=base)
                for s in symbol_progress(manager, symbols, token, "step 5")
            }
            del bars  # fingerprinted in step 1; nothing after the labels reads bars
            begin(6)
            splits = split_data(
                {s: (features[s], labels[s]) for s in symbols},
                config,
                validation_split=spec.validation_split,
                test_split_warnings=spec.test_split_warnings,
            )
            del features, labels  # the splits hold every row now
            scaler = (
                fit_scaler(splits.train.features)
                if config["model"]["features"]["scale_features"]
                else None
            )

            x_train, y_train = scaled_arrays(splits.train.features, splits.train.labels, scaler)
            x_val, y_val = scaled_arrays(
                splits.validation.features, splits.validation.labels, scaler
            )
            x_test, y_test = scaled_arrays(splits.test.features, splits.test.labels, scaler)
            splits = splits.without_features()  # the arrays above are all that trains
            begin(7)
            integrator = TrainingProgressIntegrator(manager).create_callback()

            def report(epoch: int, total: int, metrics: dict[str, Any]) -> None:
                if progress_callback is not None:
                    progress_callback(epoch, total, metrics)
                integrator(epoch, total, metrics)

            with TRAINING_LOCK:
                seed_everything(int(training["seed"]))
                model = create_model(x_train.shape[1], config)
                outcome = ModelTrainer(training, report, token, device).train(
                    model, x_train, y_train, x_val, y_val
                )
            begin(8)
            majority = int(np.bincount(y_train, minlength=3).argmax())
            test_metrics = evaluate_model(model, x_test, y_test, device, majority_class=majority)
            per_symbol: dict[str, Any] = {}
            if len(symbols) > 1:
                owners = splits.test.labels.index.get_level_values("symbol")
                for symbol in symbols:
                    mask = owners == symbol
                    if not mask.any():  # a symbol whose bars all fall before the test period
                        continue
                    per_symbol[symbol] = evaluate_model(
                        model, x_test[mask], y_test[mask], device, majority_class=majority
                    )
            begin(9)
            importance, spread = calculate_feature_importance(
                model,
                x_val,
                y_val,
                list(splits.feature_names),
                int(training["seed"]),
                int(training["feature_importance"]["repeats"]),
                device,
                cancellation_token=token,
            )
            metrics = {
                "training_metrics": training_metrics(outcome, int(training["epochs"])),
                "test_metrics": test_metrics,
                "feature_importance": importance,
                "feature_importance_spread": spread,
                "per_symbol_test_metrics": per_symbol,
            }
            begin(10)
            artifact = build_artifact(
                model=model,
                strategy_config=config,
                symbols=symbols,
                timeframes=timeframes,
                splits=splits,
                scaler=scaler,
                fingerprint=fingerprint,
                metrics=metrics,
                overrides=spec.overrides,
            )
            draft = build_results(
                strategy_config=config,
                symbols=symbols,
                timeframes=timeframes,
                requested_start=start_date,
                requested_end=end_date,
                splits=splits,
                metrics=metrics,
                saved=None,
                device=outcome.device,
                execution_path=REFERENCE_PATH,
                started=started,
                torch_threads=threads,
                data_warnings=data_warnings,
                weights_digest=state_dict_digest(artifact.state_dict),
            )
            validate_training_result(draft)  # before the save: a failed run leaves no model
            saved = storage.save_model(artifact) if spec.save else None
            begin(11)
            result = attach_saved_model(draft, saved)
            validate_training_result(result)
            begin(12)
            manager.complete()
            return TrainingRun(result, artifact, saved)
        except CancellationError as exc:
            manager.cancelled(str(exc))
            raise
        except KtrdrError as exc:
            manager.fail(str(exc))
            raise
        except Exception as exc:
            message = f"training failed in step {step}/12: {exc!r}"
            manager.fail(message)
            raise TrainingError(message) from exc
