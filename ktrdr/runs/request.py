"""What a worker process is asked to train (plain, picklable data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunRequest:
    """One training for a worker process.

    ``strategy`` is a strategy dict (validated again in the worker, with ``overrides`` applied).
    With ``save`` the worker runs ``StrategyTrainer`` (so ``USE_TRAINING_EXECUTOR`` applies) and
    writes the model store under ``models_dir``; without it, it runs
    ``TrainingExecutor.execute(save=False)`` and sends the artifact's bytes back instead.
    """

    strategy: dict[str, Any]
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start_date: str
    end_date: str
    overrides: dict[str, Any] = field(default_factory=dict)
    save: bool = True
    models_dir: str | None = None
    data_dir: str | None = None
    threads: int | None = None
    device: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
