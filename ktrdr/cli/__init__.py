"""The ``ktrdr`` command (Typer + Rich). ``run`` is the console-script entry point."""

from __future__ import annotations

import logging
import os
import sys


def run() -> None:
    """Run the CLI and exit with its code.

    Ctrl-C during start-up (imports take a second) still gets the one-line message and exit
    130. The process ends with ``os._exit`` after flushing logs and both streams: tearing down
    torch and pandas at interpreter exit takes most of a second, which would delay every
    command's return (and Ctrl-C's) for nothing; no ktrdr command leaves work for that teardown.
    """
    try:
        from ktrdr.cli.main import main
    except KeyboardInterrupt:
        sys.stderr.write("Error: Cancelled by Ctrl-C\n")
        code = 130
    else:
        code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
