"""The request journal: the newest N requests the fake answered, oldest dropped first.

Recording is on every request's path, reading is rare: an entry keeps the raw body and the
clock reading, and is turned into its JSON shape (body parsed, time formatted) when read.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime, timezone
from typing import NamedTuple

from .errors import loads

# A route that decodes a body (gzip) leaves the decoded bytes in the WSGI environ under this
# key; the journal keeps those instead of the bytes on the wire.
JOURNAL_BODY = "mock_planhat.journal_body"

MAX_BODY_CHARS = 64 * 1024  # a journal entry keeps at most this much of a body


class _Entry(NamedTuple):
    method: str
    path: str
    query: str
    status: int
    body: bytes | int  # the raw body, or its size when over MAX_BODY_CHARS
    time: float
    tenant: str | None


class Journal:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: deque[_Entry] = deque(maxlen=size)
        self.total = 0

    def record(self, method: str, path: str, status: int, body: bytes, tenant: str | None,
               query: str = "") -> None:
        if self.size == 0:
            return
        self.total += 1
        kept = len(body) if len(body) > MAX_BODY_CHARS else body
        self._entries.append(_Entry(method, path, query, status, kept, time.time(), tenant))

    def entries(self, tenant: str | None = None) -> list[dict]:
        items = list(self._entries)
        return [_as_dict(e) for e in items if not tenant or e.tenant == tenant]

    def clear(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._entries.clear()
        else:
            kept = [e for e in self._entries if e.tenant != tenant]
            self._entries.clear()
            self._entries.extend(kept)


def _as_dict(entry: _Entry) -> dict:
    stamp = datetime.fromtimestamp(entry.time, timezone.utc)
    return {"method": entry.method, "path": entry.path, "query": entry.query,
            "status": entry.status, "body": _body(entry.body),
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tenant": entry.tenant}


def _body(raw: bytes | int):
    if isinstance(raw, int):
        return {"truncated": True, "bytes": raw}
    if not raw:
        return None
    try:
        return loads(raw)  # what the fake would not accept as JSON is kept as text
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")
