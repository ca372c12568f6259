"""Sweeps: many trainings from one file, on local worker processes or a Ray cluster.

``ktrdr.sweep(spec_or_path, ray_address=None) -> SweepResult`` in Python; ``ktrdr sweep FILE``
on the command line. The sweep file's format is in ``ktrdr.sweep.spec``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ktrdr.sweep.runner import SweepResult, sweep
from ktrdr.sweep.spec import SweepSpec, load_sweep

__all__ = ["SweepResult", "SweepSpec", "load_sweep", "sweep"]


class _CallablePackage(types.ModuleType):
    """``ktrdr.sweep`` is both this package and the function users call: once any
    ``ktrdr.sweep.*`` module is imported, Python binds the package to ``ktrdr.sweep``, so the
    package itself answers the call, whatever was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
