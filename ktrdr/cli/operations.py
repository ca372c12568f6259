"""``ktrdr operations list|show|cancel``: the backend API's operations."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ktrdr.cli.output import emit_json, stdout
from ktrdr.errors import ExecutionModeError
from ktrdr.training.verdict import stored_verdict, summary_line

app = typer.Typer(help="List, show and cancel the backend's operations.", no_args_is_help=True)

ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", help="Backend API (default: $KTRDR_API_URL, else :8000)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _call(method: str, path: str, api_url: str | None, **kwargs: Any) -> dict[str, Any]:
    import httpx

    from ktrdr import settings
    from ktrdr.service_client import bearer_headers, error_detail

    base = (api_url or os.environ.get("KTRDR_API_URL") or "http://127.0.0.1:8000").rstrip("/")
    try:
        response = httpx.request(
            method,
            f"{base}/api/v1{path}",
            headers=bearer_headers(settings.service_token()),
            timeout=10,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise ExecutionModeError(
            f"the ktrdr API at {base} did not answer ({exc}); start it with 'ktrdr serve api'"
        ) from exc
    if not response.is_success:
        detail = error_detail(response)
        raise ExecutionModeError(f"{method} {path}: HTTP {response.status_code}: {detail}")
    return dict(response.json())


@app.command("list")
def list_operations(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, running, completed, failed, cancelled")
    ] = None,
    api_url: ApiUrl = None,
    as_json: Json = False,
) -> None:
    """The most recent operations, newest first."""
    params = {"status": status} if status else {}
    operations = _call("GET", "/operations", api_url, params=params)["operations"]
    if as_json:
        emit_json(operations)
        return
    rows = [
        (
            op["operation_id"],
            op["status"],
            op["execution_mode"],
            op["strategy"],
            f"{(op.get('progress') or {}).get('percentage', 0):.0f}%",
            op.get("model_id") or op.get("error") or op.get("problem") or "",
            _when(op.get("created_at")),
        )
        for op in operations
    ]
    columns = ("operation", "status", "mode", "strategy", "progress", "model / error", "created")
    if not stdout.is_terminal:
        # Piped: whole ids, one tab-separated line per operation, for other tools.
        sys.stdout.write("".join("\t".join(row) + "\n" for row in [columns, *rows]))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("operation", no_wrap=True, min_width=32)
    table.add_column("status", no_wrap=True)
    table.add_column("mode", no_wrap=True)
    table.add_column("progress", no_wrap=True, justify="right")
    table.add_column("strategy · model / error", overflow="fold")
    for row in rows:
        table.add_row(row[0], row[1], row[2], row[4], f"{row[3]} · {row[5]}".rstrip(" ·"))
    stdout.print(table)


def _when(stamp: Any) -> str:
    """A row's creation time; "-" for one the database could not give back."""
    if not isinstance(stamp, int | float):
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("show")
def show_operation(operation_id: str, api_url: ApiUrl = None, as_json: Json = False) -> None:
    """One operation: status, progress, result or error."""
    op = _call("GET", f"/operations/{operation_id}", api_url)
    if as_json:
        emit_json(op)
        return
    progress = op.get("progress") or {}
    for label, value in (
        ("operation", op["operation_id"]),
        ("status", op["status"]),
        ("mode", op["execution_mode"]),
        ("strategy", op["strategy"]),
        ("progress", f"{progress.get('percentage', 0):.0f}% {progress.get('message', '')}"),
        ("model", op.get("model_id") or "-"),
        ("error", op.get("error") or "-"),
        ("warning", op.get("warning") or "-"),
        *([("problem", op["problem"])] if op.get("problem") else []),
    ):
        stdout.print(f"{label:>10}: {value}")
    verdict = stored_verdict((op.get("result") or {}).get("test_metrics"))
    if verdict is not None:
        stdout.print(f"{'test':>10}: {summary_line(verdict)}")
        for sentence in verdict["sentences"]:
            stdout.print(f"{'':>10}  {sentence}")


@app.command("cancel")
def cancel_operation(operation_id: str, api_url: ApiUrl = None, as_json: Json = False) -> None:
    """Cancel a pending or running operation (nothing is saved)."""
    answer = _call("DELETE", f"/operations/{operation_id}", api_url)
    if as_json:
        emit_json(answer)
    else:
        stdout.print(f"{operation_id}: {answer['status']}")
