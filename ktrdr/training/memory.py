"""Hand memory that a step released back to the operating system (glibc only).

glibc keeps freed mid-sized blocks (numpy and pandas arrays of a few hundred KiB to a few MiB)
inside the process for reuse, so a run's resident memory stays at its high-water mark after each
step's inputs are dropped, and the next step's large arrays are mapped on top of it.
``malloc_trim`` returns the free pages; it costs 1-2 ms. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    return trim


def return_freed_memory() -> None:
    """Give the process's free heap pages back to the OS, where the C library allows it."""
    trim = _trim()
    if trim is not None:
        trim(0)
