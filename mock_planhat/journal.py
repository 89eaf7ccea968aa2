"""The request journal: the newest requests the fake answered, bounded by count and by bytes,
oldest dropped first.

Recording is on every request's path, reading is rare: an entry keeps the raw body and the
clock reading, and is turned into its JSON shape (body parsed, time formatted) when read.
A body over ``payload_bytes`` keeps its head only. An entry's size is the length of its
bytes and text fields plus a fixed overhead (no serialising on the request's path); the
entries kept never add up to more than ``max_bytes``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import NamedTuple

from .config import DEFAULT_JOURNAL_BYTES
from .errors import loads
from .report import DEFAULT_PAYLOAD_BYTES

# A route that decodes a body (gzip) leaves the decoded bytes in the WSGI environ under this
# key; the journal keeps those instead of the bytes on the wire.
JOURNAL_BODY = "mock_planhat.journal_body"

ENTRY_OVERHEAD = 300  # bytes an entry costs besides its bytes and text fields


class _Truncated(NamedTuple):
    """A body over the bound: its size and its head."""

    size: int
    head: bytes


class _Entry(NamedTuple):
    method: str
    path: str
    query: str
    status: int
    body: bytes | _Truncated
    time: float
    tenant: str | None


def _size(entry: tuple) -> int:
    """What an entry costs: its bytes and text fields (nested ones too) and the overhead."""
    total = ENTRY_OVERHEAD
    for value in entry:
        if isinstance(value, (bytes, str)):
            total += len(value)
        elif isinstance(value, tuple):
            total += _size(value)
    return total


class Journal:
    def __init__(self, size: int, max_bytes: int = DEFAULT_JOURNAL_BYTES,
                 payload_bytes: int = DEFAULT_PAYLOAD_BYTES) -> None:
        self.size, self.max_bytes, self.payload_bytes = size, max_bytes, payload_bytes
        self._lock = threading.Lock()
        self._entries: deque[tuple[_Entry, int]] = deque()
        self.total = 0  # every request recorded since the start (never reset)
        self.dropped = 0  # of those, dropped by the count or byte bound
        self.bytes = 0

    def record(self, method: str, path: str, status: int, body: bytes, tenant: str | None,
               query: str = "") -> None:
        if self.size == 0:
            return
        kept = _Truncated(len(body), body[:self.payload_bytes]) \
            if len(body) > self.payload_bytes else body
        entry = _Entry(method, path, query, status, kept, time.time(), tenant)
        size = _size(entry)
        with self._lock:
            self.total += 1
            self._entries.append((entry, size))
            self.bytes += size
            while self._entries and (len(self._entries) > self.size
                                     or self.bytes > self.max_bytes):
                self.bytes -= self._entries.popleft()[1]
                self.dropped += 1

    def entries(self, tenant: str | None = None, offset: int = 0,
                limit: int | None = None) -> list[dict]:
        """The kept entries, oldest first, of one tenant or all; ``offset``/``limit`` page
        them before they are turned into dicts (a page of a full journal costs a page)."""
        with self._lock:
            items = [e for e, _ in self._entries if not tenant or e.tenant == tenant]
        items = items[offset:] if limit is None else items[offset:offset + limit]
        return [_as_dict(e) for e in items]

    def count(self, tenant: str | None = None) -> int:
        with self._lock:
            return sum(1 for e, _ in self._entries if not tenant or e.tenant == tenant)

    def clear(self, tenant: str | None = None) -> None:
        with self._lock:
            kept = [] if tenant is None else [x for x in self._entries if x[0].tenant != tenant]
            self._entries.clear()
            self._entries.extend(kept)
            self.bytes = sum(size for _, size in kept)


def _as_dict(entry: _Entry) -> dict:
    stamp = datetime.fromtimestamp(entry.time, timezone.utc)
    return {"method": entry.method, "path": entry.path, "query": entry.query,
            "status": entry.status, "body": _body(entry.body),
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tenant": entry.tenant}


def _body(raw: bytes | _Truncated):
    if isinstance(raw, _Truncated):
        return {"truncated": True, "bytes": raw.size,
                "text": raw.head.decode("utf-8", "replace")}
    if not raw:
        return None
    try:
        return loads(raw)  # what the fake would not accept as JSON is kept as text
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")
