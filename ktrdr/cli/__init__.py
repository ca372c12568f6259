"""The ``ktrdr`` command (Typer + Rich). ``run`` is the console-script entry point."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys


def run() -> None:
    """Run the CLI and exit with its code.

    SIGTERM is handled like Ctrl-C from the first line (``ktrdr.cli.signals``). Ctrl-C or SIGTERM
    during start-up (imports take a second) still gets the one-line message, the JSON document
    with ``--json``, and exit 130 or 143. A reader that closes the pipe early (``| head``) ends the
    command quietly with 141. The process ends with ``os._exit`` after flushing logs and both
    streams: tearing down torch and pandas at interpreter exit takes most of a second, which would
    delay every command's return (and Ctrl-C's) for nothing. The one exit work that matters is
    multiprocessing's (a service's or a sweep's worker pool): it is run first, so its semaphores
    are released and no "leaked semaphore objects" warning follows a stop.
    """
    from ktrdr.cli.signals import BROKEN_PIPE_EXIT, describe_interrupt, install_sigterm_handler

    install_sigterm_handler()
    try:
        from ktrdr.cli.main import main
    except KeyboardInterrupt as exc:
        name, code = describe_interrupt(exc)
        message = f"Cancelled by {name}; nothing was saved"
        if "--json" in sys.argv[1:]:
            document = {
                "success": False,
                "error": {"type": "CancellationError", "message": message},
            }
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stderr.write(f"Error: {message}\n")
    else:
        code = main()
    _release_multiprocessing()
    logging.shutdown()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = BROKEN_PIPE_EXIT
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


def _release_multiprocessing() -> None:
    """What interpreter exit does for multiprocessing, which ``os._exit`` would skip: end daemon
    workers still alive and run the finalizers that unlink their semaphores."""
    util = sys.modules.get("multiprocessing.util")
    exit_function = getattr(util, "_exit_function", None)
    if exit_function is not None:
        with contextlib.suppress(Exception):
            exit_function()
