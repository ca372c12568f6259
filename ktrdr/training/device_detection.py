"""Choose the torch device for a run, once per run (docs/architecture.md: the twelve steps)."""

from __future__ import annotations

import logging
import re

import torch

from ktrdr import settings
from ktrdr.errors import TrainingError

logger = logging.getLogger(__name__)

_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def detect_training_device(preferred: str | None = None) -> str:
    """``preferred`` (else ``KTRDR_DEVICE``) if it is available; otherwise cuda, then mps, then cpu.

    Returns "cuda", "cuda:N", "mps" or "cpu". Raises TrainingError when the requested device is
    unknown or not available on this machine.
    """
    requested = settings.requested_device(preferred)
    if requested is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
        logger.info("training device: %s (auto)", device)
        return device
    source = "device argument" if preferred else "KTRDR_DEVICE"
    value = requested.lower()
    if value == "cpu":
        return "cpu"
    if value == "mps":
        if not torch.backends.mps.is_available():
            raise TrainingError(f"{source}=mps but MPS is not available here; use cpu or unset it")
        return "mps"
    match = _CUDA_INDEX.fullmatch(value)
    if value == "cuda" or match:
        if not torch.cuda.is_available():
            raise TrainingError(
                f"{source}={requested} but CUDA is not available here; use cpu or unset it"
            )
        if match and int(match.group(1)) >= torch.cuda.device_count():
            raise TrainingError(
                f"{source}={requested} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s); use cuda:0 or another index that exists"
            )
        return value
    raise TrainingError(f"{source}={requested!r} is not a device; use cpu, cuda, cuda:N or mps")
