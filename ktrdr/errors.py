"""The ktrdr exception tree (docs/architecture.md: settings and errors).

    KtrdrError                  base of everything ktrdr raises on purpose
     ├── StrategyConfigError    bad strategy file, key, override or flag      (CLI exit 2)
     ├── DataError              missing, malformed or insufficient bars       (CLI exit 2)
     ├── TrainingError          training could not run or finish              (CLI exit 1)
     ├── CancellationError      the run was cancelled on request              (CLI exit 130)
     ├── ModelStorageError      a model version cannot be saved or loaded     (CLI exit 1)
     └── ExecutionModeError     the requested execution mode is unavailable   (CLI exit 1)

Lower-level errors (YAML, pydantic, pandas, TA-Lib, torch) are translated where they enter ktrdr,
with the original kept as ``__cause__``. Messages say what was wrong, where, and what to do.
"""

from __future__ import annotations


class KtrdrError(Exception):
    """Base class; ``exit_code`` is what the CLI returns for it."""

    exit_code: int = 1


class StrategyConfigError(KtrdrError):
    """A strategy file, key path, override or environment flag is invalid."""

    exit_code = 2


class DataError(KtrdrError):
    """Market data is missing, malformed, or does not cover what was asked."""

    exit_code = 2


class TrainingError(KtrdrError):
    """Training could not run or finish (for example one class only in the training split)."""

    exit_code = 1


class CancellationError(KtrdrError):
    """The operation was cancelled; nothing was written."""

    exit_code = 130


class ModelStorageError(KtrdrError):
    """A model version cannot be written, found, verified or loaded."""

    exit_code = 1


class ExecutionModeError(KtrdrError):
    """The requested execution mode (host, GPU) is not available."""

    exit_code = 1


__all__ = [
    "CancellationError",
    "DataError",
    "ExecutionModeError",
    "KtrdrError",
    "ModelStorageError",
    "StrategyConfigError",
    "TrainingError",
]
