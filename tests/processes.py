"""What every test that starts and signals a subprocess needs."""

from __future__ import annotations

import signal


def default_signal_handlers() -> None:
    """Give a child the default SIGINT and SIGTERM handlers (a ``preexec_fn``).

    A test runner started in the background ignores SIGINT, and a child inherits that; a test
    that signals its child must know the child reacts as it would in a user's terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
