"""File primitives every reader and writer shares: an exclusive lock per file, durable atomic
replacement, and opening a file a user named without blocking on it.

Two processes may write the same store file or model folder at once. Every read-modify-write holds
``exclusive_lock`` for the whole cycle, and every file a reader may see appears by ``os.replace`` of
a fully written, fsynced temporary file, followed by an fsync of the folder so the rename survives a
crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

LOCKS_FOLDER = ".locks"


class NotARegularFile(OSError):
    """The path is a folder, a FIFO, a socket or a device; ``what`` says which."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path}: is {what}, not a regular file")
        self.what = what


def open_regular_file(path: Path) -> IO[bytes]:
    """``path`` opened for binary reading, once it is known to be a regular file.

    A FIFO without a writer would block ``open()`` forever and a device such as /dev/zero never
    ends, so the path is opened non-blocking and checked before a byte is read. Raises
    NotARegularFile for a folder, FIFO, socket or device, and OSError as the system gives it
    otherwise (FileNotFoundError, a name too long, no permission).
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            what = (
                "a folder"
                if stat.S_ISDIR(mode)
                else "a pipe (FIFO)"
                if stat.S_ISFIFO(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "a device"
            )
            raise NotARegularFile(path, what)
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if needed) until the block ends."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def lock_path_for(path: Path) -> Path:
    """Where the lock guarding ``path`` lives: a ``.locks`` folder beside it, out of listings."""
    return path.parent / LOCKS_FOLDER / f"{path.name}.lock"


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the process umask (0o644 for umask 022)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux reports the umask without changing it; os.umask() must set it to read it, which
    # briefly changes it for every thread of the process.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def atomic_write(path: Path, write: Callable[[IO[str]], object]) -> None:
    """Write ``path`` through ``write(stream)`` into a temporary file, then rename it into place.

    The file keeps the mode it had (a new one gets the umask's mode, not mkstemp's 0600). On any
    failure the temporary file is removed and ``path`` is left as it was.
    """
    _atomic(path, "w", write)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path`` the way ``atomic_write`` writes text."""
    _atomic(path, "wb", lambda stream: stream.write(data))


def _atomic(path: Path, mode_string: str, write: Callable[[Any], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = default_file_mode()
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        newline = None if "b" in mode_string else ""
        with os.fdopen(handle, mode_string, newline=newline) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def new_numbered_folder(root: Path, name: str) -> Path:
    """``root/{name}_{n}`` with the next free n, created exclusively (two sweeps never share)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [
        int(p.name.rsplit("_", 1)[1])
        for p in root.glob(f"{name}_*")
        if p.name.rsplit("_", 1)[1].isdigit()
    ]
    number = max(taken, default=0) + 1
    while True:
        folder = root / f"{name}_{number}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            number += 1
