"""``ktrdr serve api|host``: run the backend API or the training host service."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ktrdr.cli.options import DataDirOption, ModelsDirOption
from ktrdr.cli.output import stderr

app = typer.Typer(help="Run the backend API or the training host service.", no_args_is_help=True)

BindHost = Annotated[
    str,
    typer.Option(
        "--host", help="Address to bind (default loopback; 0.0.0.0 exposes it to the network)."
    ),
]
Insecure = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Serve beyond loopback without KTRDR_SERVICE_TOKEN (only on a network you trust).",
    ),
]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PORT_HELP = "Port to listen on (0: a free one, named in the start line)."
MaxRunning = Annotated[
    int, typer.Option("--max-running", min=1, help="Trainings that run at once; the rest queue.")
]


# Addresses only this machine can reach; anything else needs a token (or --insecure).
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_exposure(host: str, insecure: bool) -> None:
    """Refuse (exit 2) to bind beyond loopback without a token: anyone who reached the service
    could start trainings and post models. ``--insecure`` allows it, with a warning."""
    from ktrdr import settings

    if host in LOOPBACK or settings.service_token():
        return
    if insecure:
        stderr.print(
            f"warning: serving on {host} without KTRDR_SERVICE_TOKEN: anyone who can reach "
            "this address can start trainings and send models"
        )
        return
    raise typer.BadParameter(
        f"refusing to serve on {host} without a token: anyone who can reach it could start "
        "trainings and send models. Set KTRDR_SERVICE_TOKEN (for the services and their "
        "clients), bind 127.0.0.1, or pass --insecure on a network you trust",
        param_hint="--host",
    )


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one, which the start line names).

    Bound before the app is built, so a taken port is a clear refusal (exit 2) and the port a
    client is told is the one that is served.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Stop what uses that port "
            "or choose another with --port (0 picks a free one)",
            param_hint="--port",
        ) from exc


def _address(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serve(application: object, listener: socket.socket, log_level: str) -> str | None:
    """Serve until SIGTERM or Ctrl-C, then shut down cleanly (trainings are recorded as
    stopped, workers end); the name of the signal that stopped it, if one did.

    uvicorn raises the signal again once it has shut down, so that the process ends by it;
    a service that shut down cleanly ends with exit 0 and one line saying why instead.
    """
    import uvicorn

    received: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    # uvicorn captures both signals while it serves and hands them back to these afterwards.
    previous = {number: signal.signal(number, record) for number in STOP_SIGNALS}
    try:
        server = uvicorn.Server(uvicorn.Config(application, log_level=log_level))  # type: ignore[arg-type]
        server.run(sockets=[listener])
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return signal.Signals(received[-1]).name if received else None


def _stopped(what: str, by: str | None) -> None:
    if by is not None:
        stderr.print(f"{what} stopped by {by}")


@app.command("host")
def serve_host(
    host: BindHost = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help=PORT_HELP)] = 5002,
    data_dir: DataDirOption = None,
    max_running: MaxRunning = 1,
    max_pending: Annotated[
        int, typer.Option("--max-pending", min=0, help="Queue places; beyond them, HTTP 503.")
    ] = 4,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:N or mps (default: auto).")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    insecure: Insecure = False,
) -> None:
    """The training host service: trains what the backend (or ``ktrdr train --mode host``) sends,
    on this machine's hardware, and never writes a model store."""
    from ktrdr.host_service.app import create_app

    check_exposure(host, insecure)
    listener = _bind(host, port)
    try:
        application = create_app(
            data_dir=data_dir, max_running=max_running, max_pending=max_pending, device=device
        )
        address = _address(listener)
        stderr.print(f"ktrdr training host on http://{address} (OpenAPI at /openapi.json)")
        _stopped("ktrdr training host", _serve(application, listener, log_level))
    finally:
        listener.close()


@app.command("api")
def serve_api(
    host: BindHost = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help=PORT_HELP)] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="Where the training host reaches this API for results (default: "
            "http://HOST:PORT).",
        ),
    ] = None,
    host_url: Annotated[
        str | None,
        typer.Option(
            "--host-url", help="Training host (default: $TRAINING_HOST_SERVICE_URL, else :5002)."
        ),
    ] = None,
    models_dir: ModelsDirOption = None,
    data_dir: DataDirOption = None,
    strategies_dir: Annotated[Path | None, typer.Option("--strategies-dir")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="SQLAlchemy URL (default: $KTRDR_DATABASE_URL, else SQLite)."
        ),
    ] = None,
    max_running: MaxRunning = 2,
    max_pending: Annotated[
        int,
        typer.Option("--max-pending", min=0, help="Trainings that may wait; beyond, HTTP 503."),
    ] = 8,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    insecure: Insecure = False,
) -> None:
    """The backend API (prefix /api/v1, OpenAPI at /openapi.json): trainings as operations, run
    here or on the training host, and the strategies the model store holds."""
    from ktrdr.api import create_app

    check_exposure(host, insecure)
    listener = _bind(host, port)
    try:
        address = _address(listener)
        # A wildcard is no address to call back on: the host then reaches us on loopback.
        visible = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        visible = f"[{visible}]" if ":" in visible else visible
        application = create_app(
            public_url=public_url or f"http://{visible}:{listener.getsockname()[1]}",
            models_dir=models_dir,
            data_dir=data_dir,
            strategies_dir=strategies_dir,
            database=database_url,
            host_url=host_url,
            max_running=max_running,
            max_pending=max_pending,
        )
        stderr.print(f"ktrdr API on http://{address}/api/v1 (OpenAPI at /openapi.json)")
        _stopped("ktrdr API", _serve(application, listener, log_level))
    finally:
        listener.close()
