"""GET /strategies lists every file, and a hostile one costs nothing and hides nothing."""

from __future__ import annotations

import os
from pathlib import Path

from ktrdr.api.strategies import list_strategies
from ktrdr.config.loader import MAX_STRATEGY_BYTES
from ktrdr.store.model_storage import ModelStorage


def test_each_file_is_listed_and_a_fifo_a_device_or_bad_yaml_is_an_error_on_its_own_row(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "a_good.yaml").write_text("name: trend_follow\nindicators: []\n")
    (folder / "b_bad.yaml").write_text("name: x\nweights: !!python/object:os.system {}\n")
    os.mkfifo(folder / "c_fifo.yaml")  # no writer: a plain read would block the request
    (folder / "d_zero.yaml").symlink_to("/dev/zero")  # a plain read would never end
    (folder / "e_huge.yaml").write_text("#" * (MAX_STRATEGY_BYTES + 1))

    rows = {row["file"]: row for row in list_strategies(folder, ModelStorage(tmp_path / "m"))}

    assert rows["a_good.yaml"]["name"] == "trend_follow"
    assert rows["a_good.yaml"]["error"] is None
    bad = rows["b_bad.yaml"]["error"]
    assert bad.startswith("cannot read: b_bad.yaml: invalid YAML at line 2, column 10:")
    assert "could not determine a constructor" in bad and "object at 0x" not in bad
    assert "not a regular file" in rows["c_fifo.yaml"]["error"]
    assert "not a regular file" in rows["d_zero.yaml"]["error"]
    assert f"larger than {MAX_STRATEGY_BYTES} bytes" in rows["e_huge.yaml"]["error"]
    assert all(not row["trained"] for row in rows.values())
