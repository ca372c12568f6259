"""Hermetic e2e fixtures: each test gets its own data and model stores, set in the environment.

The stores are filled by the same function ``ktrdr data sample`` uses, and the executor flags are
cleared (by the root conftest) unless a test sets them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def e2e_env(
    sample_data_dir: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """Point KTRDR_DATA_DIR and KTRDR_MODELS_DIR at this test's own temporary stores."""
    monkeypatch.setenv("KTRDR_DATA_DIR", str(sample_data_dir))
    monkeypatch.setenv("KTRDR_MODELS_DIR", str(models_dir))
    return {"data_dir": sample_data_dir, "models_dir": models_dir}
