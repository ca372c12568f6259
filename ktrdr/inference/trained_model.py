"""Load a saved model and predict from raw bars.

See docs/architecture.md: the artifact and the store.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ktrdr import settings
from ktrdr.data.gaps import describe_gaps, find_gaps
from ktrdr.data.validation import OHLCV_COLUMNS, check_feature_frame, check_ohlcv, parse_time
from ktrdr.errors import DataError, ModelStorageError
from ktrdr.indicators.registry import REGISTRY
from ktrdr.neural.classes import CLASS_NAMES
from ktrdr.neural.mlp import build_mlp
from ktrdr.store.model_artifact import ModelArtifact
from ktrdr.store.model_storage import ModelStorage
from ktrdr.store.scaler import ScalerParams
from ktrdr.training.evaluation import PREDICT_CHUNK, predict_logits
from ktrdr.training.feature_pipeline import build_features
from ktrdr.training.feature_scaling import apply_scaler
from ktrdr.training.threads import choose_threads, torch_threads

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("class", "class_id", "prob_buy", "prob_hold", "prob_sell")


class TrainedModel:
    """A trained model with what it needs to turn raw bars into predictions."""

    def __init__(
        self, artifact: ModelArtifact, path: Path | None = None, threads: int | None = None
    ) -> None:
        self.artifact = artifact
        self.path = path
        self.threads = threads  # torch's thread count for predict; None: ktrdr.training.threads
        self.model = build_mlp(artifact.architecture)
        try:
            self.model.load_state_dict(artifact.state_dict)
        except RuntimeError as exc:
            raise ModelStorageError(f"weights do not fit the architecture ({exc})") from exc
        self.model.eval()

    @property
    def manifest(self) -> dict[str, Any]:
        return self.artifact.manifest

    @property
    def metrics(self) -> dict[str, Any]:
        return self.artifact.metrics

    @property
    def strategy_config(self) -> dict[str, Any]:
        return self.artifact.config

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest["feature_names"])

    @property
    def timeframes(self) -> list[str]:
        return list(self.manifest["timeframes"])

    @property
    def base_timeframe(self) -> str:
        return str(self.manifest["base_timeframe"])

    @property
    def stable_history_bars(self) -> dict[str, int]:
        return {tf: int(n) for tf, n in self.manifest["stable_history_bars"].items()}

    def predict(
        self,
        bars: pd.DataFrame | Mapping[str, pd.DataFrame],
        start: str | pd.Timestamp | None = None,
        symbol: str | None = None,
    ) -> pd.DataFrame:
        """Class and probabilities for every base bar with a complete feature row.

        ``bars``: one OHLCV frame (single-timeframe models) or one per manifest timeframe, each
        with its timeframe's spacing; ``volume`` may be left out when no feature uses it. Bars
        before ``start`` are history only: the result keeps the rows from ``start`` on (without
        ``start``, every bar with a complete feature row, history included). The index of the
        result has the input's base-timeframe values and tz-awareness (naive input is read as
        UTC). Features are recomputed by name and scaled with the saved scaler.

        Warns (``UserWarning``) when fewer than ``stable_history_bars`` bars precede ``start``
        (or the whole input is that short), so early values may differ from training, when the
        bars have gaps, when ``symbol`` (the bars' symbol, if given) is not one the model was
        trained on, and when more than ``DRIFT_WARN_SHARE`` of the rows hold a feature far
        outside its training range (``drift``). Raises DataError on missing timeframes, bad
        bars, stale higher-timeframe bars or too little history.
        """
        frames, naive = self._normalise_input(bars)
        first = None if start is None else parse_time(start, "predict: start")
        self._warn_short_history(frames, first)
        self._warn_gaps(frames)
        if symbol is not None and symbol not in self.manifest["symbols"]:
            warnings.warn(
                f"predict: {symbol} is not a symbol this model was trained on "
                f"({', '.join(self.manifest['symbols'])}); its features may be distributed "
                "otherwise, and nothing tested how the model does on it",
                UserWarning,
                stacklevel=2,
            )
        try:
            features = build_features(
                frames, self.strategy_config, symbol="predict", on_stale="raise"
            )
        except DataError as exc:
            if "no complete feature rows" in str(exc):
                raise DataError(
                    f"too few bars to predict: the first complete feature row needs "
                    f"{self.manifest['warmup_bars'][self.base_timeframe]} {self.base_timeframe} "
                    f"bars, and {self.stable_history_bars[self.base_timeframe]} bars of history "
                    "for values that match training"
                ) from exc
            raise
        if first is not None:
            features = features[features.index >= first]
        check_feature_frame(features, self.feature_names, source="predict")
        if self.artifact.scaler is not None:
            self._warn_drift(features, self.artifact.scaler)
            features = apply_scaler(features, self.artifact.scaler)
        rows = features.to_numpy(dtype=np.float32)
        with torch_threads(self._threads(len(rows))):
            logits = predict_logits(self.model, rows, "cpu")
        probabilities = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        class_ids = probabilities.argmax(axis=1)
        index = pd.DatetimeIndex(features.index)
        if naive:
            index = index.tz_localize(None)
        return pd.DataFrame(
            {
                "class": pd.Categorical.from_codes(class_ids, categories=pd.Index(CLASS_NAMES)),
                "class_id": class_ids.astype(np.int64),
                "prob_buy": probabilities[:, 0],
                "prob_hold": probabilities[:, 1],
                "prob_sell": probabilities[:, 2],
            },
            index=index,
        )

    def _threads(self, rows: int) -> int:
        requested = settings.torch_threads(self.threads)
        if requested is not None:
            return requested
        weights = sum(p.numel() for p in self.model.parameters())
        return choose_threads(min(rows, PREDICT_CHUNK), weights)

    @property
    def uses_volume(self) -> bool:
        """Whether any feature is computed from volume."""
        return any(
            REGISTRY[i["type"]].needs_volume or i.get("source") == "volume"
            for i in self.strategy_config["indicators"]
        )

    def _warn_short_history(
        self, frames: Mapping[str, pd.DataFrame], first: pd.Timestamp | None
    ) -> None:
        for timeframe, frame in frames.items():
            needed = self.stable_history_bars[timeframe]
            available = (
                len(frame) if first is None else int(frame.index.searchsorted(first, side="left"))
            )
            if available < needed:
                where = "in all" if first is None else f"before {first}"
                warnings.warn(
                    f"predict: {available} {timeframe} bars {where}, fewer than the "
                    f"{needed} bars of history this model's indicators need to match training; "
                    "early predictions may differ from what the model saw in training",
                    UserWarning,
                    stacklevel=3,
                )

    def _warn_drift(self, features: pd.DataFrame, scaler: ScalerParams) -> None:
        report = drift(features, scaler)
        if report is None or report.share <= DRIFT_WARN_SHARE:
            return
        named = ", ".join(f"{name} in {rows}" for name, rows in report.features[:3])
        warnings.warn(
            f"predict: {report.share:.1%} of the rows ({report.rows} of {len(features)}) hold a "
            f"feature far outside its training range ({named}); the model never saw such "
            "inputs, so its predictions there say little",
            UserWarning,
            stacklevel=3,
        )

    def _warn_gaps(self, frames: Mapping[str, pd.DataFrame]) -> None:
        max_gap = self.strategy_config["training_data"].get("max_gap")
        for timeframe, frame in frames.items():
            gaps = find_gaps(pd.DatetimeIndex(frame.index), timeframe, max_gap)
            if gaps:
                warnings.warn(
                    f"predict: {len(gaps)} gap(s) in the {timeframe} bars: {describe_gaps(gaps)}; "
                    "indicators restart after each gap",
                    UserWarning,
                    stacklevel=3,
                )

    def _normalise_input(
        self, bars: pd.DataFrame | Mapping[str, pd.DataFrame]
    ) -> tuple[dict[str, pd.DataFrame], bool]:
        if isinstance(bars, pd.DataFrame):
            if len(self.timeframes) > 1:
                raise DataError(
                    f"this model uses {', '.join(self.timeframes)} bars; pass a mapping "
                    "{timeframe: frame} with one frame per timeframe"
                )
            bars = {self.base_timeframe: bars}
        missing = [tf for tf in self.timeframes if tf not in bars]
        if missing:
            raise DataError(
                f"predict: no bars for timeframe(s) {', '.join(missing)}; this "
                f"model needs {', '.join(self.timeframes)}"
            )
        frames: dict[str, pd.DataFrame] = {}
        naive = False
        for timeframe in self.timeframes:
            frame = bars[timeframe]
            if not isinstance(frame, pd.DataFrame) or not isinstance(frame.index, pd.DatetimeIndex):
                raise DataError(
                    f"predict: {timeframe} bars must be a DataFrame indexed by bar open time"
                )
            renamed = frame.rename(columns=lambda c: str(c).strip().lower())
            if "volume" not in renamed.columns and not self.uses_volume:
                # No feature reads volume: FX exports without it predict as well.
                renamed = renamed.assign(volume=0.0)
            missing_columns = [c for c in OHLCV_COLUMNS if c not in renamed.columns]
            if missing_columns:
                raise DataError(f"predict: {timeframe} bars lack {', '.join(missing_columns)}")
            clean = renamed[list(OHLCV_COLUMNS)].astype("float64")
            times = pd.DatetimeIndex(clean.index)
            if times.tz is None:
                if timeframe == self.base_timeframe:
                    naive = True
                clean.index = times.tz_localize("UTC")
            else:
                clean.index = times.tz_convert("UTC")
            # The spacing check catches frames given under the wrong timeframe (swapped 1h/4h).
            frames[timeframe] = check_ohlcv(
                clean, source=f"predict({timeframe} bars)", timeframe=timeframe
            )
        return frames, naive


# Above this share of rows far outside the training range, predict warns.
DRIFT_WARN_SHARE = 0.01


@dataclass(frozen=True)
class Drift:
    """How far new feature rows lie outside the training range: the share and count of rows
    with any feature far outside, and per feature the count, most first."""

    share: float
    rows: int
    features: list[tuple[str, int]]


def drift(features: pd.DataFrame, scaler: ScalerParams) -> Drift | None:
    """Rows (unscaled, in the scaler's feature order) with a value beyond the training range
    by more than half of it (half a standard deviation for a feature constant in training);
    None when the scaler keeps no training range or there are no rows."""
    if scaler.lows is None or scaler.highs is None or features.empty:
        return None
    values = features.to_numpy(dtype=np.float64)
    lows, highs = np.asarray(scaler.lows), np.asarray(scaler.highs)
    margin = 0.5 * np.maximum(highs - lows, np.asarray(scaler.scales))
    outside = (values < lows - margin) | (values > highs + margin)
    per_feature = outside.sum(axis=0)
    rows = int(outside.any(axis=1).sum())
    ranked = sorted(
        ((name, int(n)) for name, n in zip(scaler.feature_names, per_feature, strict=True) if n),
        key=lambda item: -item[1],
    )
    return Drift(share=rows / len(values), rows=rows, features=ranked)


def load_model(path: str | os.PathLike[str], symbol: str | None = None) -> TrainedModel:
    """Load a saved version (a folder, or ``strategy/version`` in the default store); with
    ``symbol``, ``strategy/latest`` is the newest version trained on it
    (``ModelStorage.resolve``, which raises ModelStorageError when none or several are)."""
    storage = ModelStorage()
    resolved = storage.resolve(path, symbol=symbol)
    return TrainedModel(storage.load(resolved), path=resolved)
