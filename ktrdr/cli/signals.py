"""SIGTERM handled like Ctrl-C, and the exit codes of both.

A service manager, ``timeout`` or ``kill`` stops a process with SIGTERM. The CLI turns it into the
same clean stop as Ctrl-C (the library's cancellation path: nothing saved, one line on stderr, a
JSON document with ``--json``) and exits 143 (128 + 15), where Ctrl-C exits 130 (128 + 2).
Kept free of heavy imports: ``ktrdr.cli.run`` installs it before anything else loads.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

CTRL_C_EXIT = 130
SIGTERM_EXIT = 143
BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so every Ctrl-C path handles it too."""


def install_sigterm_handler() -> None:
    """Deliver SIGTERM as ``Terminated`` in the main thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def describe_interrupt(exc: BaseException | None) -> tuple[str, int]:
    """("Ctrl-C", 130) or ("SIGTERM", 143) for an interrupt, looking through click's Abort."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, Terminated):
            return "SIGTERM", SIGTERM_EXIT
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return "Ctrl-C", CTRL_C_EXIT


def wait_through_interrupts(
    finished: threading.Event, may_quit: Callable[[], bool], on_held: Callable[[], None]
) -> None:
    """Wait for ``finished``; an interrupt meanwhile is raised again when ``may_quit()`` says
    quitting now loses nothing, else ``on_held()`` tells the user and the wait goes on.

    Polls the event rather than joining a thread: on CPython before 3.13 a join that Ctrl-C
    interrupts can later return while the thread still runs.
    """
    while True:
        try:
            while not finished.wait(timeout=0.1):
                pass
            return
        except KeyboardInterrupt:
            if may_quit():
                raise
            on_held()
