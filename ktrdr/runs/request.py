"""What a worker process is asked to train (plain, picklable data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class RunRequest:
    """One training for a worker process.

    ``strategy`` is a strategy dict (validated again in the worker, with ``overrides`` applied).
    ``runner="trainer"`` runs ``StrategyTrainer`` (so ``USE_TRAINING_EXECUTOR`` applies);
    ``"executor"`` runs ``TrainingExecutor`` directly (the host). With ``save`` the worker writes
    the model store under ``models_dir``; without it, it sends the artifact's bytes back.
    """

    strategy: dict[str, Any]
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    start_date: str
    end_date: str
    overrides: dict[str, Any] = field(default_factory=dict)
    save: bool = True
    runner: Literal["trainer", "executor"] = "trainer"
    models_dir: str | None = None
    data_dir: str | None = None
    threads: int | None = None
    device: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
