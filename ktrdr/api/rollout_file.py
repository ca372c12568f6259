"""The backend's rollout settings as changed at run time, kept in a file so they outlive it.

``PUT /trainings/config`` changes the rollout percentage, the shadow percentage or the
exclusions without a restart; the backend writes them to ``{data dir}/rollout.json`` (under a
lock, by atomic rename) and a backend started later on the same data folder reads them back
over its environment's, so a rollback to 0 stays a rollback. Deleting the file returns to the
environment's settings at the next start.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from ktrdr.api.schemas import RolloutConfig
from ktrdr.errors import StrategyConfigError
from ktrdr.fileio import atomic_write, exclusive_lock, lock_path_for
from ktrdr.training.rollout import RolloutSettings

ROLLOUT_FILE = "rollout.json"
# The file holds three small fields; anything larger is not ours.
MAX_BYTES = 64 * 1024


def load_rollout(path: Path, base: RolloutSettings) -> RolloutSettings:
    """``base`` with the settings ``path`` holds over it (``base`` when there is no file).
    Raises StrategyConfigError naming the file and what is wrong, with what to do."""
    try:
        with exclusive_lock(lock_path_for(path)):
            if not path.exists():
                return base
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise StrategyConfigError(
                    f"{path}: {size} bytes is not a rollout file; delete it to use the "
                    "environment's settings"
                )
            config = RolloutConfig.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problem = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise StrategyConfigError(
            f"{path}: {problem[:400]}; correct it with PUT /trainings/config or delete the file"
        ) from exc
    except OSError as exc:
        raise StrategyConfigError(f"{path}: cannot read the rollout settings ({exc})") from exc
    return applied(base, config)


def applied(base: RolloutSettings, config: RolloutConfig) -> RolloutSettings:
    """``base`` with the fields ``config`` gives."""
    return replace(
        base,
        percent=base.percent if config.rollout_percent is None else config.rollout_percent,
        shadow_percent=(
            base.shadow_percent if config.shadow_percent is None else config.shadow_percent
        ),
        exclusions=(
            base.exclusions
            if config.executor_exclude is None
            else frozenset(config.executor_exclude)
        ),
    )


def save_rollout(path: Path, rollout: RolloutSettings) -> None:
    """Write ``rollout`` to ``path`` (locked, atomic). Raises OSError as the system gives it."""
    text = json.dumps(rollout.to_dict(), indent=2) + "\n"
    with exclusive_lock(lock_path_for(path)):
        atomic_write(path, lambda stream: stream.write(text))
