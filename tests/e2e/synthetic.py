"""Synthetic bars with a planted learnable signal, for the learnability test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.data.synthetic import bar_times


def mean_reverting_bars(
    start: str,
    end: str,
    *,
    strength: float = 2.0,
    volatility: float = 0.002,
    seed: int = 7,
    period: int = 14,
) -> pd.DataFrame:
    """Hourly bars whose next return drifts by -strength * (RSI - 50) / 50 standard deviations.

    The drift at bar t+1 uses Wilder's RSI of closes up to t only, so the signal is causal and
    a model that sees RSI-based features can learn it.
    """
    times = bar_times("1h", start, end)
    n = len(times)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    close = np.empty(n)
    close[0] = 1.1
    warmup_gains: list[float] = []
    warmup_losses: list[float] = []
    avg_gain = avg_loss = 0.0
    rsi = 50.0
    for t in range(1, n):
        close[t] = close[t - 1] * np.exp(volatility * (noise[t] - strength * (rsi - 50) / 50))
        change = close[t] - close[t - 1]
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if len(warmup_gains) < period:
            warmup_gains.append(gain)
            warmup_losses.append(loss)
            if len(warmup_gains) < period:
                continue
            avg_gain, avg_loss = float(np.mean(warmup_gains)), float(np.mean(warmup_losses))
        else:
            avg_gain = (avg_gain * (period - 1) + gain) / period
            avg_loss = (avg_loss * (period - 1) + loss) / period
        rsi = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.3, n)) * volatility
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick),
            "low": np.minimum(open_, close) * (1 - wick),
            "close": close,
            "volume": 1000.0,
        },
        index=times,
    )
