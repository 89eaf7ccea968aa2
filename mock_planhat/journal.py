"""The request journal: the newest N requests the fake answered, oldest dropped first."""

from __future__ import annotations

import json
from collections import deque

from .store import now_iso

MAX_BODY_CHARS = 64 * 1024  # a journal entry keeps at most this much of a body


class Journal:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: deque[dict] = deque(maxlen=size)
        self.total = 0

    def record(self, method: str, path: str, status: int, body: bytes, tenant: str | None,
               query: str = "") -> None:
        if self.size == 0:
            return
        self.total += 1
        self._entries.append({"method": method, "path": path, "query": query, "status": status,
                              "body": _body(body), "time": now_iso(), "tenant": tenant})

    def entries(self, tenant: str | None = None) -> list[dict]:
        items = list(self._entries)
        return [e for e in items if e["tenant"] == tenant] if tenant else items

    def clear(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._entries.clear()
        else:
            kept = [e for e in self._entries if e["tenant"] != tenant]
            self._entries.clear()
            self._entries.extend(kept)


def _body(raw: bytes):
    if not raw:
        return None
    if len(raw) > MAX_BODY_CHARS:
        return {"truncated": True, "bytes": len(raw)}
    try:
        return json.loads(raw, parse_constant=_not_json)  # NaN etc.: kept as text
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse
        return raw.decode("utf-8", "replace")


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON value")
