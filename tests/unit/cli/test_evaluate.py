"""What ``ktrdr evaluate --walk-forward`` prints: its fold table stays whole at 80 columns (it
cut "train-majority" to "train-m…" and the dates to "2017-01-…" when piped)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ktrdr.cli.evaluate import _failed_folds, _table, collapse_note
from ktrdr.evaluate.walk_forward import summarise

pytestmark = pytest.mark.unit

DONE = {
    "fold": 11,
    "train_start": "2017-01-01",
    "test_start": "2017-07-01",
    "test_rows": 12345,
    "accuracy": 0.4567,
    "beats_baseline": True,
    "baseline_accuracy": 0.4012,
    "test_majority_baseline_accuracy": 0.4311,
    "p_value": 0.000123,
    "better_baseline_accuracy": 0.4311,
    "error": None,
}
FAILED = {
    "fold": 12,
    "train_start": "2017-03-01",
    "test_start": "2017-09-01",
    "error": "DataError: no EURUSD 1h bars from 2017-09-01 to 2017-11-05; " + "x" * 80,
}


def rendered(table: object) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_fold_table_is_whole_at_80_columns() -> None:
    text = rendered(_table([DONE, FAILED]))
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for cell in ("train maj.", "test maj.", "2017-01-01", "2017-09-01", "12345", "0.457 *"):
        assert cell in text
    assert "0.000123" in text and "failed" in text


def test_the_failure_names_the_failed_folds_and_the_first_error() -> None:
    assert _failed_folds([DONE], _path()) is None
    message = _failed_folds([DONE, FAILED], _path())
    assert message is not None and message.startswith("1 of 2 fold(s) failed (fold 12; fold 12:")
    assert message.endswith("each fold's result or error is in wf/walkforward.json")
    assert _failed_folds([FAILED], _path()).startswith("every fold failed (fold 12;")  # type: ignore[union-attr]


def _path() -> Path:
    return Path("wf/walkforward.json")


def test_folds_whose_models_collapsed_are_named_in_the_summary() -> None:
    # Six folds all predicted HOLD only and the summary never said so.
    collapsed = {**DONE, "collapsed": True, "near_collapse": False, "dominant_class": "HOLD"}
    near = {**DONE, "collapsed": False, "near_collapse": True, "dominant_class": "SELL"}
    fine = {**DONE, "collapsed": False, "near_collapse": False, "dominant_class": "BUY"}
    summary = summarise([collapsed, collapsed, near, fine, FAILED])
    assert (summary["collapsed_folds"], summary["near_collapse_folds"]) == (2, 1)
    assert summary["collapsed_classes"] == ["HOLD"]
    assert collapse_note(summary) == (
        "Warning: 2 of 4 fold(s) predicted one class only (HOLD); 1 of 4 predicted 95% or more "
        "one class: those models collapsed to (nearly) a constant and learned nothing usable"
    )
    assert summarise([fine])["collapsed_folds"] == 0
