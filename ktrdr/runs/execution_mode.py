"""Where a training runs: here (``local``) or on the training host service (``host``).

``ExecutionModeSelector.select(requested, require_gpu)`` decides per request:

- ``local``: here.
- ``host``: the host when its /health answers (with a GPU when one is required); otherwise here
  with a warning, or ExecutionModeError when a GPU is required.
- ``auto``: the host only when a GPU is required and the host has one; otherwise here (or
  ExecutionModeError when a GPU is required and neither the host nor this machine has one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ktrdr import settings
from ktrdr.errors import ExecutionModeError

logger = logging.getLogger(__name__)

EXECUTION_MODES = ("local", "host", "auto")


@dataclass(frozen=True)
class ExecutionChoice:
    """The mode a request runs in, and a plain-words warning when it is not the one asked for."""

    mode: str
    requested: str
    warning: str | None = None


class ExecutionModeSelector:
    """Chooses local or host per request; ``default_mode`` applies when a request names none."""

    def __init__(
        self,
        default_mode: str | None = None,
        host_service_url: str | None = None,
        health_check_timeout: float = 2.0,
        token: str | None = None,
    ) -> None:
        self.default_mode = check_mode(default_mode or settings.default_execution_mode())
        self.host_service_url = settings.host_service_url(host_service_url)
        self.health_check_timeout = health_check_timeout
        self.token = token if token is not None else settings.service_token()

    def host_health(self) -> dict[str, object] | None:
        """The host's /health answer, or None when it does not answer in time."""
        from ktrdr.runs.host_client import HostClient

        with HostClient(self.host_service_url, self.token, self.health_check_timeout) as client:
            return client.health()

    def select(self, requested: str | None = None, require_gpu: bool = False) -> ExecutionChoice:
        mode = check_mode(requested or self.default_mode)
        if mode == "local":
            if require_gpu and not _local_gpu():
                raise ExecutionModeError(
                    "require_gpu is set but this machine has no GPU; use execution_mode='host' "
                    "with a GPU host"
                )
            return ExecutionChoice("local", mode)
        health = self.host_health()
        host_gpu = bool(health and health.get("gpu"))
        if mode == "host":
            if health is None:
                if require_gpu:
                    raise ExecutionModeError(
                        f"require_gpu is set but the training host service at "
                        f"{self.host_service_url} does not answer; start it with 'ktrdr serve "
                        "host' or check TRAINING_HOST_SERVICE_URL"
                    )
                warning = (
                    f"the training host service at {self.host_service_url} does not answer; "
                    "training here instead"
                )
                logger.warning(warning)
                return ExecutionChoice("local", mode, warning)
            if require_gpu and not host_gpu:
                raise ExecutionModeError(
                    f"require_gpu is set but the training host at {self.host_service_url} has "
                    "no GPU"
                )
            return ExecutionChoice("host", mode)
        # auto
        if require_gpu:
            if health is not None and host_gpu:
                return ExecutionChoice("host", mode)
            if _local_gpu():
                return ExecutionChoice("local", mode)
            raise ExecutionModeError(
                "require_gpu is set but neither the training host "
                f"({self.host_service_url}: {'no GPU' if health else 'not answering'}) nor this "
                "machine has a GPU"
            )
        return ExecutionChoice("local", mode)


def check_mode(mode: str) -> str:
    """``mode`` if it is local, host or auto; ExecutionModeError otherwise."""
    if mode not in EXECUTION_MODES:
        raise ExecutionModeError(
            f"execution mode {mode!r} is not valid; use {', '.join(EXECUTION_MODES)}"
        )
    return mode


def _local_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())
