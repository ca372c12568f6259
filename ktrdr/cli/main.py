"""The ``ktrdr`` entry point: sub-commands, logging, and the one place errors become exit codes.

Exit codes: 0 success; 2 bad input (StrategyConfigError, DataError, usage); 1 TrainingError,
ModelStorageError, ExecutionModeError and anything unexpected; 130 cancellation and Ctrl-C; 143
SIGTERM (handled like Ctrl-C); 141 when the reader of stdout went away. A failure always writes one
line to stderr; with --json, stdout carries one document.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from ktrdr.cli import (
    data,
    evaluate,
    indicators,
    models,
    operations,
    rollout,
    serve,
    strategies,
    sweep,
    train,
)
from ktrdr.cli.output import emit_json, one_line, setup_logging, stderr
from ktrdr.cli.signals import BROKEN_PIPE_EXIT, CTRL_C_EXIT, describe_interrupt
from ktrdr.errors import KtrdrError

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="ktrdr",
    help="Train, version and reload neuro-fuzzy trading strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(strategies.app, name="strategies")
app.add_typer(models.app, name="models")
app.add_typer(indicators.app, name="indicators")
app.add_typer(operations.app, name="operations")
app.add_typer(serve.app, name="serve")
app.add_typer(rollout.app, name="rollout")
app.command("predict")(models.predict)
app.command("train")(train.train)
app.command("sweep")(sweep.sweep)
app.command("evaluate")(evaluate.evaluate)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More log output on stderr (-vv for debug)."
        ),
    ] = 0,
) -> None:
    setup_logging(verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    try:
        result = app(args=args, prog_name="ktrdr", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == CTRL_C_EXIT:  # Typer turns a Ctrl-C outside our own handlers into 130
            return _cancelled(None, as_json)
        return code
    except typer.Exit as exc:
        if exc.exit_code == CTRL_C_EXIT:
            return _cancelled(exc, as_json)
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt) as exc:
        return _cancelled(exc, as_json)
    except BrokenPipeError:
        return _broken_pipe()
    except KtrdrError as exc:
        return _fail(str(exc), type(exc).__name__, exc.exit_code, as_json)
    except Exception as exc:
        if _is_usage_error(exc):
            message = getattr(exc, "format_message")()  # noqa: B009
            code = int(getattr(exc, "exit_code"))  # noqa: B009
            return _fail(f"{message} (see 'ktrdr --help')", "UsageError", code, as_json)
        # The last line of defence: a message, never a bare traceback.
        logger.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected error: {exc!r} (run with -vv for the traceback)",
            type(exc).__name__,
            1,
            as_json,
        )


def _cancelled(exc: BaseException | None, as_json: bool) -> int:
    name, code = describe_interrupt(exc)
    return _fail(f"Cancelled by {name}; nothing was saved", "CancellationError", code, as_json)


def _broken_pipe() -> int:
    # The reader left (``ktrdr models list | head -1``): nothing more can be shown, and a
    # traceback or an error line would be noise. Point stdout at /dev/null so the final flush
    # does not raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE_EXIT


def _is_usage_error(exc: Exception) -> bool:
    # Typer's command-line parser raises exceptions that carry their own exit code and message.
    return hasattr(exc, "exit_code") and hasattr(exc, "format_message")


def _fail(message: str, kind: str, code: int, as_json: bool) -> int:
    if as_json:
        emit_json({"success": False, "error": {"type": kind, "message": one_line(message)}})
    stderr.print(f"Error: {one_line(message)}", markup=False, soft_wrap=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
