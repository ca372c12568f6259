"""``ktrdr indicators list``: every indicator type with its parameters and output columns."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ktrdr.cli.output import emit_json, stdout

app = typer.Typer(help="The indicator types a strategy can use.", no_args_is_help=True)


@app.command("list")
def list_indicators(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Type, parameters (default and range), output columns and stable history of each
    indicator (the same table as docs/strategy-reference.md)."""
    from ktrdr.config.reference import indicator_rows

    rows = indicator_rows()
    if as_json:
        emit_json(rows)
        return
    table = Table("type", "parameters (default, range)", "outputs", "history", "what it is")
    for row in rows:
        table.add_row(
            row["type"],
            row["parameters"].replace("`", ""),
            row["outputs"],
            row["history"],
            row["description"],
        )
    stdout.print(table)
