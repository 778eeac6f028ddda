"""Opening event files inside the allowed roots, checked at open time.

Discovery checks that a run's files lie inside the roots, but a file is opened later by its path:
a run directory swapped for a symlink meanwhile (a rename exchange) would lead the open outside.
`open_confined` therefore checks the file it actually opened: the descriptor's own path
(/proc/self/fd on Linux; the resolved path elsewhere) must lie inside a root, and it must be a
regular file (a FIFO or device would block or never end).
"""

from __future__ import annotations

import os
import stat


def inside(real: str, roots) -> bool:
    return any(real == c or real.startswith(c.rstrip(os.sep) + os.sep) for c in roots)


def _fd_path(fd: int, path: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def open_confined(path: str, roots=None):
    """`path` opened for reading in binary (a file object); with `roots`, PermissionError when the
    file opened lies outside them. OSError when it is not a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        if roots and not inside(_fd_path(fd, path), roots):
            raise PermissionError(f"{path}: leads outside the allowed roots")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
