from __future__ import annotations

import sys

import numpy as np
import pytest

from ktrdr.training import memory

pytestmark = pytest.mark.unit


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or memory._trim() is None, reason="glibc only"
)
def test_freed_heap_pages_go_back_to_the_system() -> None:
    # Freeing one large mapped block raises glibc's mmap threshold above 1 MiB, so the blocks
    # below come from the heap, where free() alone keeps their pages resident.
    np.ones(8 * 2**20, dtype=np.uint8)
    blocks = [np.ones(2**20, dtype=np.uint8) for _ in range(96)]
    keep = np.ones(2**20, dtype=np.uint8)  # on top of the heap: free() cannot shrink past it
    del blocks
    before = resident_bytes()
    memory.return_freed_memory()
    assert before - resident_bytes() > 48 * 2**20
    assert keep.sum() == 2**20


def test_it_is_harmless_where_the_c_library_has_no_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_trim", lambda: None)
    memory.return_freed_memory()
