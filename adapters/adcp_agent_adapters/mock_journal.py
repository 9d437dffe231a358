"""The mock ad server's state file: an append-only journal of changed entries.

Rewriting the whole state on every change made each booking cost more than the last
(every order pickled again) and blocked the event loop on an fsync. Instead each change
appends one record, ``(kind, key, value)``, length-prefixed, with a single ``write`` to
a file opened ``O_APPEND`` under an exclusive ``flock`` (two processes sharing the file
never interleave records). Reading replays records in order; the latest one per key
wins. Other processes' changes are picked up by replaying from where we last stopped.

The journal is compacted (rewritten as one record per live entry) when it is opened and
has grown to several times its live size. Compaction holds the same lock and replaces
the file; an appender that finds its file is no longer the one at the path reopens it,
so no append is lost to a compaction.

There is no fsync: this is a stand-in for a remote ad server, and an appended record
survives the process being killed (the kernel has it); only a power loss could drop the
last records, and the buys themselves live in the database, which does fsync.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">I")
COMPACT_FACTOR = 4  # compact on open when records outnumber live entries this much
COMPACT_MIN_BYTES = 1 << 20


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], Any] = {}
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._records = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh()
        self._compact_if_large()

    # -- reading ---------------------------------------------------------------------

    def refresh(self) -> bool:
        """Replay what was appended since the last look; True if anything changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        if stat.st_ino != self._inode:  # first look, or compacted by another process
            self.entries, self._offset, self._records = {}, 0, 0
            self._inode = stat.st_ino
        if stat.st_size == self._offset:
            return False
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        consumed = 0
        for end, (kind, key, value) in _records(data):
            self._apply(kind, key, value)
            consumed = end
        self._offset += consumed  # a torn tail (a writer killed mid-write) is skipped
        return consumed > 0

    def _apply(self, kind: str, key: str, value: Any) -> None:
        self._records += 1
        if value is None:
            self.entries.pop((kind, key), None)
        else:
            self.entries[(kind, key)] = value

    # -- writing ---------------------------------------------------------------------

    def put(self, kind: str, key: str, value: Any) -> None:
        """Record the entry's new value (None deletes it). ``value`` is kept as the
        live entry: the caller may go on using the object it passed."""
        blob = pickle.dumps((kind, key, value), protocol=pickle.HIGHEST_PROTOCOL)
        record = _HEADER.pack(len(blob)) + blob
        while True:
            fd = self._append_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if self._is_current(fd):
                    caught_up = os.fstat(fd).st_size == self._offset
                    os.write(fd, record)
                    break
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._close()  # compacted under us: append to the new file
        if caught_up:  # nobody else wrote since our last look: no need to read it back
            self._offset += len(record)
            self._apply(kind, key, value)
        else:
            self.refresh()  # replays the others' records and ours, in file order
            if value is not None:
                self.entries[(kind, key)] = value

    def _append_fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == self.path.stat().st_ino
        except FileNotFoundError:
            return False

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self._close()

    def __del__(self) -> None:
        self._close()

    def _compact_if_large(self) -> None:
        if self._offset < COMPACT_MIN_BYTES or self._records < COMPACT_FACTOR * max(
            1, len(self.entries)
        ):
            return
        fd = self._append_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if not self._is_current(fd):
                return  # someone else compacted first
            self.refresh()
            tmp = self.path.with_suffix(f".{os.getpid()}.compact")
            with tmp.open("wb") as fh:
                for (kind, key), value in self.entries.items():
                    blob = pickle.dumps((kind, key, value), protocol=pickle.HIGHEST_PROTOCOL)
                    fh.write(_HEADER.pack(len(blob)) + blob)
            os.replace(tmp, self.path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._close()
        self._inode = None
        self.refresh()


def _records(data: bytes) -> Iterator[tuple[int, tuple[str, str, Any]]]:
    """(end offset, record) for each complete record in ``data``."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        (size,) = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + size
        if end > len(data):
            return
        # Our own file, written by Journal.put; never a buyer-supplied input.
        yield end, pickle.loads(data[pos + _HEADER.size : end])  # noqa: S301
        pos = end
