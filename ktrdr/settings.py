"""Paths and environment variables (docs/architecture.md: settings and errors).

Precedence everywhere: explicit argument > environment variable > default. Every function reads the
environment when it is called, never at import, so tests and services can change it at run time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ktrdr.errors import StrategyConfigError

# What a strategy's name may hold (the strategy schema uses it too).
STRATEGY_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
_STRATEGY_NAME = re.compile(STRATEGY_NAME_PATTERN)

EXECUTION_MODES = ("local", "host", "auto")


def _path(explicit: str | os.PathLike[str] | None, variable: str, default: str) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else Path(default)


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The local bar store folder: argument, else ``KTRDR_DATA_DIR``, else ``./data``."""
    return _path(explicit, "KTRDR_DATA_DIR", "data")


def models_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model store folder: argument, else ``KTRDR_MODELS_DIR``, else ``./models``."""
    return _path(explicit, "KTRDR_MODELS_DIR", "models")


def strategies_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The strategy folder: argument, else ``KTRDR_STRATEGIES_DIR``, else ``./strategies``."""
    return _path(explicit, "KTRDR_STRATEGIES_DIR", "strategies")


def requested_device(explicit: str | None = None) -> str | None:
    """The device the user asked for (argument, else ``KTRDR_DEVICE``), or None for auto."""
    if explicit:
        return explicit.strip()
    value = os.environ.get("KTRDR_DEVICE", "").strip()
    return value or None


def use_training_executor() -> bool | None:
    """``USE_TRAINING_EXECUTOR``: True/False when set, None when unset.

    Raises StrategyConfigError for any value other than true/false (case-insensitive).
    """
    raw = os.environ.get("USE_TRAINING_EXECUTOR")
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise StrategyConfigError(
        f"USE_TRAINING_EXECUTOR={raw!r} is not valid; set it to 'true' or 'false', or unset it"
    )


def rollout_percent() -> int:
    """``TRAINING_EXECUTOR_ROLLOUT_PERCENT`` as an integer 0-100 (default 0)."""
    return _percent("TRAINING_EXECUTOR_ROLLOUT_PERCENT")


def shadow_percent() -> int:
    """``TRAINING_EXECUTOR_SHADOW_PERCENT`` as an integer 0-100 (default 0): the share of runs
    that also train on the other path as a shadow."""
    return _percent("TRAINING_EXECUTOR_SHADOW_PERCENT")


def _percent(variable: str) -> int:
    """``variable`` as an integer 0-100, 0 when unset. Raises StrategyConfigError naming the
    variable for anything else."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise StrategyConfigError(
            f"{variable}={raw[:20]!r} is not valid; use an integer from 0 to 100"
        )
    return value


def rollout_exclusions() -> frozenset[str]:
    """``TRAINING_EXECUTOR_EXCLUDE``: strategy names (comma-separated) that the rollout keeps
    on the reference path, whatever the percentage (empty by default).

    Raises StrategyConfigError for a name that no strategy can have.
    """
    raw = os.environ.get("TRAINING_EXECUTOR_EXCLUDE", "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if len(name) > 100 or not _STRATEGY_NAME.fullmatch(name):
            raise StrategyConfigError(
                f"TRAINING_EXECUTOR_EXCLUDE names {name[:60]!r}, which is not a strategy name; "
                "list strategy names (letters, digits, '_' and '-') separated by commas"
            )
    return frozenset(names)


def ledger_enabled() -> bool:
    """``KTRDR_LEDGER``: on (the default) or off.

    Raises StrategyConfigError for any other value.
    """
    raw = os.environ.get("KTRDR_LEDGER", "").strip().lower()
    if raw in ("", "on"):
        return True
    if raw == "off":
        return False
    raise StrategyConfigError(
        f"KTRDR_LEDGER={raw[:40]!r} is not valid; set it to 'on' or 'off', or unset it"
    )


def default_execution_mode() -> str:
    """``TRAINING_DEFAULT_MODE``: local, host or auto (default local)."""
    raw = os.environ.get("TRAINING_DEFAULT_MODE", "").strip().lower() or "local"
    if raw not in EXECUTION_MODES:
        raise StrategyConfigError(
            f"TRAINING_DEFAULT_MODE={raw!r} is not valid; use one of {', '.join(EXECUTION_MODES)}"
        )
    return raw


def host_service_url(explicit: str | None = None) -> str:
    """The training host URL: argument, else ``TRAINING_HOST_SERVICE_URL``, else local port 5002."""
    if explicit:
        return explicit.rstrip("/")
    value = os.environ.get("TRAINING_HOST_SERVICE_URL", "").strip()
    return (value or "http://127.0.0.1:5002").rstrip("/")


def service_token() -> str | None:
    """The shared bearer token of both services (``KTRDR_SERVICE_TOKEN``), or None for no auth."""
    value = os.environ.get("KTRDR_SERVICE_TOKEN", "").strip()
    return value or None


def torch_threads(explicit: int | None = None) -> int | None:
    """Torch's intra-op thread count asked for: ``explicit``, else ``KTRDR_TORCH_THREADS``, else
    None (ktrdr then chooses per run). StrategyConfigError for a value that is not an integer >= 1.
    """
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, int) or explicit < 1:
            raise StrategyConfigError(f"threads={explicit!r} must be an integer >= 1")
        return explicit
    raw = os.environ.get("KTRDR_TORCH_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise StrategyConfigError(
            f"KTRDR_TORCH_THREADS={raw[:20]!r} must be an integer >= 1, or unset to let ktrdr "
            "choose"
        )
    return int(raw)
