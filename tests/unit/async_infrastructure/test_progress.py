from __future__ import annotations

import threading

import pytest

from ktrdr.async_infrastructure.progress import (
    TRAINING_BANDS,
    GenericProgressManager,
    render_training_message,
)
from ktrdr.training.progress_integration import TrainingProgressIntegrator

pytestmark = pytest.mark.unit


def test_steps_start_once_in_order_and_percentages_follow_the_bands() -> None:
    manager = GenericProgressManager("op-1")
    assert manager.snapshot().status == "pending"
    manager.start_step(1, "Loading market data")
    assert manager.snapshot().percentage == 0.0
    manager.start_step(7, "Training model")
    assert manager.snapshot().percentage == TRAINING_BANDS[7][0] == 20.0
    manager.update_step_progress(50, 100, "Epoch 50/100")
    assert manager.snapshot().percentage == pytest.approx(55.0)
    manager.update_step_progress(10, 100)  # a late, smaller update never moves it back
    assert manager.snapshot().percentage == pytest.approx(55.0)
    with pytest.raises(ValueError, match="step 3 started after step 7"):
        manager.start_step(3)
    with pytest.raises(ValueError, match="step 7 started after step 7"):
        manager.start_step(7)
    manager.start_step(12)
    manager.complete()
    snapshot = manager.snapshot()
    assert (snapshot.status, snapshot.percentage) == ("completed", 100.0)
    assert manager.started_steps == [1, 7, 12]


def test_snapshots_are_frozen_copies() -> None:
    manager = GenericProgressManager()
    manager.start_step(1)
    manager.update_step_progress(1, 2, context={"symbol": "EURUSD", "index": 1, "count": 2})
    snapshot = manager.snapshot()
    manager.update_step_progress(2, 2, context={"symbol": "GBPUSD", "index": 2, "count": 2})
    assert snapshot.context["symbol"] == "EURUSD"
    with pytest.raises(AttributeError):
        snapshot.status = "failed"  # type: ignore[misc]


def test_fail_and_cancel() -> None:
    manager = GenericProgressManager()
    manager.start_step(2)
    manager.fail("bad data")
    assert manager.snapshot().status == "failed" and manager.snapshot().error == "bad data"
    other = GenericProgressManager()
    other.start_step(7)
    other.cancelled()
    assert other.snapshot().status == "cancelled"
    with pytest.raises(ValueError, match="cannot start step 8: operation cancelled"):
        other.start_step(8)


def test_integrator_callback_reports_epochs_and_batches_inside_step_7() -> None:
    manager = GenericProgressManager()
    manager.start_step(7, "Training model")
    callback = TrainingProgressIntegrator(manager, step_number=7).create_callback()
    callback(
        5,
        100,
        {
            "progress_type": "batch",
            "batch": 30,
            "total_batches": 188,
            "train_loss": 1.0,
            "train_accuracy": 0.4,
        },
    )
    snapshot = manager.snapshot()
    assert render_training_message(snapshot) == (
        "Step 7/12 Training model · Epoch 5/100 · Batch 30/188"
    )
    assert snapshot.context["metrics"]["train_loss"] == 1.0
    callback(5, 100, {"progress_type": "epoch", "train_loss": 0.9})
    assert render_training_message(manager.snapshot()) == "Step 7/12 Training model · Epoch 5/100"
    assert manager.snapshot().percentage == pytest.approx(20 + 70 * 0.05)


def test_many_threads_update_safely() -> None:
    manager = GenericProgressManager()
    manager.start_step(7)

    def hammer(offset: int) -> None:
        for i in range(200):
            manager.update_step_progress(offset + i, 1000)
            manager.snapshot()

    threads = [threading.Thread(target=hammer, args=(k * 200,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manager.snapshot().percentage == pytest.approx(20 + 70 * 799 / 1000)


def test_mirroring_another_process_snapshot_keeps_the_id_and_never_goes_back() -> None:
    remote = GenericProgressManager("remote")
    remote.start_step(7, "Training model")
    remote.update_step_progress(3, 10, "epoch 3/10", context={"epoch": 3})
    local = GenericProgressManager("local")
    local.mirror(remote.snapshot().to_dict())
    mirrored = local.snapshot()
    assert mirrored.operation_id == "local" and mirrored.step_number == 7
    assert mirrored.context == {"epoch": 3} and mirrored.message == "epoch 3/10"
    assert local.started_steps == list(range(1, 8))
    stale = {**remote.snapshot().to_dict(), "percentage": 5.0}
    local.mirror(stale)
    assert local.snapshot().percentage == mirrored.percentage


def test_elapsed_and_the_estimate_of_what_is_left() -> None:
    from ktrdr.async_infrastructure.progress import elapsed_and_remaining, render_time

    manager = GenericProgressManager("timed")
    assert elapsed_and_remaining(manager.snapshot()) == (None, None)
    manager.start_step(7, "Training model")
    manager.update_step_progress(1, 7)  # 30% overall
    snapshot = manager.snapshot()
    assert snapshot.started_at is not None
    elapsed, left = elapsed_and_remaining(snapshot, now=snapshot.started_at + 30)
    # The 30 s all went to step 7's first 10 points: 3 s a point, 70 points to go.
    assert elapsed == 30 and left == pytest.approx(30 / 10 * (100 - snapshot.percentage))
    assert render_time(snapshot, now=snapshot.started_at + 30).startswith("30 s elapsed · about ")
    assert render_time(snapshot, now=snapshot.started_at + 3725).startswith("1 h 02 min elapsed")
    manager.complete()
    assert elapsed_and_remaining(manager.snapshot())[1] is None


def test_the_estimate_follows_the_pace_of_training_not_of_the_quick_steps_before_it() -> None:
    # As seen in host mode: steps 1-6 took 2 s, then each of 30 epochs 10 s. Extrapolating the
    # overall percentage (24.7% at epoch 2) said 31 s were left of about 290.
    from ktrdr.async_infrastructure.progress import elapsed_and_remaining

    clock = [1_000.0]
    manager = GenericProgressManager("paced", clock=lambda: clock[0])
    for step in range(1, 7):
        manager.start_step(step)
        clock[0] += 2 / 6
    manager.start_step(7)
    for epoch in (1, 2):
        clock[0] += 10
        manager.update_step_progress(epoch, 30)
    elapsed, left = elapsed_and_remaining(manager.snapshot(), now=clock[0])
    assert elapsed == pytest.approx(22)
    training_left = 28 * 10
    assert left is not None and training_left <= left <= training_left * 1.2, left
    # Mirrored from another process (a worker, the host), the estimate is the same.
    local = GenericProgressManager("local")
    local.mirror(manager.snapshot().to_dict())
    # (a snapshot's percentages travel rounded to two decimals)
    assert elapsed_and_remaining(local.snapshot(), now=clock[0])[1] == pytest.approx(left, rel=1e-2)
    # Times that are not numbers (a host is not trusted) fall back to what is known.
    local.mirror({**manager.snapshot().to_dict(), "step_started_at": "soon", "started_at": None})
    assert local.snapshot().step_started_at is None
    assert local.snapshot().started_at == manager.snapshot().started_at
