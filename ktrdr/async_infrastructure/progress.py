"""Progress of one operation as plain data (docs/architecture.md: progress and cancellation).

Producers (the executor, the trainer's callback) call ``start_step`` and ``update_step_progress``;
consumers (the CLI display, API polling) call ``snapshot`` and draw what they get. Producers never
block, sleep, render or push anywhere. The overall percentage comes from one table of step bands
and never goes backwards.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ktrdr.async_infrastructure.status import TERMINAL

TRAINING_STEPS: tuple[str, ...] = (
    "Loading market data",
    "Calculating technical indicators",
    "Generating fuzzy memberships",
    "Engineering features",
    "Generating labels",
    "Splitting and scaling data",
    "Training model",
    "Evaluating model",
    "Calculating feature importance",
    "Saving model",
    "Building results",
    "Complete",
)

# Overall-percentage band [start, end) of each training step; step 7 (training) spans 20-90%.
TRAINING_BANDS: dict[int, tuple[float, float]] = {
    1: (0.0, 4.0),
    2: (4.0, 7.0),
    3: (7.0, 10.0),
    4: (10.0, 14.0),
    5: (14.0, 17.0),
    6: (17.0, 20.0),
    7: (20.0, 90.0),
    8: (90.0, 93.0),
    9: (93.0, 96.0),
    10: (96.0, 98.0),
    11: (98.0, 100.0),
    12: (100.0, 100.0),
}


@dataclass(frozen=True)
class ProgressSnapshot:
    """A frozen copy of an operation's progress."""

    operation_id: str
    status: str
    percentage: float
    step_number: int
    step_name: str
    total_steps: int
    message: str
    step_current: float
    step_total: float
    context: Mapping[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    updated_at: float | None = None
    error: str | None = None
    # When the current step started, and the overall percentage then: the estimate of what is
    # left is measured on the step under way, not on steps of another pace before it.
    step_started_at: float | None = None
    step_start_percentage: float = 0.0
    # When each step started so far (step number -> Unix time): the runs ledger's per-step
    # durations, exact even when a quick step falls between two snapshots.
    step_starts: Mapping[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "status": self.status,
            "percentage": round(self.percentage, 2),
            "step_number": self.step_number,
            "step_name": self.step_name,
            "total_steps": self.total_steps,
            "message": self.message,
            "step_current": self.step_current,
            "step_total": self.step_total,
            "context": dict(self.context),
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "error": self.error,
            "step_started_at": self.step_started_at,
            "step_start_percentage": round(self.step_start_percentage, 2),
            "step_starts": {str(n): t for n, t in self.step_starts.items()},
        }


class GenericProgressManager:
    """Thread-safe progress of one operation through numbered steps."""

    def __init__(
        self,
        operation_id: str | None = None,
        steps: tuple[str, ...] = TRAINING_STEPS,
        bands: Mapping[int, tuple[float, float]] = TRAINING_BANDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if set(bands) != set(range(1, len(steps) + 1)):
            raise ValueError("every step needs a percentage band")
        self._clock = clock  # seconds since the epoch; a test passes its own
        self._lock = threading.Lock()
        self._steps = steps
        self._bands = dict(bands)
        self._started: list[int] = []
        self._state = ProgressSnapshot(
            operation_id=operation_id or uuid.uuid4().hex,
            status="pending",
            percentage=0.0,
            step_number=0,
            step_name="",
            total_steps=len(steps),
            message="Pending",
            step_current=0,
            step_total=0,
        )

    @property
    def started_steps(self) -> list[int]:
        """The step numbers started so far, in order."""
        with self._lock:
            return list(self._started)

    def start_step(self, number: int, name: str | None = None) -> None:
        """Start step ``number`` (each once, in increasing order); ValueError otherwise."""
        with self._lock:
            if not 1 <= number <= len(self._steps):
                raise ValueError(f"step {number} is not between 1 and {len(self._steps)}")
            if self._started and number <= self._started[-1]:
                raise ValueError(f"step {number} started after step {self._started[-1]}")
            if self._state.status in TERMINAL:
                raise ValueError(f"cannot start step {number}: operation {self._state.status}")
            self._started.append(number)
            label = name or self._steps[number - 1]
            now = self._clock()
            percentage = max(self._state.percentage, self._bands[number][0])
            self._state = replace(
                self._state,
                status="running",
                step_number=number,
                step_name=label,
                message=f"Step {number}/{len(self._steps)}: {label}",
                step_current=0,
                step_total=0,
                context={},
                updated_at=now,
                started_at=self._state.started_at or now,
                percentage=percentage,
                step_started_at=now,
                step_start_percentage=percentage,
                step_starts={**self._state.step_starts, number: now},
            )

    def update_step_progress(
        self,
        step_current: float,
        step_total: float,
        message: str = "",
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Progress inside the current step (e.g. epoch 5 of 100, symbol 2 of 3)."""
        with self._lock:
            number = self._state.step_number
            if number == 0 or self._state.status != "running":
                return
            start, end = self._bands[number]
            fraction = min(max(step_current / step_total, 0.0), 1.0) if step_total else 0.0
            percentage = max(self._state.percentage, start + (end - start) * fraction)
            self._state = replace(
                self._state,
                step_current=step_current,
                step_total=step_total,
                message=message or self._state.message,
                context=dict(context) if context is not None else self._state.context,
                percentage=percentage,
                updated_at=self._clock(),
            )

    def complete(self, message: str = "Complete") -> None:
        with self._lock:
            self._state = replace(
                self._state,
                status="completed",
                percentage=100.0,
                message=message,
                updated_at=self._clock(),
            )

    def fail(self, message: str) -> None:
        with self._lock:
            self._state = replace(
                self._state,
                status="failed",
                message=message,
                error=message,
                updated_at=self._clock(),
            )

    def cancelled(self, message: str = "Cancelled") -> None:
        with self._lock:
            self._state = replace(
                self._state, status="cancelled", message=message, updated_at=self._clock()
            )

    def mirror(self, snapshot: Mapping[str, Any]) -> None:
        """Take the state of a snapshot sent by another process (``ProgressSnapshot.to_dict``),
        keeping this manager's operation id; the percentage still never goes backwards."""
        with self._lock:
            number = int(snapshot.get("step_number") or 0)
            if number and number not in self._started:
                self._started.extend(n for n in range(1, number + 1) if n not in self._started)
            self._state = replace(
                self._state,
                status=str(snapshot.get("status") or self._state.status),
                percentage=max(self._state.percentage, float(snapshot.get("percentage") or 0.0)),
                step_number=number,
                step_name=str(snapshot.get("step_name") or ""),
                message=str(snapshot.get("message") or ""),
                step_current=float(snapshot.get("step_current") or 0),
                step_total=float(snapshot.get("step_total") or 0),
                context=dict(snapshot.get("context") or {}),
                started_at=_finite(snapshot.get("started_at")) or self._state.started_at,
                updated_at=self._clock(),
                error=snapshot.get("error"),
                step_started_at=_finite(snapshot.get("step_started_at")),
                step_start_percentage=_finite(snapshot.get("step_start_percentage")) or 0.0,
                step_starts=_step_starts(snapshot.get("step_starts")),
            )

    def snapshot(self) -> ProgressSnapshot:
        """A frozen copy; safe to read from any thread."""
        with self._lock:
            return replace(
                self._state,
                context=dict(self._state.context),
                step_starts=dict(self._state.step_starts),
            )


def render_training_message(snapshot: ProgressSnapshot) -> str:
    """One line such as "Step 7/12 Training model · Epoch 5/100 · Batch 30/188"."""
    if snapshot.step_number == 0:
        return snapshot.message
    parts = [f"Step {snapshot.step_number}/{snapshot.total_steps} {snapshot.step_name}"]
    context = snapshot.context
    if "epoch" in context:
        parts.append(f"Epoch {context['epoch']}/{context['total_epochs']}")
        if "batch" in context:
            parts.append(f"Batch {context['batch']}/{context['total_batches']}")
    elif "symbol" in context:
        parts.append(f"{context['symbol']} ({context['index']}/{context['count']})")
    if snapshot.status in TERMINAL and snapshot.status != "completed":
        parts.append(snapshot.status)
    return " · ".join(parts)


# Points of overall percentage the current step must have moved before its own pace is used.
STEP_PROGRESS_TO_ESTIMATE = 1.0


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (a snapshot from elsewhere is not
    trusted to hold one), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _step_starts(value: Any) -> dict[int, float]:
    """A snapshot's ``step_starts`` from elsewhere: only step numbers with finite times."""
    if not isinstance(value, Mapping):
        return {}
    starts: dict[int, float] = {}
    for key, time_ in value.items():
        number = _finite(time_)
        if str(key).isdigit() and number is not None and len(starts) < 64:
            starts[int(key)] = number
    return starts


def elapsed_and_remaining(
    snapshot: ProgressSnapshot, now: float | None = None
) -> tuple[float | None, float | None]:
    """Seconds since the operation started, and an estimate of the seconds left.

    Once the step under way has moved the overall percentage by ``STEP_PROGRESS_TO_ESTIMATE``
    points, the pace is measured on that step alone (seconds per point since it started) and
    carried over the points left: the quick steps before training say nothing of an epoch's
    length, and counted with it they made a 30-epoch run look nearly done at epoch 2. Before
    that, the overall percentage is extrapolated from the start (the bands follow where time
    goes: step 7 spans 20-90%). None before 5% (too early to say) and once the operation ended.
    Early stopping can end a training sooner than estimated.
    """
    if snapshot.started_at is None:
        return None, None
    moment = time.time() if now is None else now
    elapsed = max(0.0, moment - snapshot.started_at)
    done = snapshot.percentage
    if snapshot.status != "running" or done < 5.0 or done >= 100.0:
        return elapsed, None
    in_step = done - snapshot.step_start_percentage
    if snapshot.step_started_at is not None and in_step >= STEP_PROGRESS_TO_ESTIMATE:
        pace = max(0.0, moment - snapshot.step_started_at) / in_step
        return elapsed, pace * (100.0 - done)
    return elapsed, elapsed * (100.0 - done) / done


def render_time(snapshot: ProgressSnapshot, now: float | None = None) -> str:
    """``12 s elapsed · about 30 s left`` (or just the elapsed part), for displays."""
    elapsed, remaining = elapsed_and_remaining(snapshot, now)
    if elapsed is None:
        return ""
    text = f"{_duration(elapsed)} elapsed"
    if remaining is not None:
        text += f" · about {_duration(remaining)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
