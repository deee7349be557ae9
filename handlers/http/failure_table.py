"""Failed-authentication counts per client address, in a fixed-size table in a memory map.

With ``serve --workers N`` the table is a file in the private directory ``serve`` made for
this run, mapped by every worker, so a client spreading its tries over the workers is counted
once in total. Without it (one worker, tests) the same table lives in anonymous memory.

- Bounded: 65,536 slots of (address key, window start, count), 1.5 MiB whatever clients send.
  An address's key is a 64-bit keyed BLAKE2b hash (the hash key is random per table, in its
  header), so no client can pick addresses whose count is another's. An address probes 8 slots
  from its home; when all 8 hold live counts of other addresses, the smallest count is evicted
  (only a flood of tens of thousands of failing addresses a minute gets there, and what it
  evicts is mostly its own counts of one).
- A window starts at an address's first failure and lasts 60 s, as the ``limits`` library's
  fixed window does; CLOCK_MONOTONIC is one clock for every process of the machine.
- Counting takes an exclusive ``flock`` (released by the kernel when a holder dies), held for
  a few microseconds; a wait past ``LOCK_WAIT_SECONDS`` (a stopped worker holding it) gives up
  rather than stall the event loop, and that failure goes uncounted. The check every request
  makes reads without a lock (see ``seconds_left``).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import time
from collections.abc import Callable
from pathlib import Path

WINDOW_SECONDS = 60.0
SLOTS = 1 << 16
PROBES = 8
#: The longest wait for the table's lock, polled without blocking (the event loop waits).
LOCK_WAIT_SECONDS = 0.005
_LOCK_POLL_SECONDS = 0.0001
_MAGIC = b"orgsaf1\0"
_HEADER = struct.Struct("<8s16s40x")  # magic, hash key
_SLOT = struct.Struct("<QdI4x")  # address key (0: never used), window start, count
SIZE = _HEADER.size + SLOTS * _SLOT.size
_MAX_COUNT = 0xFFFFFFFF
#: Addresses whose table key a process remembers (then it forgets them all and starts again).
_KEY_CACHE_SIZE = 4096


class FailureTable:
    """Counts per address and window; see the module docstring."""

    def __init__(
        self, path: Path | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        if path is None:
            self._fd: int | None = None
            self._map = mmap.mmap(-1, SIZE)
            self._map[: _HEADER.size] = _HEADER.pack(_MAGIC, secrets.token_bytes(16))
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                self._map = self._map_file(self._fd, path)
            except BaseException:
                os.close(self._fd)
                raise
        self._keys: dict[str, int] = {}
        self._hash_key = _HEADER.unpack_from(self._map, 0)[1]

    @staticmethod
    def _map_file(fd: int, path: Path) -> mmap.mmap:
        """Map the table's file. The first process to open it sizes it and writes its header;
        the others wait for that here, at start-up, not on a request."""
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_size == 0:
                os.ftruncate(fd, SIZE)
                os.pwrite(fd, _HEADER.pack(_MAGIC, secrets.token_bytes(16)), 0)
            if os.fstat(fd).st_size != SIZE or os.pread(fd, len(_MAGIC), 0) != _MAGIC:
                raise ValueError(f"{path} is not a failed-authentication table")
            return mmap.mmap(fd, SIZE)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def count(self, address: str) -> None:
        """One failed authentication from ``address``."""
        key = self._key(address)
        if not self._lock():
            return
        try:
            now = self._clock()
            free = victim = None
            smallest = 0
            for offset in _chain(key):
                slot_key, start, count = _SLOT.unpack_from(self._map, offset)
                if slot_key == key:
                    if now - start < WINDOW_SECONDS:
                        _SLOT.pack_into(self._map, offset, key, start, min(count + 1, _MAX_COUNT))
                    else:
                        _SLOT.pack_into(self._map, offset, key, now, 1)
                    return
                if slot_key == 0 or now - start >= WINDOW_SECONDS:
                    free = offset if free is None else free
                    if slot_key == 0:
                        break  # nothing of this chain lies past a slot never used
                elif victim is None or count < smallest:
                    victim, smallest = offset, count
            _SLOT.pack_into(self._map, free if free is not None else victim, key, now, 1)
        finally:
            self._unlock()

    def seconds_left(self, address: str, limit: int) -> float | None:
        """How long ``address`` stays refused (it has ``limit`` failures in its live window),
        or None.

        Reads take no lock (this runs on every request): a slot is read in one copy, and one
        that a writer is changing at that moment may mix that write's old and new fields. A
        write changes only the slot of the address whose failure it counts (perhaps taken
        from another address), so a mixed read can misjudge only a request of one of those
        two racing that very write: one 429 too early, or one pass."""
        key = self._key(address)
        for offset in _chain(key):
            slot_key, start, count = _SLOT.unpack_from(self._map, offset)
            if slot_key == key:
                left = start + WINDOW_SECONDS - self._clock()
                return left if count >= limit and left > 0 else None
            if slot_key == 0:
                return None
        return None

    def close(self) -> None:
        """Unmap the table and close its file."""
        self._map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _key(self, address: str) -> int:
        """The table key of ``address`` (remembered: the same few addresses come again and
        again, and a hash costs more than the rest of a lookup)."""
        key = self._keys.get(address)
        if key is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            digest = hashlib.blake2b(address.encode(), digest_size=8, key=self._hash_key).digest()
            key = self._keys[address] = int.from_bytes(digest, "little") or 1
        return key

    def _lock(self) -> bool:
        """Take the table's lock; False when it could not be had in time."""
        fd = self._fd
        if fd is None:
            return True  # anonymous memory: one process, and its event loop is one thread
        deadline = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                now = time.monotonic()
                deadline = deadline or now + LOCK_WAIT_SECONDS
                if now >= deadline:
                    return False
                time.sleep(_LOCK_POLL_SECONDS)

    def _unlock(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def _chain(key: int) -> range:
    """The offsets of the slots ``key`` may occupy, in probe order (homes stop ``PROBES``
    slots short of the end, so no chain runs past the last slot)."""
    home = key % (SLOTS - PROBES)
    first = _HEADER.size + home * _SLOT.size
    return range(first, first + PROBES * _SLOT.size, _SLOT.size)
