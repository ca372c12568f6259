"""Guards for torch files before torch unpacks them, and for the tensors it gives back.

Kept free of other store modules: the artifact, the store and the checks all use it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from ktrdr.errors import ModelStorageError
from ktrdr.messages import shorten

# A trained ktrdr model is kilobytes to a few MiB; an archive that unpacks to more is not one.
MAX_ARTIFACT_BYTES = 64 * 2**20


def check_torch_archive(source: BinaryIO | Path, name: str) -> None:
    """Refuse a torch file before ``torch.load`` unpacks it: ModelStorageError unless it is a
    zip archive whose records are stored uncompressed (as ``torch.save`` writes them) and that
    declares ``MAX_ARTIFACT_BYTES`` in all at the most. A deflated record that would unpack to
    gigabytes is refused from its header, before a byte of it is inflated."""
    try:
        with zipfile.ZipFile(source) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelStorageError(f"{name} is not a readable model artifact ({exc})") from exc
    finally:
        if isinstance(source, io.IOBase):
            source.seek(0)
    packed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise ModelStorageError(
            f"{name} holds compressed records ({shorten(', '.join(packed))}), which torch.save "
            "never writes; refused unread"
        )
    declared = sum(r.file_size for r in records)
    if declared > MAX_ARTIFACT_BYTES:
        raise ModelStorageError(
            f"{name} declares {declared} bytes, over the {MAX_ARTIFACT_BYTES}-byte limit of a "
            "model; refused unread"
        )


def non_finite_weights(state: dict[str, Any]) -> list[str]:
    """The names of the tensors in ``state`` that hold a NaN or an infinity."""
    import torch

    return [key for key, value in state.items() if not bool(torch.isfinite(value).all())]
