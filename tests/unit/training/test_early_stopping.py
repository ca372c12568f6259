from __future__ import annotations

import pytest
import torch

from ktrdr.training.early_stopping import EarlyStopping

pytestmark = pytest.mark.unit


def run(stopper: EarlyStopping, values: list[float]) -> list[tuple[bool, str]]:
    decisions = []
    for epoch, value in enumerate(values, start=1):
        state = {"w": torch.tensor([float(epoch)])}
        decisions.append(stopper.update(epoch, value, state))
        if decisions[-1][0]:
            break
    return decisions


def test_stops_after_patience_epochs_without_improvement() -> None:
    stopper = EarlyStopping("val_loss", patience=2, min_delta=0.01)
    decisions = run(stopper, [1.0, 0.8, 0.795, 0.81, 0.5])
    assert [d[0] for d in decisions] == [False, False, False, True]
    assert "did not improve by more than 0.01 for 2 epochs" in decisions[-1][1]
    assert stopper.best_epoch == 2
    assert stopper.best_weights()["w"].item() == 2.0


def test_accuracy_is_maximised_and_no_patience_never_stops() -> None:
    stopper = EarlyStopping("val_accuracy", patience=None)
    decisions = run(stopper, [0.4, 0.6, 0.5, 0.55, 0.52])
    assert not any(stop for stop, _ in decisions)
    assert stopper.best_epoch == 2


def test_best_weights_are_a_copy() -> None:
    stopper = EarlyStopping()
    state = {"w": torch.tensor([1.0])}
    stopper.update(1, 0.5, state)
    state["w"] += 5
    assert stopper.best_weights()["w"].item() == 1.0


def test_nan_never_improves_and_bad_monitor_lists_choices() -> None:
    stopper = EarlyStopping(patience=1)
    stopper.update(1, 0.5, {"w": torch.zeros(1)})
    assert stopper.update(2, float("nan"), {"w": torch.ones(1)})[0]
    with pytest.raises(ValueError, match="'val_los' is not a metric; use val_loss or val_acc"):
        EarlyStopping("val_los")
