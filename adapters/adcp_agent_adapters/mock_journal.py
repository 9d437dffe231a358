"""The mock ad server's state file: an append-only journal of changed entries.

Rewriting the whole state on every change made each booking cost more than the last
(every order pickled again) and blocked the event loop on an fsync. Instead each change
appends one record, ``(kind, key, value)``, length-prefixed. Reading replays records in
order; the latest one per key wins.

Several processes may share the file (two servers, the CLI). A change is made under an
exclusive ``flock`` (``Journal.locked``): the holder first replays what others appended,
so it changes the current state, then appends its records; nobody else appends
meanwhile. Under the lock any bytes past the last complete record can only be the torn
tail of a writer that died mid-append: they are cut off before appending, so a torn
tail never swallows later records.

In memory each live entry is kept as its record's bytes (``get`` unpickles it): an
ad server's orders are long-lived, and as objects an order took 3.7 kB and ~18 objects
that every full garbage collection walks; as bytes, 1.8 kB and none.

The journal is compacted (rewritten as one record per live entry) when it is opened and
has grown to several times its live size; the compactor holds the same lock and
replaces the file. Every reader keeps its file open, so a replaced file's inode cannot
be reused while anyone still reads it, and a reader that finds a different file at the
path starts over from it.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">I")
COMPACT_FACTOR = 4  # compact on open when records outnumber live entries this much
COMPACT_MIN_BYTES = 1 << 20


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], bytes] = {}  # each live entry's record
        self._fd: int | None = None
        self._offset = 0
        self._records = 0
        self._locked = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh()
        self._compact_if_large()

    # -- the open file ---------------------------------------------------------------

    def _file(self) -> int:
        """Our descriptor on the file now at the path (reopened, and read from the
        start, when a compaction replaced it). While we hold the lock it is current:
        a compaction replaces the file only under the same lock."""
        if self._locked:
            assert self._fd is not None
            return self._fd
        if self._fd is not None and not self._is_current(self._fd):
            self._close()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            self.entries, self._offset, self._records = {}, 0, 0
        return self._fd

    def _is_current(self, fd: int) -> bool:
        try:
            held, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self._close()

    def __del__(self) -> None:
        self._close()

    # -- reading ---------------------------------------------------------------------

    def refresh(self) -> bool:
        """Replay what was appended since the last look; True if anything changed.
        Nothing can have been while we hold the lock (``locked`` replayed it all)."""
        if self._locked:
            return False
        return self._replay(self._file())[0]

    def _replay(self, fd: int) -> tuple[bool, int]:
        """Replay ``fd``'s records past our offset: (whether any were, the file's size)."""
        size = os.fstat(fd).st_size
        if size <= self._offset:
            return False, size
        data = os.pread(fd, size - self._offset, self._offset)
        consumed = 0
        for end, blob in _blobs(data):
            kind, key, value = _loaded(blob)
            self._apply(kind, key, None if value is None else blob)
            consumed = end
        self._offset += consumed  # a torn tail (a writer killed mid-append) waits here
        return consumed > 0, size

    def _apply(self, kind: str, key: str, blob: bytes | None) -> None:
        self._records += 1
        if blob is None:
            self.entries.pop((kind, key), None)
        else:
            self.entries[(kind, key)] = blob

    def get(self, kind: str, key: str) -> Any:
        """The entry's value as last recorded (a new object each call), or None."""
        blob = self.entries.get((kind, key))
        return None if blob is None else _loaded(blob)[2]

    def keys(self, kind: str) -> list[str]:
        return [key for (k, key) in self.entries if k == kind]

    # -- writing ---------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the file exclusively: others' records are replayed first (yields whether
        there were any), ``put`` appends, and nobody else writes until the block ends."""
        if self._locked:
            yield False
            return
        fd = self._fd if self._fd is not None else self._file()
        while True:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._is_current(fd):
                break
            fcntl.flock(fd, fcntl.LOCK_UN)  # compacted meanwhile: take the new file
            fd = self._file()
        try:
            changed, size = self._replay(fd)
            if size > self._offset:
                os.ftruncate(fd, self._offset)  # a dead writer's torn tail
            self._locked = True
            yield changed
        finally:
            self._locked = False
            fcntl.flock(fd, fcntl.LOCK_UN)

    def put(self, kind: str, key: str, value: Any) -> None:
        """Record the entry's new value (None deletes it). What is kept is the value as
        it is now: a later change to the object the caller passed is recorded only by
        putting it again."""
        if not self._locked:
            with self.locked():
                self.put(kind, key, value)
            return
        blob = pickle.dumps((kind, key, value), protocol=pickle.HIGHEST_PROTOCOL)
        record = _HEADER.pack(len(blob)) + blob
        fd = self._file()
        written = os.write(fd, record)
        if written != len(record):  # a full disk: leave no torn record behind
            os.ftruncate(fd, self._offset)
            raise OSError(f"short write to {self.path}: {written} of {len(record)} bytes")
        self._offset += len(record)
        self._apply(kind, key, None if value is None else blob)

    def _compact_if_large(self) -> None:
        if self._offset < COMPACT_MIN_BYTES or self._records < COMPACT_FACTOR * max(
            1, len(self.entries)
        ):
            return
        with self.locked():
            tmp = self.path.with_suffix(f".{os.getpid()}.compact")
            with tmp.open("wb") as fh:
                for blob in self.entries.values():
                    fh.write(_HEADER.pack(len(blob)) + blob)
            os.replace(tmp, self.path)
        self.refresh()  # reopens the new file and reads it back


def _blobs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(end offset, the record's bytes) for each complete record in ``data``."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        (size,) = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + size
        if end > len(data):
            return
        yield end, data[pos + _HEADER.size : end]
        pos = end


def _loaded(blob: bytes) -> tuple[str, str, Any]:
    # Our own file, written by Journal.put; never a buyer-supplied input.
    return pickle.loads(blob)  # type: ignore[no-any-return]  # noqa: S301
