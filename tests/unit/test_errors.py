from __future__ import annotations

import pytest

from ktrdr import errors
from ktrdr.async_infrastructure import cancellation

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.StrategyConfigError, 2),
        (errors.DataError, 2),
        (errors.TrainingError, 1),
        (errors.CancellationError, 130),
        (errors.ModelStorageError, 1),
        (errors.ExecutionModeError, 1),
    ],
)
def test_every_error_is_a_ktrdr_error_with_its_exit_code(
    cls: type[errors.KtrdrError], code: int
) -> None:
    assert issubclass(cls, errors.KtrdrError)
    assert cls.exit_code == code


def test_cancellation_error_is_re_exported_by_the_cancellation_module() -> None:
    assert cancellation.CancellationError is errors.CancellationError
