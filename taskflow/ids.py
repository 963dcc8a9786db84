"""Random ids for the hot paths (every submission makes two, every request one).

``uuid.uuid4()`` asks the kernel for 16 random bytes each time; on the benchmark machine
that syscall was 30 % of the gateway's CPU during batch intake (a py-spy profile,
docs/benchmarks.md, Issue 12). ``new_uuid`` takes the same kernel randomness
(``os.urandom``) 4 KiB at a time and cuts version-4 UUIDs from it: as unpredictable, one
syscall per 256 ids. Not shared across ``fork``: a forked child refills its own buffer.
"""

from __future__ import annotations

import os
import threading
from uuid import UUID

_CHUNK = 16 * 256
_lock = threading.Lock()
_buffer = b""
_offset = 0
_pid = 0


def new_uuid() -> UUID:
    """A random (version 4) UUID."""
    global _buffer, _offset, _pid
    with _lock:
        if _offset >= len(_buffer) or _pid != os.getpid():
            _buffer, _offset, _pid = os.urandom(_CHUNK), 0, os.getpid()
        raw = _buffer[_offset : _offset + 16]
        _offset += 16
    return UUID(bytes=raw, version=4)
