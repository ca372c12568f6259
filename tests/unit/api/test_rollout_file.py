from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ktrdr.api.rollout_file import MAX_BYTES, load_rollout, save_rollout
from ktrdr.errors import StrategyConfigError
from ktrdr.training.rollout import RolloutSettings

pytestmark = pytest.mark.unit

BASE = RolloutSettings(percent=10, shadow_percent=5, exclusions=frozenset({"a"}))


def test_saved_settings_load_back_over_the_environment_s(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    assert load_rollout(path, BASE) == BASE  # no file: the environment's
    chosen = RolloutSettings(percent=0, shadow_percent=100, exclusions=frozenset({"b", "c"}))
    save_rollout(path, chosen)
    assert load_rollout(path, BASE) == chosen
    assert json.loads(path.read_text())["executor_exclude"] == ["b", "c"]


def test_a_file_with_some_settings_keeps_the_others_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    path.write_text('{"rollout_percent": 0}')
    assert load_rollout(path, BASE) == RolloutSettings(0, 5, frozenset({"a"}))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{not json", "rollout.json"),
        ('{"rollout_percent": 250}', "rollout_percent"),
        ('{"rollout_percent": "10"}', "rollout_percent"),
        ('{"executor_exclude": ["../x"]}', "executor_exclude"),
        ('{"percent": 10}', "percent"),
        ("[]", "rollout.json"),
        ("", "rollout.json"),
    ],
)
def test_a_damaged_file_is_refused_naming_it_and_what_to_do(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "rollout.json"
    path.write_text(text)
    with pytest.raises(StrategyConfigError) as refused:
        load_rollout(path, BASE)
    assert str(path) in str(refused.value) and named in str(refused.value)
    assert "delete the file" in str(refused.value)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    path.write_bytes(b" " * (MAX_BYTES + 1))
    with pytest.raises(StrategyConfigError, match="is not a rollout file"):
        load_rollout(path, BASE)


def test_concurrent_saves_leave_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    go = threading.Barrier(8)

    def save(percent: int) -> None:
        go.wait()
        for _ in range(20):
            save_rollout(path, RolloutSettings(percent=percent))

    threads = [threading.Thread(target=save, args=(p,)) for p in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert load_rollout(path, BASE).percent in range(8)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rollout")] == []
