"""The one vocabulary of a run's status, shared by progress, runs, sweeps, the host and the API.

A run is ``pending`` until it starts, ``running`` until it ends, and then exactly one of
``completed``, ``failed`` or ``cancelled``, for good.
"""

from __future__ import annotations

from typing import Literal, get_args

TerminalStatus = Literal["completed", "failed", "cancelled"]
Status = Literal["pending", "running", "completed", "failed", "cancelled"]

STATUSES: tuple[str, ...] = get_args(Status)
TERMINAL: tuple[str, ...] = get_args(TerminalStatus)
ACTIVE: tuple[str, ...] = tuple(s for s in STATUSES if s not in TERMINAL)


def is_terminal(status: str) -> bool:
    """True for a status a run never leaves (completed, failed, cancelled)."""
    return status in TERMINAL
