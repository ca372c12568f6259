"""The ``ktrdr`` command (Typer + Rich). ``run`` is the console-script entry point."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys


def run() -> None:
    """Run the CLI and exit with its code.

    SIGTERM is handled like Ctrl-C from the first line (``ktrdr.cli.signals``). Ctrl-C or SIGTERM
    during start-up (imports take a second) still gets the one-line message, the JSON document
    with ``--json``, and exit 130 or 143. A reader that closes the pipe early (``| head``) ends the
    command quietly with 141. The process ends with ``os._exit`` after flushing logs and both
    streams: tearing down torch and pandas at interpreter exit takes most of a second, which would
    delay every command's return (and Ctrl-C's) for nothing. The exit hooks are what matters
    (``run_exit_hooks``), and they run first.
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
    run_exit_hooks()  # logging's own shutdown among them
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = BROKEN_PIPE_EXIT
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


def run_exit_hooks() -> None:
    """Run every ``atexit`` hook, in the order interpreter exit would (about 10 ms), which
    ``os._exit`` skips.

    A run pool's hook must run before multiprocessing's: it closes the pool so that the runs
    its workers' termination ends start no new worker; skipping it let a quit after Ctrl-C
    spawn a worker the exiting process never fed, whose traceback followed the last line.
    Multiprocessing's hook then ends the daemon workers and unlinks their semaphores, so no
    "leaked semaphore objects" warning follows a stop. A hook that fails is reported on
    stderr by ``atexit`` and the others still run.
    """
    atexit._run_exitfuncs()
