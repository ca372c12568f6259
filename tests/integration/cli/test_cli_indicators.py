"""``ktrdr indicators list``: every registered indicator, as a table and as JSON."""

from __future__ import annotations

import json

import pytest

from ktrdr.cli.main import main
from ktrdr.indicators.registry import REGISTRY

pytestmark = pytest.mark.integration


def test_every_registered_indicator_is_listed_with_its_outputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["indicators", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["type"] for row in rows) == sorted(REGISTRY)
    assert all(row["outputs"] and row["history"] for row in rows)
    assert main(["indicators", "list"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in REGISTRY)
