"""RunPool with real spawned workers: queueing, cancellation, failures, crashes, the kill after
the grace period and worker reuse. Every pool is shut down; every wait is for an event."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.config import load_strategy_config
from ktrdr.errors import StrategyConfigError
from ktrdr.runs import RunHandle, RunPool
from ktrdr.store.received import receive_artifact
from ktrdr.training.run_spec import RunSpec, build_run_spec
from tests.conftest import STRATEGIES_DIR

pytestmark = [pytest.mark.unit, pytest.mark.slow]

CONFIG = load_strategy_config(STRATEGIES_DIR / "neuro_mean_reversion.yaml", {"training.epochs": 2})


def request(data_dir: Path, **fields: Any) -> RunSpec:
    defaults: dict[str, Any] = {
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "start_date": "2017-01-01",
        "end_date": "2017-03-31",
        "save": False,
        "data_dir": data_dir,
        "threads": 1,
    }
    return build_run_spec(CONFIG, **{**defaults, **fields})


@pytest.fixture
def pools() -> Iterator[Callable[..., RunPool]]:
    """Pools made by the test, each shut down after it whatever happened."""
    made: list[RunPool] = []

    def make(*args: Any, **kwargs: Any) -> RunPool:
        made.append(RunPool(*args, **kwargs))
        return made[-1]

    yield make
    for pool in made:
        pool.shutdown(grace_s=0)


def _in_training() -> tuple[threading.Event, Callable[[RunHandle, dict[str, Any]], None]]:
    """An event set once a run reports step 7, and the progress listener that sets it."""
    reached = threading.Event()

    def listen(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        if snapshot.get("step_number") == 7:
            reached.set()

    return reached, listen


LONG = {
    "end_date": "2017-12-31",
    "overrides": {"training.epochs": 2000, "training.early_stopping": None},
}


def test_runs_queue_beyond_the_cap_and_report_progress(
    sample_data_dir: Path, pools: Callable[..., RunPool]
) -> None:
    pool = pools(max_running=1)
    seen: dict[str, list[float]] = {"first": [], "second": []}

    def listen(handle: RunHandle, snapshot: dict[str, Any]) -> None:
        assert snapshot["operation_id"] == handle.run_id
        seen[handle.run_id].append(snapshot["percentage"])

    first = pool.start(request(sample_data_dir, run_id="first"), on_progress=listen)
    second = pool.start(request(sample_data_dir, run_id="second"), on_progress=listen)
    assert (first.status(), second.status()) == ("running", "pending")
    assert (pool.running, pool.pending) == (1, 1)
    assert first.wait(120) and second.wait(120)
    for handle in (first, second):
        outcome = handle.outcome()
        assert outcome is not None and outcome.status == "completed", outcome
        assert outcome.artifact is not None
        artifact = receive_artifact(outcome.artifact)
        assert artifact.manifest["feature_names"] == outcome.result["feature_names"]
        assert seen[handle.run_id][-1] == 100.0
        assert seen[handle.run_id] == sorted(seen[handle.run_id])  # never backwards


def test_a_pending_run_cancels_at_once_and_a_running_one_through_its_token(
    sample_data_dir: Path, pools: Callable[..., RunPool]
) -> None:
    pool = pools(max_running=1)
    training, listen = _in_training()
    running = pool.start(request(sample_data_dir, **LONG), on_progress=listen)
    waiting = pool.start(request(sample_data_dir))
    waiting.cancel()
    assert waiting.status() == "cancelled" and waiting.wait(0)
    assert training.wait(120)
    started = time.monotonic()
    running.cancel(grace_s=30)
    assert running.wait(30)
    outcome = running.outcome()
    assert outcome is not None and outcome.status == "cancelled"
    assert "cancelled by request" in (outcome.error or "")
    assert time.monotonic() - started < 10  # the token, not the grace period's kill


def test_a_failing_run_reports_its_error_and_a_killed_one_its_signal(
    sample_data_dir: Path, tmp_path: Path, pools: Callable[..., RunPool]
) -> None:
    pool = pools(max_running=2)
    training, listen = _in_training()
    missing = pool.start(request(tmp_path / "empty"))
    long = pool.start(request(sample_data_dir, **LONG), on_progress=listen)
    assert missing.wait(60)
    failed = missing.outcome()
    assert failed is not None and failed.status == "failed"
    assert failed.error_type == "DataError" and "EURUSD_1h.csv does not exist" in failed.error
    assert training.wait(120)
    assert long.pid is not None and long.status() == "running"
    os.kill(long.pid, signal.SIGKILL)
    assert long.wait(10)
    crashed = long.outcome()
    assert crashed is not None and crashed.status == "failed"
    assert "killed by SIGKILL" in (crashed.error or "")
    assert (pool.running, pool.pending) == (0, 0)


def test_a_bad_strategy_is_refused_before_any_worker_starts(sample_data_dir: Path) -> None:
    # The spec is checked once, where it is built: nothing bad ever reaches a worker.
    with pytest.raises(StrategyConfigError, match=r"training\.epochs"):
        request(sample_data_dir, overrides={"training.epochs": 0})


def test_a_run_that_ignores_its_token_is_killed_after_the_grace_period(
    sample_data_dir: Path, pools: Callable[..., RunPool]
) -> None:
    pool = pools(max_running=1, warm=False)
    training, listen = _in_training()
    stuck = pool.start(request(sample_data_dir, **LONG), on_progress=listen)
    assert training.wait(120) and stuck.pid is not None
    os.kill(stuck.pid, signal.SIGSTOP)  # it can no longer answer its token
    try:
        stuck.cancel(grace_s=1)
        assert stuck.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed, as it should be
            os.kill(stuck.pid, signal.SIGCONT)
    outcome = stuck.outcome()
    assert outcome is not None and outcome.status == "cancelled"
    assert outcome.error == "cancelled; the worker was killed after the grace period"


def test_a_worker_is_reused_after_a_clean_ending_and_replaced_after_a_crash(
    sample_data_dir: Path, tmp_path: Path, pools: Callable[..., RunPool]
) -> None:
    pool = pools(max_running=1, warm=False)
    first = pool.start(request(tmp_path / "empty"))  # fails cleanly: a DataError
    assert first.wait(60)
    worker = first.pid
    second = pool.start(request(sample_data_dir))
    assert second.wait(120) and second.status() == "completed"
    assert second.pid == worker  # the loaded worker took the next run
    training, listen = _in_training()
    third = pool.start(request(sample_data_dir, **LONG), on_progress=listen)
    assert training.wait(120) and third.pid == worker
    os.kill(worker, signal.SIGKILL)
    assert third.wait(30) and third.status() == "failed"
    fourth = pool.start(request(tmp_path / "empty"))
    assert fourth.wait(60)
    assert fourth.pid not in (None, worker)  # a crashed worker is never used again


def test_a_late_cancel_never_reaches_the_next_run_of_the_same_worker() -> None:
    """The window between a run's last message and its end: its worker may already be training
    the next run, so its cancel flag is that run's now and must stay untouched."""
    import threading

    from ktrdr.runs.pool import PoolHandle
    from tests.training_helpers import short_spec

    pool = RunPool(1, warm=False)
    try:
        handle = PoolHandle(short_spec(None, run_id="ended"), pool, None, None)
        next_runs_flag = threading.Event()
        handle._status = "running"
        handle._cancel = next_runs_flag
        handle._ended_work.set()  # its worker reported and was handed on
        handle.cancel(grace_s=0)
        assert not next_runs_flag.is_set()
    finally:
        pool.shutdown(grace_s=0)


# Registered before anything imports multiprocessing, so that it runs after multiprocessing's
# own exit hook has terminated the workers: it reports how the waiting run ended.
_EXITING_SCRIPT = """
import atexit, sys
ended = {}

def report():
    handle = ended["waiting"]
    handle.wait(60)
    outcome = handle.outcome()
    print("waiting run:", "still running" if outcome is None else outcome.status, flush=True)

atexit.register(report)

import threading
from pathlib import Path
from ktrdr.config import load_strategy_config
from ktrdr.runs import RunPool
from ktrdr.training.run_spec import build_run_spec

def main():
    config = load_strategy_config(
        sys.argv[1], {"training.epochs": 2000, "training.early_stopping": None}
    )
    common = dict(symbols=["EURUSD"], timeframes=["1h"], start_date="2017-01-01",
                  end_date="2017-12-31", save=False, data_dir=Path(sys.argv[2]), threads=1)
    pool = RunPool(max_running=1, warm=False)
    training = threading.Event()
    pool.start(
        build_run_spec(config, **common),
        on_progress=lambda h, s: s.get("step_number") == 7 and training.set(),
    )
    ended["waiting"] = pool.start(build_run_spec(config, **common))
    assert training.wait(300), "the first run never reached training"

if __name__ == "__main__":
    main()  # returns with the pool open, as the CLI does after a second Ctrl-C
    if sys.argv[3] == "cli":  # the ktrdr command's way out: its exit hooks, then os._exit
        import os
        from ktrdr.cli import run_exit_hooks

        atexit.unregister(report)  # called after the hooks instead, whatever they did
        run_exit_hooks()
        report()
        import multiprocessing

        def running(pid):  # a process reaped by another thread's join still looks active
            try:
                return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
            except (FileNotFoundError, IndexError):
                return False

        left = [p.pid for p in multiprocessing.active_children() if running(p.pid)]
        print("workers left:", len(left), flush=True)
        os._exit(0)
"""


@pytest.mark.parametrize("way_out", ["interpreter", "cli"])
def test_a_process_that_exits_with_its_pool_open_starts_no_waiting_run(
    sample_data_dir: Path, tmp_path: Path, way_out: str
) -> None:
    """At exit multiprocessing terminates the workers; the run that ends so must not start
    the next waiting one (the exiting process spawned a worker it could not feed, and the
    sweep CLI printed 'could not start run' after its last word). The ``ktrdr`` command ends
    with ``os._exit``, which skips the exit hooks unless it runs them: a second Ctrl-C on a
    sweep left such a worker, whose 'EOFError: Ran out of input' traceback followed the
    command's last line."""
    import subprocess
    import sys

    script = tmp_path / "exiting.py"
    script.write_text(_EXITING_SCRIPT)
    strategy = STRATEGIES_DIR / "neuro_mean_reversion.yaml"
    done = subprocess.run(
        [sys.executable, str(script), str(strategy), str(sample_data_dir), way_out],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=Path(__file__).parents[3],
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "waiting run: cancelled" in done.stdout, output
    if way_out == "cli":
        assert "workers left: 0" in done.stdout, output
    assert "Traceback" not in output, output


def test_a_run_started_on_a_shut_down_pool_ends_cancelled_at_once() -> None:
    """A service that gets a request while it shuts down records the run as ended."""
    from tests.training_helpers import short_spec

    pool = RunPool(1, warm=False)
    pool.shutdown(grace_s=0)
    ended: list[str] = []
    handle = pool.start(short_spec(None, run_id="late"), on_finish=lambda h: ended.append(h.run_id))
    outcome = handle.outcome()
    assert outcome is not None and outcome.status == "cancelled", outcome
    assert outcome.error == "not started: the run pool is shut down"
    assert ended == ["late"] and pool.pending == 0 and pool.running == 0


def test_a_shutdown_while_a_run_is_handed_to_its_worker_ends_it_cancelled_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A second Ctrl-C closed the worker's pipes while the sweep's next run was being sent to
    it: the run failed with "OSError: handle is closed" and a traceback after the last line."""
    from tests.training_helpers import short_spec

    pool = RunPool(1, warm=False)

    def closed_under_it() -> object:
        pool._close()  # the shutdown, between taking the run and sending it
        raise OSError("handle is closed")

    monkeypatch.setattr(pool, "_worker", closed_under_it)
    with caplog.at_level(logging.INFO, logger="ktrdr.runs.pool"):
        handle = pool.start(short_spec(None, run_id="handed"))
        outcome = handle.outcome()
    assert outcome is not None and outcome.status == "cancelled", outcome
    assert outcome.error == "not started: the run pool is shut down"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert pool.running == 0
    pool.shutdown(grace_s=0)


def test_a_worker_that_cannot_take_its_request_is_replaced_and_the_run_still_trains(
    sample_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Under load a sweep logged "could not start run r004 ... OSError: handle is closed": the
    idle worker it was handed could not take the request. Such a worker goes, and the run
    trains on a new one."""
    pool = RunPool(1, warm=True)
    try:
        [idle] = pool._idle
        idle.requests.close()  # a worker whose pipe is gone
        with caplog.at_level(logging.INFO, logger="ktrdr.runs.pool"):
            handle = pool.start(request(sample_data_dir, overrides={"training.epochs": 1}))
            assert handle.wait(120)
        outcome = handle.outcome()
        assert outcome is not None and outcome.status == "completed", outcome
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not idle.process.is_alive()  # discarded, not left behind
    finally:
        pool.shutdown(grace_s=0)


@pytest.mark.parametrize(("places", "spares"), [(1, 0), (2, 1)])
def test_a_spare_loads_beside_a_run_only_while_another_run_could_start(
    sample_data_dir: Path, pools: Callable[..., RunPool], places: int, spares: int
) -> None:
    """With every place taken, no run can use a spare before a worker comes back: one loading
    beside each run took a core from it and was then let go (the rollout rehearsal's runs, one
    place on two cores, took anywhere from 0.5 to 2.4 s for the same 40 epochs)."""
    pool = pools(max_running=places, warm=True)
    reached, listen = _in_training()
    handle = pool.start(request(sample_data_dir, **LONG), on_progress=listen)
    assert reached.wait(120)
    with pool._lock:
        idle = list(pool._idle)
    assert len(idle) == spares
    handle.cancel(grace_s=5)
    assert handle.wait(60)
    with pool._lock:
        # The worker that trained waits for the next run, beside the spare if one loaded.
        assert len(pool._idle) == spares + 1
