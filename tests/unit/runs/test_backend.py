"""The protocol's shared parts: HandleState's one ending, and run_all, on a scripted backend."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ktrdr.async_infrastructure.cancellation import ThreadingCancellationToken
from ktrdr.runs.backend import (
    DEFAULT_GRACE_S,
    FinishListener,
    HandleState,
    ProgressListener,
    RunOutcome,
    run_all,
)
from ktrdr.training.run_spec import RunSpec
from tests.training_helpers import short_spec

pytestmark = pytest.mark.unit


def _spec(run_id: str) -> RunSpec:
    return short_spec(None, save=False, run_id=run_id)


class ScriptedHandle(HandleState):
    def __init__(self, spec: RunSpec, backend: Scripted, *listeners: Any) -> None:
        super().__init__(spec, *listeners)
        self.backend = backend
        self.cancelled_with: float | None = None

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.cancelled_with = grace_s
        self.backend.cancel_order.append(self.run_id)
        self._finish(RunOutcome("cancelled", error=f"{self.status()} when cancelled"))


class Scripted:
    """Runs that end when the test says, in threads of their own as a real backend's would."""

    placement = ("local", "scripted")

    def __init__(self) -> None:
        self.handles: dict[str, ScriptedHandle] = {}
        self.cancel_order: list[str] = []
        self.started = threading.Event()

    def start(
        self,
        spec: RunSpec,
        on_progress: ProgressListener | None = None,
        on_finish: FinishListener | None = None,
    ) -> ScriptedHandle:
        handle = ScriptedHandle(spec, self, on_progress, on_finish)
        self.handles[spec.run_id] = handle
        if len(self.handles) == 1:
            handle._running()
        self.started.set()
        return handle

    def shutdown(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        pass


def _in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_run_all_follows_every_run_and_tells_the_listener() -> None:
    backend = Scripted()
    heard: list[tuple[str, str, Any]] = []
    outcomes: dict[str, RunOutcome] = {}

    def drive() -> None:
        outcomes.update(
            run_all(backend, [_spec("a"), _spec("b")], listener=lambda *a: heard.append(a))
        )

    thread = _in_thread(drive)
    assert backend.started.wait(10)
    while len(backend.handles) < 2:
        backend.started.wait(0.01)
    a, b = backend.handles["a"], backend.handles["b"]
    a._progress({"percentage": 50.0})
    a._progress({"percentage": 50.0})  # the same snapshot again is no news
    b._finish(RunOutcome("failed", error_type="DataError", error="no bars"))
    a._finish(RunOutcome("completed", result={"x": 1}))
    a._finish(RunOutcome("failed", error="too late"))  # a handle ends once
    thread.join(10)
    assert list(outcomes) == ["a", "b"]  # the order of the specs, not of the endings
    assert outcomes["a"] == RunOutcome("completed", result={"x": 1})
    assert outcomes["b"].error == "no bars"
    assert heard == [
        ("a", "running", {"percentage": 50.0}),
        ("b", "failed", None),
        ("a", "completed", {"percentage": 50.0}),
    ]


def test_a_cancelled_token_cancels_the_waiting_runs_first() -> None:
    backend = Scripted()
    token = ThreadingCancellationToken()
    outcomes: dict[str, RunOutcome] = {}
    specs = [_spec("r1"), _spec("r2"), _spec("r3")]
    thread = _in_thread(lambda: outcomes.update(run_all(backend, specs, token, grace_s=3.0)))
    assert backend.started.wait(10)
    token.cancel("stop")
    thread.join(10)
    assert not thread.is_alive()
    assert backend.cancel_order == ["r3", "r2", "r1"]
    assert {h.cancelled_with for h in backend.handles.values()} == {3.0}
    assert outcomes["r1"].error == "running when cancelled"
    assert outcomes["r3"].error == "pending when cancelled"


def test_a_listener_that_raises_is_logged_and_the_run_still_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("listener bug")

    handle = ScriptedHandle(_spec("x"), Scripted(), broken, broken)
    handle._progress({"percentage": 1.0})
    assert handle._finish(RunOutcome("completed"))
    assert handle.wait(0) and handle.status() == "completed"
    assert handle.snapshot() == {"percentage": 1.0}
    assert "listener of run x failed" in caplog.text
    handle._progress({"percentage": 2.0})  # progress after the end is dropped
    assert handle.snapshot() == {"percentage": 1.0}


def test_run_ids_must_be_unique_and_nothing_is_nothing() -> None:
    with pytest.raises(ValueError, match="unique"):
        run_all(Scripted(), [_spec("same"), _spec("same")])
    assert run_all(Scripted(), []) == {}
