"""Console helpers shared by the CLI commands: Rich on stdout, one-line errors on stderr."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rich.console import Console


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit with status 1 here; the CLI's entry point ends a command whose reader
        # left with the conventional 141 instead, quietly.
        raise BrokenPipeError()


# markup=False: paths and user text ("data[/]x.csv") are printed as they are, never parsed as
# Rich markup; styling goes through Text and style= arguments.
stdout = _Console(highlight=False, soft_wrap=True, markup=False)
stderr = _Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def setup_logging(verbose: int) -> None:
    """Send library logs to stderr: warnings by default, info with -v, debug with -vv."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(level)


def emit_json(document: Any) -> None:
    """Write exactly one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def first_of(ids: list[str], shown: int = 5) -> str:
    """``ids`` for a one-line message: the first ``shown``, then "and N more"."""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def one_line(message: str) -> str:
    """``message`` folded onto a single line."""
    return " ".join(str(message).split())


def minute(stamp: object) -> str:
    """A stored UTC time, ``2017-01-03T09:00:00+00:00``, as ``2017-01-03 09:00``: whole in an
    80-column table; anything else as it is."""
    text = str(stamp)
    return text[:16].replace("T", " ") if text.endswith("+00:00") else text
