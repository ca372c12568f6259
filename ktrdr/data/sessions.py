"""When a market's trading week opens, and what a file's week opens say about its time zone.

Spot FX trades around the clock from Sunday 17:00 to Friday 17:00 New York time: in UTC the week
opens on Sunday at 21:00 (summer) or 22:00 (winter), and some feeds start it at the Sydney open
(about 20:00) or at Monday 00:00. A file whose weeks open at another hour of UTC was almost always
read in the wrong zone: a broker's export in New York time read as UTC opens at Sunday 17:00.
The same week, cut into UTC days by a broker, leaves a Sunday "day" of two or three hours: a
stub that ktrdr's own daily bars (``resample_bars``) leave out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.data.timeframes import parse_timeframe

# Hours after Sunday 00:00 UTC between which a round-the-clock market's week may open.
WEEK_OPEN_HOURS = (20.0, 24.0)
_WEEKEND = pd.Timedelta(hours=36)
_MIN_WEEKS = 2
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# The zone whose clock opens the FX week at the UTC hour a file shows, when read as UTC.
_LIKELY_ZONES = {17: "America/New_York"}


def week_opens(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The first bar of each trading week: every bar that follows a pause of 36 hours or more."""
    if len(index) < 2:
        return pd.DatetimeIndex([], tz="UTC")
    pauses = np.diff(index.as_unit("ns").asi8) >= _WEEKEND.value
    return index[1:][pauses]


def week_open_note(index: pd.DatetimeIndex, timeframe: str, tz: str) -> str | None:
    """A warning when intraday bars that trade around the clock open their weeks at an hour of
    UTC no such market opens at; None otherwise (and for daily bars, stock hours, or fewer than
    two weeks). ``tz`` is the zone the times were read in, named in the advice."""
    if parse_timeframe(timeframe) >= pd.Timedelta(days=1) or len(index) == 0:
        return None
    utc = pd.DatetimeIndex(index).tz_convert("UTC")
    if len(np.unique(utc.hour)) < 20:  # not round the clock: stock hours, a sparse file
        return None
    opens = week_opens(utc)
    if len(opens) < _MIN_WEEKS:
        return None
    # Hours after Sunday 00:00 (pandas counts Monday as 0), Saturday counting as -24.
    day = (opens.day_of_week.to_numpy() + 1) % 7
    day = np.where(day == 6, -1, day)
    hours = day * 24 + opens.hour.to_numpy() + opens.minute.to_numpy() / 60
    typical = float(np.median(hours))
    low, high = WEEK_OPEN_HOURS
    if low <= typical <= high:
        return None
    shown = pd.Timestamp("2024-01-07", tz="UTC") + pd.Timedelta(hours=typical)  # a Sunday
    name = _DAYS[(shown.day_of_week + 1) % 7]
    inside = int(((hours >= typical - 1) & (hours <= typical + 1)).sum())
    zone = _LIKELY_ZONES.get(shown.hour) if tz == "UTC" else None
    advice = (
        f"a broker's export in {zone} time read as UTC looks like this: import it again with "
        f"--tz {zone} --replace"
        if zone is not None
        else f"if the file's times are not in {tz}, import it again with the right --tz and "
        "--replace"
    )
    return (
        f"the trading weeks open on {name} at {shown:%H:%M} UTC ({inside} of {len(opens)} "
        f"weeks); round-the-clock markets such as FX open on Sunday between 20:00 and 24:00 UTC "
        f"(17:00 in New York); {advice}"
    )


def weekend_stubs(index: pd.DatetimeIndex, timeframe: str) -> pd.DatetimeIndex:
    """Daily bars that open on a Sunday (UTC) in a file of weekday bars with no Saturday bar: a
    market closed on Saturdays trades only its Sunday evening in that UTC day, so such a bar is
    a stub of a few hours. Empty for other timeframes, for markets that trade on Saturdays
    (crypto) and for a file without a weekday bar."""
    if timeframe != "1d" or len(index) == 0:
        return pd.DatetimeIndex([], tz="UTC")
    utc = pd.DatetimeIndex(index).tz_convert("UTC")
    days = utc.day_of_week.to_numpy()  # Monday is 0
    if (days == 5).any() or not (days < 5).any():  # a market that trades all week, or no week
        return pd.DatetimeIndex([], tz="UTC")
    return utc[days == 6]


def weekend_stub_note(stubs: pd.DatetimeIndex) -> str | None:
    """The warning an import gives for ``weekend_stubs`` it keeps; None when there are none."""
    if len(stubs) == 0:
        return None
    return (
        f"{len(stubs)} daily bar(s) open on a Sunday (the first {stubs[0]:%Y-%m-%d}) in a file "
        "with no Saturday bars: each holds only the hours the market trades on Sunday evening "
        "UTC, a stub that ktrdr's own 1d bars (ktrdr data resample) leave out, so indicators "
        "and a model see a different week; import again with --drop-weekend-stubs --replace to "
        "store the days as ktrdr builds them"
    )
