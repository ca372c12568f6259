"""The committed strategy reference matches the code it is generated from."""

from __future__ import annotations

import json

import pytest

from ktrdr.cli.main import main
from ktrdr.config.reference import render_reference
from ktrdr.indicators.registry import REGISTRY
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_committed_reference_is_up_to_date() -> None:
    committed = (REPO_ROOT / "docs" / "strategy-reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(), (
        "docs/strategy-reference.md is out of date: run "
        "python scripts/generate-strategy-reference.py and commit the result"
    )


def test_every_indicator_and_key_is_in_it() -> None:
    text = render_reference()
    for indicator in REGISTRY:
        assert f"| `{indicator}` |" in text
    for key in (
        "training.learning_rate",
        "training.early_stopping.patience",
        "model.architecture.activation",
        "fuzzy_sets.COLUMN.SET.parameters",
        "training.lr_scheduler.type",
        "indicators.0.period",
    ):
        assert key in text
    assert "| `gaussian` | `[mean, sigma]` |" in text


def test_indicators_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["indicators", "list", "--json"]) == 0
    rows = {row["type"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(REGISTRY)
    assert rows["macd"]["outputs"] == "NAME_line, NAME_signal, NAME_hist"
    assert "`period` int = 14 (2..100000)" in rows["rsi"]["parameters"]
    assert main(["indicators", "list"]) == 0
    assert "williams_r" in capsys.readouterr().out
