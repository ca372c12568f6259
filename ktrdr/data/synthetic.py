"""Seeded synthetic bars for tests and benchmarks.

Log returns with clustered volatility (an AR(1) process in log-volatility), FX-style weekend gaps
(no bars from Friday 22:00 to Sunday 22:00 UTC for intraday timeframes, none on Saturday or
Sunday for daily ones), and valid OHLC relations. The same (symbol, timeframe, range, seed) always
gives the same bars, on any machine; different symbols give different paths.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ktrdr.data.timeframes import parse_timeframe, resample_bars, sort_timeframes
from ktrdr.data.validation import check_date_range, check_symbol
from ktrdr.errors import DataError


def _stable_seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256("|".join([str(seed), *parts]).encode()).hexdigest()
    return int(digest[:16], 16)


def bar_times(
    timeframe: str, start_date: str, end_date: str, *, session_tz: str | None = None
) -> pd.DatetimeIndex:
    """Open times of ``timeframe`` bars on the inclusive UTC days, with weekend gaps removed.

    By default the week is closed from Friday 22:00 to Sunday 22:00 UTC and bars are aligned to
    UTC. With ``session_tz`` (a broker's server zone, e.g. ``America/New_York``) the week is
    closed from Friday 17:00 to Sunday 17:00 on that zone's clock and intraday bars longer than
    an hour open at 17:00 local plus whole bars, as such brokers stamp them: in UTC their times
    move by an hour at each daylight-saving change, and one bar there spans an hour more or less.
    Daily and longer bars are unaffected. Raises DataError for an unknown zone.
    """
    step = parse_timeframe(timeframe)
    start, end_exclusive = check_date_range(start_date, end_date)
    if step >= pd.Timedelta(weeks=1):
        # Weekly bars open on Monday 00:00 UTC, as resample_bars stamps them.
        start = start + pd.Timedelta(days=(7 - start.day_of_week) % 7)
    grid = step if session_tz is None else min(step, pd.Timedelta(hours=1))
    times = pd.date_range(start, end_exclusive - pd.Timedelta(1), freq=grid, name="timestamp")
    if step >= pd.Timedelta(weeks=1):
        return times
    if step >= pd.Timedelta(days=1):
        return times[times.day_of_week < 5]
    if session_tz is None:
        hours_into_week = times.day_of_week * 24 + times.hour + times.minute / 60
        # Closed from Friday 22:00 (hour 118) to Sunday 22:00 (hour 166) UTC.
        return times[(hours_into_week < 118) | (hours_into_week >= 166)]
    try:
        local = times.tz_convert(session_tz)
    except Exception as exc:  # zoneinfo and pytz raise different errors
        raise DataError(f"unknown session_tz {session_tz!r}; use an IANA zone name") from exc
    minutes = (local.hour * 60 + local.minute).to_numpy()
    local_hours = local.day_of_week.to_numpy() * 24 + minutes / 60
    # Closed from Friday 17:00 (hour 113) to Sunday 17:00 (hour 161) local.
    open_ = (local_hours < 113) | (local_hours >= 161)
    aligned = (minutes - 17 * 60) % int(step / pd.Timedelta(minutes=1)) == 0
    return times[open_ & aligned]


def generate_bars(
    symbol: str,
    timeframe: str,
    start_date: str,
    end_date: str,
    *,
    seed: int = 0,
    start_price: float = 1.10,
    volatility: float | None = None,
    session_tz: str | None = None,
) -> pd.DataFrame:
    """Synthetic OHLCV bars on the inclusive UTC days [start_date, end_date], in a week and
    at bar times set by ``session_tz`` (see ``bar_times``).

    ``volatility`` is the typical per-bar standard deviation of log returns (default scales with
    the square root of the timeframe from 0.1% an hour).
    Raises DataError for a bad symbol, timeframe or range, or a range without bars.
    """
    check_symbol(symbol)
    step = parse_timeframe(timeframe)
    times = bar_times(timeframe, start_date, end_date, session_tz=session_tz)
    n = len(times)
    if n == 0:
        raise DataError(f"no {timeframe} trading bars between {start_date} and {end_date}")
    rng = np.random.default_rng(_stable_seed(seed, symbol, timeframe, str(start_date)))
    sigma = volatility if volatility is not None else 0.001 * np.sqrt(step / pd.Timedelta(hours=1))
    # log(vol) follows AR(1) with persistence 0.98: calm and turbulent stretches alternate.
    shocks = rng.normal(0.0, 0.2, n)
    log_vol = lfilter([1.0], [1.0, -0.98], shocks)
    vol = sigma * np.exp(log_vol - log_vol.mean())
    noise = rng.standard_normal(n)
    returns = vol * noise
    log_close = np.log(start_price) + np.cumsum(returns)
    close = np.exp(log_close)
    # An hour more than a bar apart: a gap (a DST change stretches a broker's bar by an hour).
    gap = np.r_[False, np.diff(times.as_unit("ns").asi8) > (step + pd.Timedelta(hours=1)).value]
    open_ = np.empty(n)
    open_[0] = start_price
    # After a gap the market reopens away from the last close; otherwise it opens at it.
    gap_move = np.where(gap, rng.normal(0.0, 2.0, n) * vol, 0.0)
    open_[1:] = close[:-1] * np.exp(gap_move[1:])
    body_high = np.maximum(open_, close)
    body_low = np.minimum(open_, close)
    high = body_high * np.exp(np.abs(rng.normal(0.0, 0.5, n)) * vol)
    low = body_low * np.exp(-np.abs(rng.normal(0.0, 0.5, n)) * vol)
    volume = np.round(1000.0 * (vol / sigma) * rng.lognormal(0.0, 0.3, n))
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=times
    )
    return frame


def write_synthetic_store(
    data_dir: str | os.PathLike[str],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    start_date: str,
    end_date: str,
    *,
    seed: int = 3,
    session_tz: str | None = None,
) -> None:
    """Write seeded bars for every symbol into a store: the lowest timeframe generated, the
    others resampled from it (so timeframes agree, as real data does). With ``session_tz`` the
    bars are a broker's on that zone's clock (see ``bar_times``), the longer intraday ones
    aggregated on that clock from 17:00, as such a broker exports them."""
    from ktrdr.data.store import write_bars

    ordered = sort_timeframes(timeframes)
    for index, symbol in enumerate(symbols):
        base = generate_bars(
            symbol,
            ordered[0],
            start_date,
            end_date,
            seed=seed + index,
            start_price=1.1 + index,
            session_tz=session_tz,
        )
        write_bars(symbol, ordered[0], base, data_dir=data_dir)
        for timeframe in ordered[1:]:
            longer = (
                resample_bars(base, ordered[0], timeframe)
                if session_tz is None or parse_timeframe(timeframe) >= pd.Timedelta(days=1)
                else _resample_on_clock(base, ordered[0], timeframe, session_tz)
            )
            write_bars(symbol, timeframe, longer, data_dir=data_dir)


def _resample_on_clock(
    bars: pd.DataFrame, source_timeframe: str, timeframe: str, session_tz: str
) -> pd.DataFrame:
    """``resample_bars`` on the zone's wall clock, with bins starting at 17:00 local, each
    stamped with its open in UTC; only bins that start at or after the first bar."""
    # resample_bars bins on UTC boundaries: wall times moved back so that 17:00 falls on one.
    # The market is closed at weekends, when the clock changes, so no wall time repeats.
    shift = pd.Timedelta(hours=17) % parse_timeframe(timeframe)
    wall = bars.copy()
    local = pd.DatetimeIndex(bars.index).tz_convert(session_tz).tz_localize(None)
    wall.index = (local - shift).tz_localize("UTC")
    longer = resample_bars(wall, source_timeframe, timeframe)
    opens = (pd.DatetimeIndex(longer.index).tz_localize(None) + shift).tz_localize(session_tz)
    longer.index = pd.DatetimeIndex(opens.tz_convert("UTC"), name="timestamp")
    return longer[longer.index >= bars.index[0]]
