"""TrainingExecutor: runs the twelve pipeline steps in order, reimplementing none.
See docs/architecture.md: the executor and the facade.

Each step runs across all symbols before the next begins. Cancellation is checked before every
step up to saving (and by the trainer before every batch); every failure goes through one place
that marks the operation failed or cancelled and re-raises. Nothing is written before step 10, so
a cancelled or failed run leaves no model behind, and a run that saved its model completes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ktrdr.async_infrastructure.cancellation import CancellationToken, check_cancelled
from ktrdr.async_infrastructure.progress import TRAINING_STEPS, GenericProgressManager
from ktrdr.config.features import feature_history_bars, feature_names, indicator_history_bars
from ktrdr.errors import CancellationError, KtrdrError, TrainingError
from ktrdr.store.manifest import data_fingerprint
from ktrdr.store.model_artifact import state_dict_digest
from ktrdr.store.model_storage import ModelStorage
from ktrdr.training.artifact_building import build_artifact
from ktrdr.training.data_loading import load_training_data
from ktrdr.training.data_split import DataSplits, split_data
from ktrdr.training.device_detection import detect_training_device
from ktrdr.training.evaluation import evaluate_model
from ktrdr.training.feature_engineering import engineer_features
from ktrdr.training.feature_importance import calculate_feature_importance
from ktrdr.training.feature_scaling import fit_scaler, scale_in_place
from ktrdr.training.fuzzy_generation import generate_fuzzy_memberships
from ktrdr.training.indicator_calculation import calculate_indicators
from ktrdr.training.label_generation import generate_labels
from ktrdr.training.memory import return_freed_memory
from ktrdr.training.model_creation import create_model, seed_everything
from ktrdr.training.model_training import (
    TRAINING_LOCK,
    ModelTrainer,
    ProgressCallback,
    TrainingOutcome,
)
from ktrdr.training.progress_integration import TrainingProgressIntegrator, symbol_progress
from ktrdr.training.result_building import (
    attach_saved_model,
    build_results,
    training_metrics,
    validate_training_result,
)
from ktrdr.training.run_spec import EXECUTION_PATH, RunSpec, TrainingRun, build_run_spec
from ktrdr.training.threads import threads_for_training, torch_threads

logger = logging.getLogger(__name__)

# Once step 10 has saved the model, a late cancel would report "cancelled" for a run that left a
# model on disk; from there the run completes.
LAST_CANCELLABLE_STEP = 10


class TrainingExecutor:
    """Orchestrates the step functions for one training run.

    ``run(spec)`` trains the checked ``RunSpec`` (``ktrdr.training.run_spec``) and returns a
    ``TrainingRun``. ``execute(...)`` is the older form: ``config`` holds ``strategy_config``
    (a path or dict) and optionally ``data_dir``, ``device`` and ``threads``, and ``execute``
    builds the spec from them and returns the result dict. ``model_storage=None`` means
    ``ModelStorage(spec.models_dir)``.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        progress_callback: ProgressCallback | None = None,
        cancellation_token: CancellationToken | None = None,
        model_storage: ModelStorage | None = None,
        progress_manager: GenericProgressManager | None = None,
    ) -> None:
        self.config = dict(config or {})
        self.progress_callback = progress_callback
        self.cancellation_token = cancellation_token
        self.model_storage = model_storage
        self.progress_manager = progress_manager or GenericProgressManager()

    def execute(
        self,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        start_date: str,
        end_date: str,
        validation_split: float | None = None,
        data_mode: str = "local",
        save: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build the spec from ``config`` and these arguments, train it; the §9 result dict.

        Raises what ``build_run_spec`` and ``run`` raise.
        """
        try:
            if kwargs:
                raise TrainingError(f"unknown execute() argument(s): {', '.join(sorted(kwargs))}")
            if "strategy_config" not in self.config:
                raise TrainingError("TrainingExecutor.execute needs config['strategy_config']")
            spec = build_run_spec(
                self.config["strategy_config"],
                symbols,
                timeframes,
                start_date,
                end_date,
                save=save,
                threads=self.config.get("threads"),
                device=self.config.get("device"),
                data_dir=self.config.get("data_dir"),
                validation_split=validation_split,
                data_mode=data_mode,
            )
        except KtrdrError as exc:
            self.progress_manager.fail(str(exc))
            raise
        return self.run(spec).result

    def run(self, spec: RunSpec) -> TrainingRun:
        """Train, evaluate and (with ``spec.save``) store one model.

        Raises the KtrdrError of the step that failed (unexpected errors become TrainingError),
        or CancellationError; a run that raises leaves no model.
        """
        self._step_number = 0
        try:
            threads = threads_for_training(
                spec.strategy,
                len(feature_names(spec.strategy, spec.timeframes)),
                spec.threads,
            )
            with torch_threads(threads):
                return self._execute(spec, threads)
        except CancellationError as exc:
            self.progress_manager.cancelled(str(exc))
            logger.info("training cancelled: %s", exc)
            raise
        except KtrdrError as exc:
            self.progress_manager.fail(str(exc))
            raise
        except Exception as exc:
            step = self._step_number
            name = TRAINING_STEPS[step - 1] if step else "setup"
            message = f"training failed in step {step}/12 ({name}): {exc!r}"
            self.progress_manager.fail(message)
            raise TrainingError(message) from exc

    @contextmanager
    def _step(self, number: int) -> Iterator[None]:
        if number <= LAST_CANCELLABLE_STEP:
            check_cancelled(self.cancellation_token, f"step {number}")
        self._step_number = number
        name = TRAINING_STEPS[number - 1]
        self.progress_manager.start_step(number, name)
        logger.info("Step %d/12: %s", number, name)
        yield

    def _per_symbol(self, symbols: Sequence[str]) -> Iterator[str]:
        return symbol_progress(
            self.progress_manager, symbols, self.cancellation_token, f"step {self._step_number}"
        )

    def _execute(self, spec: RunSpec, threads: int) -> TrainingRun:
        started = datetime.now(UTC)
        device = detect_training_device(spec.device)
        storage = self.model_storage or ModelStorage(spec.models_dir)
        if spec.save:  # fail before the expensive work, not after it
            storage.check_can_save(spec.name, list(spec.symbols), list(spec.timeframes))
        data_warnings: list[str] = []
        features, labels, fingerprint = self._prepare(spec, data_warnings)
        splits, scaler, arrays = self._split(spec, features, labels)
        model, outcome = self._train(spec, arrays, device)
        metrics = self._evaluate(spec, model, outcome, splits, arrays, device)
        with self._step(10):
            artifact = build_artifact(
                model=model,
                strategy_config=spec.strategy,
                symbols=list(spec.symbols),
                timeframes=list(spec.timeframes),
                splits=splits,
                scaler=scaler,
                fingerprint=fingerprint,
                metrics=metrics,
                overrides=spec.overrides,
            )
            # Everything the run reports is built and validated before the version becomes
            # visible: a run that fails here must not leave a model behind.
            draft = build_results(
                strategy_config=spec.strategy,
                symbols=list(spec.symbols),
                timeframes=list(spec.timeframes),
                requested_start=spec.start_date,
                requested_end=spec.end_date,
                splits=splits,
                metrics=metrics,
                saved=None,
                device=outcome.device,
                execution_path=EXECUTION_PATH,
                started=started,
                torch_threads=threads,
                data_warnings=data_warnings,
                weights_digest=state_dict_digest(artifact.state_dict),
            )
            validate_training_result(draft)
            saved = storage.save_model(artifact) if spec.save else None
        with self._step(11):
            result = attach_saved_model(draft, saved)
            validate_training_result(result)
        with self._step(12):
            self.progress_manager.complete()
        return TrainingRun(result, artifact, saved)

    def _prepare(
        self, spec: RunSpec, data_warnings: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Steps 1-5: each symbol's features and labels, and the fingerprint of the bars; what
        the steps leave out is appended to ``data_warnings``."""
        config, symbols = spec.strategy, list(spec.symbols)
        base = spec.timeframes[0]
        with self._step(1):
            history = indicator_history_bars(config) + feature_history_bars(config)
            bars = load_training_data(
                symbols,
                list(spec.timeframes),
                spec.start_date,
                spec.end_date,
                data_dir=spec.data_dir,
                history_bars=history,
            )
            fingerprint = data_fingerprint(bars)
        with self._step(2):
            indicators = {
                s: calculate_indicators(bars[s], config, symbol=s)
                for s in self._per_symbol(symbols)
            }
        with self._step(3):
            fuzzy = {
                s: generate_fuzzy_memberships(indicators[s], config)
                for s in self._per_symbol(symbols)
            }
        with self._step(4):
            features = {
                s: engineer_features(
                    fuzzy[s],
                    indicators[s],
                    bars[s],
                    config,
                    start_date=spec.start_date,
                    end_date=spec.end_date,
                    symbol=s,
                    warnings=data_warnings,
                )
                for s in self._per_symbol(symbols)
            }
        del indicators, fuzzy  # what step 4 consumed: released before the split copies rows
        return_freed_memory()
        with self._step(5):
            labels = {
                s: generate_labels(bars[s][base], config, timeframe=base)
                for s in self._per_symbol(symbols)
            }
        del bars  # fingerprinted in step 1; nothing after the labels reads bars
        return_freed_memory()
        return features, labels, fingerprint

    def _split(
        self, spec: RunSpec, features: dict[str, Any], labels: dict[str, Any]
    ) -> tuple[DataSplits, Any, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Step 6: the chronological split, the scaler fitted on train, the arrays that train.

        Takes the frames out of ``features`` and ``labels`` (the caller's dicts end empty).
        """
        config = spec.strategy
        with self._step(6):
            # The split takes the only reference to each symbol's frame and drops it once its
            # rows are copied: features and split matrices never exist whole side by side.
            handed_over = {s: (features.pop(s), labels.pop(s)) for s in spec.symbols}
            splits = split_data(
                handed_over,
                config,
                validation_split=spec.validation_split,
                release_inputs=True,
                test_split_warnings=spec.test_split_warnings,
            )
            scaler = (
                fit_scaler(splits.train.features)
                if config["model"]["features"]["scale_features"]
                else None
            )
            # The run owns the split matrices: they are scaled where they lie and train as
            # they are, so no second copy of the features ever exists.
            arrays = {
                name: (
                    part.values
                    if scaler is None
                    else scale_in_place(part.values, part.feature_names, scaler),
                    part.labels.to_numpy(dtype=np.int64),
                )
                for name, part in (
                    ("train", splits.train),
                    ("validation", splits.validation),
                    ("test", splits.test),
                )
            }
            return splits.without_features(), scaler, arrays  # the arrays are all that trains

    def _train(
        self, spec: RunSpec, arrays: dict[str, tuple[np.ndarray, np.ndarray]], device: str
    ) -> tuple[Any, TrainingOutcome]:
        """Step 7: the seeded model, trained with early stopping on the validation split."""
        config = spec.strategy
        with self._step(7):
            callback = _chain(
                self.progress_callback,
                TrainingProgressIntegrator(self.progress_manager).create_callback(),
            )
            (x_train, y_train), (x_val, y_val) = arrays["train"], arrays["validation"]
            with TRAINING_LOCK:
                seed_everything(int(config["training"]["seed"]))
                model = create_model(x_train.shape[1], config)
                outcome = ModelTrainer(
                    config["training"], callback, self.cancellation_token, device
                ).train(model, x_train, y_train, x_val, y_val)
        return model, outcome

    def _evaluate(
        self,
        spec: RunSpec,
        model: Any,
        outcome: TrainingOutcome,
        splits: DataSplits,
        arrays: dict[str, tuple[np.ndarray, np.ndarray]],
        device: str,
    ) -> dict[str, Any]:
        """Steps 8-9: test metrics (per symbol too), feature importance, the metrics dict."""
        config = spec.strategy
        (_, y_train), (x_val, y_val), (x_test, y_test) = (
            arrays["train"],
            arrays["validation"],
            arrays["test"],
        )
        with self._step(8):
            majority = int(np.bincount(y_train, minlength=3).argmax())
            test_metrics = evaluate_model(model, x_test, y_test, device, majority_class=majority)
            per_symbol = (
                _per_symbol_metrics(model, splits, x_test, y_test, device, majority)
                if len(spec.symbols) > 1
                else {}
            )
        with self._step(9):
            importance, spread = calculate_feature_importance(
                model,
                x_val,
                y_val,
                list(splits.feature_names),
                int(config["training"]["seed"]),
                int(config["training"]["feature_importance"]["repeats"]),
                device,
                cancellation_token=self.cancellation_token,
            )
        return {
            "training_metrics": training_metrics(outcome, int(config["training"]["epochs"])),
            "test_metrics": test_metrics,
            "feature_importance": importance,
            "feature_importance_spread": spread,
            "per_symbol_test_metrics": per_symbol,
        }


def _per_symbol_metrics(
    model: Any,
    splits: DataSplits,
    x_test: np.ndarray,
    y_test: np.ndarray,
    device: str,
    majority: int,
) -> dict[str, dict[str, Any]]:
    owners = splits.test.labels.index.get_level_values("symbol")
    return {
        symbol: evaluate_model(
            model,
            x_test[owners == symbol],
            y_test[owners == symbol],
            device,
            majority_class=majority,
        )
        for symbol in splits.symbols
        if (owners == symbol).any()  # a symbol whose bars all fall before the test period
    }


def _chain(*callbacks: ProgressCallback | None) -> ProgressCallback:
    active = [c for c in callbacks if c is not None]

    def chained(epoch: int, total: int, metrics: dict[str, Any]) -> None:
        for callback in active:
            callback(epoch, total, metrics)

    return chained
