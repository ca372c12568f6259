"""The README's set-up commands have a recipe on a fresh machine.

Locally `.venv` already exists, so a Makefile that lost the rule building it still works here and
fails only on a clean checkout (CI). `make -n` against a virtual environment that does not exist
asks make for the whole plan without running any of it.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["install", "train", "test", "quality", "test-e2e-training"])
def test_each_set_up_target_has_a_plan_without_a_virtual_environment(
    target: str, tmp_path: Path
) -> None:
    make = shutil.which("make")
    assert make, "make is missing: apt-get install make"
    fresh = tmp_path / "fresh-venv"
    done = subprocess.run(
        [make, "-n", target, f"VENV={fresh}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # The plan creates the environment and installs the project into it before anything else.
    assert f"-m venv {fresh}" in done.stdout
    assert f"{fresh}/bin/python -m pip install" in done.stdout
    assert not fresh.exists()
