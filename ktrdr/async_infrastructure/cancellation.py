"""Cancellation tokens (docs/architecture.md: training).

A token is shared between whoever may cancel (the CLI's Ctrl-C handler, an API request) and the code
doing the work, which checks it before every step and every batch and raises ``CancellationError``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, runtime_checkable

from ktrdr.errors import CancellationError

__all__ = ["CancellationError", "CancellationToken", "ThreadingCancellationToken"]


@runtime_checkable
class CancellationToken(Protocol):
    """What every token offers; producers only ever call ``is_cancelled``."""

    def is_cancelled(self) -> bool: ...

    def cancel(self, reason: str = "Operation cancelled") -> None: ...

    async def wait_for_cancellation(self) -> None: ...

    @property
    def is_cancelled_requested(self) -> bool: ...


class ThreadingCancellationToken:
    """A thread-safe token; ``cancel`` may be called from any thread, any number of times."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._cancelled_at: float | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def is_cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def is_cancelled_requested(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        """The reason given to the first ``cancel`` call, or None."""
        return self._reason

    @property
    def cancelled_at(self) -> float | None:
        """When the first ``cancel`` came (``time.monotonic()``), or None: how quickly the work
        obeyed it is measured from here."""
        return self._cancelled_at

    def cancel(self, reason: str = "Operation cancelled") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._reason = reason
            self._cancelled_at = time.monotonic()
            self._event.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            # Wake each waiting coroutine on its own loop; never touch a loop from another thread.
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    def raise_if_cancelled(self, where: str = "") -> None:
        """Raise ``CancellationError`` (naming ``where`` and the reason) if cancelled."""
        if self._event.is_set():
            suffix = f" during {where}" if where else ""
            raise CancellationError(f"{self._reason or 'Operation cancelled'}{suffix}")

    async def wait_for_cancellation(self) -> None:
        """Return once the token is cancelled, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._event.is_set():
                return
            self._waiters.append((loop, future))
        await future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def check_cancelled(token: CancellationToken | None, where: str = "") -> None:
    """Raise ``CancellationError`` if ``token`` (which may be None) has been cancelled."""
    if token is not None and token.is_cancelled():
        reason = getattr(token, "reason", None) or "Operation cancelled"
        suffix = f" during {where}" if where else ""
        raise CancellationError(f"{reason}{suffix}")
