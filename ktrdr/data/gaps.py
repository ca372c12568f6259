"""Gaps in bar series: stretches without bars longer than the market's normal closures.

A gap is the time between one bar's close (open + timeframe) and the next bar's open. Weekends and
holidays leave a few days without bars and are not gaps; anything longer than the limit is. The
default limit is the longer of 4 days and 10 bars of the timeframe; a strategy sets its own with
``training_data.max_gap`` (a duration such as ``7d`` or ``36h``).

The rule every step follows: bars on either side of a gap are separate *segments*. Warm-up history
is never taken from before a gap, indicators restart after it (their warm-up rows are dropped
again), and no lag or label window reaches across it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ktrdr.data.timeframes import parse_timeframe
from ktrdr.errors import DataError

DEFAULT_MIN_GAP = pd.Timedelta(days=4)
DEFAULT_GAP_BARS = 10


@dataclass(frozen=True)
class Gap:
    """No bars between ``last_before`` (the last bar's open) and ``first_after`` (the next open)."""

    last_before: pd.Timestamp
    first_after: pd.Timestamp
    missing: pd.Timedelta

    def describe(self) -> str:
        return f"{self.last_before} .. {self.first_after} ({_days(self.missing)} without bars)"


def parse_max_gap(value: str | pd.Timedelta | None, where: str = "max_gap") -> pd.Timedelta | None:
    """A positive duration from ``7d``, ``36h`` or a Timedelta; None stays None (the default)."""
    if value is None or (isinstance(value, pd.Timedelta) and value > pd.Timedelta(0)):
        return value
    # pandas deprecates a lower-case "d" for days; "7d" is what people write.
    text = re.sub(r"(?<=\d)d\b", "D", str(value).strip())
    try:
        parsed = pd.Timedelta(text)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed is pd.NaT or parsed <= pd.Timedelta(0):
        raise DataError(
            f"{where}={str(value)[:40]!r} is not a positive duration; use e.g. 7d or 36h"
        )
    return parsed


def gap_limit(timeframe: str, max_gap: str | pd.Timedelta | None = None) -> pd.Timedelta:
    """The longest stretch without bars that is still a normal closure for ``timeframe``."""
    limit = parse_max_gap(max_gap)
    if limit is not None:
        return limit
    return max(DEFAULT_MIN_GAP, DEFAULT_GAP_BARS * parse_timeframe(timeframe))


def gap_starts(
    index: pd.Index, timeframe: str, max_gap: str | pd.Timedelta | None = None
) -> np.ndarray:
    """Positions of the first bar after each gap in ``index`` (sorted open times)."""
    if len(index) < 2:
        return np.zeros(0, dtype=np.int64)
    step = parse_timeframe(timeframe).value
    stamps = pd.DatetimeIndex(index).as_unit("ns").asi8
    missing = np.diff(stamps) - step
    return np.flatnonzero(missing > gap_limit(timeframe, max_gap).value) + 1


def segment_ids(
    index: pd.Index, timeframe: str, max_gap: str | pd.Timedelta | None = None
) -> np.ndarray:
    """For every bar, the number of gaps before it: bars with equal ids are one segment."""
    ids = np.zeros(len(index), dtype=np.int64)
    starts = gap_starts(index, timeframe, max_gap)
    if len(starts):
        ids[starts] = 1
        ids = np.cumsum(ids)
    return ids


def segment_bounds(
    index: pd.Index, timeframe: str, max_gap: str | pd.Timedelta | None = None
) -> list[tuple[int, int]]:
    """(start, stop) positions of each segment, in order."""
    edges = [0, *gap_starts(index, timeframe, max_gap).tolist(), len(index)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def find_gaps(
    index: pd.Index, timeframe: str, max_gap: str | pd.Timedelta | None = None
) -> list[Gap]:
    """Every gap in ``index``, oldest first."""
    step = parse_timeframe(timeframe)
    return [
        Gap(index[i - 1], index[i], index[i] - index[i - 1] - step)
        for i in gap_starts(index, timeframe, max_gap)
    ]


def describe_gaps(gaps: list[Gap], shown: int = 3) -> str:
    """One line naming the first ``shown`` gaps and how many more there are."""
    text = "; ".join(gap.describe() for gap in gaps[:shown])
    if len(gaps) > shown:
        text += f"; and {len(gaps) - shown} more"
    return text


def _days(delta: pd.Timedelta) -> str:
    days = delta / pd.Timedelta(days=1)
    return f"{days:.1f} days" if days >= 1 else f"{delta / pd.Timedelta(hours=1):.1f} hours"
