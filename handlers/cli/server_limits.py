"""The connection limits ``orgsettings serve`` runs with (README, "Connections").

The header section is bounded by the server itself: an ASGI middleware only sees a request
after the server has read and parsed every header, so a bound there would come too late. The
figures live here, beside the one function that raises the open-file limit they depend on.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

#: The largest request head (request line and headers) ever read; larger is answered 431.
HEADER_BYTES = 64 * 1024
#: Granian's HTTP/1 read buffer limit. Its buffer grows by doubling and a head is refused once
#: the bytes buffered reach this limit unparsed, so the last read can at most double it: a head
#: up to 32 KiB is always read, one over 64 KiB never (measured: up to 48 KiB when it arrives
#: in one piece, exactly 32 KiB when it trickles).
READ_BUFFER_BYTES = HEADER_BYTES // 2
# (The header timeout, ORGSETTINGS_HEADER_TIMEOUT_SECONDS, is read by handlers.config.)
#: File descriptors kept for what is not a client connection: the listening socket, the
#: database and its WAL, logs, the worker's pipes, the reader threads' connections.
RESERVED_FILES = 64
#: The cap on concurrent connections per worker, whatever the open-file limit allows.
MAX_CONNECTIONS = 10_000
#: Connections the kernel queues for each listening socket before the server accepts them.
BACKLOG = 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """What one worker process allows its clients."""

    header_bytes: int
    read_buffer_bytes: int
    header_timeout_seconds: float
    open_files: int
    max_connections: int

    @property
    def keep_alive_seconds(self) -> float:
        """An idle keep-alive connection waits for the next request's head: the same timer."""
        return self.header_timeout_seconds


def _open_files_ceiling(hard: int) -> int:
    """The hard limit, or the kernel's per-process ceiling when the hard limit is unlimited."""
    if hard != resource.RLIM_INFINITY:
        return hard
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1 << 20


def raise_open_file_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; return the new soft limit.

    Worker processes inherit it. A limit that cannot be raised stays as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _open_files_ceiling(hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft if soft != resource.RLIM_INFINITY else target


def connection_cap(open_files: int) -> int:
    """Concurrent connections one worker accepts: its open files less a reserve, at most 10,000."""
    return max(1, min(open_files - RESERVED_FILES, MAX_CONNECTIONS))


def limits(header_timeout_seconds: float) -> ConnectionLimits:
    """Raise the open-file limit, then the limits every worker is started with."""
    open_files = raise_open_file_limit()
    return ConnectionLimits(
        header_bytes=HEADER_BYTES,
        read_buffer_bytes=READ_BUFFER_BYTES,
        header_timeout_seconds=header_timeout_seconds,
        open_files=open_files,
        max_connections=connection_cap(open_files),
    )
