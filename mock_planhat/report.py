"""The report: what was not applied and why, bounded by entry count and by bytes.

An entry is kept as its compact JSON text, so what it costs is what it measures: the byte
bound holds whatever a client sends (a parsed payload can take ten times its JSON size in
memory). A payload over ``payload_bytes`` is kept as the head of its JSON text, marked
``{"truncated": true, "bytes": N, "text": "…"}``; a message over MAX_MESSAGE_CHARS is cut.
When the count or the byte bound is reached the oldest entries go first; ``counts`` still
counts every entry since the last clear, and ``dropped`` says, per reason, how many of those
are gone, so ``counts[r] == kept entries of r + dropped[r]`` always.

Callers need no lock: the report has its own.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque

DEFAULT_REPORT_SIZE = 10_000  # entries
DEFAULT_REPORT_BYTES = 16 * 1024 * 1024  # per report (each tenant's, and the unknown-tenant one)
DEFAULT_PAYLOAD_BYTES = 64 * 1024  # one stored body or payload (report and journal)
MAX_MESSAGE_CHARS = 2_000
NO_USER_ANON_ID = "no_user_anon_id"  # a Segment call without ids: reported, never recorded


def bounded_text(text: str, limit: int, size: int | None = None) -> str | None:
    """``None`` when ``text`` (of ``size`` bytes, if known) fits ``limit``, else the JSON of
    the truncation marker that stands for it."""
    size = len(text) if size is None else size
    if size <= limit:
        return None
    return json.dumps({"truncated": True, "bytes": size, "text": text[:limit]},
                      separators=(",", ":"))


def _payload_json(payload, limit: int, raw: bytes | None) -> str:
    """The payload as compact JSON, or its truncation marker when it is over ``limit``.

    ``raw`` is the request body the payload came from, when the caller has it: its length
    decides without serialising a large payload (and its head is what is kept)."""
    if raw is not None and len(raw) > limit:
        return bounded_text(raw[:limit].decode("utf-8", "replace"), limit, len(raw))
    try:
        text = json.dumps(payload, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):  # never expected: bodies are checked
        text = json.dumps(repr(payload)[:limit])
    return bounded_text(text, limit) or text


class Report:
    def __init__(self, size: int = DEFAULT_REPORT_SIZE, max_bytes: int = DEFAULT_REPORT_BYTES,
                 payload_bytes: int = DEFAULT_PAYLOAD_BYTES) -> None:
        self.size, self.max_bytes, self.payload_bytes = size, max_bytes, payload_bytes
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._entries: deque[tuple[str, str]] = deque()  # (reason, entry as JSON text)
            self.counts: Counter[str] = Counter()
            self.dropped: Counter[str] = Counter()
            self.bytes = 0

    def adopt(self, other: Report | None) -> None:
        """Take ``other``'s entries and counts (None: empty this report)."""
        if other is None:
            self.clear()
            return
        with self._lock:
            self._entries, self.counts = other._entries, other.counts
            self.dropped, self.bytes = other.dropped, other.bytes

    def add(self, entry: dict, payload=None, raw: bytes | None = None) -> dict:
        """Keep ``entry`` (reason, message, …) with ``payload``; returns the entry as stored."""
        reason = entry["reason"]
        message = entry.get("message")
        if isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
            entry["message"] = message[:MAX_MESSAGE_CHARS] + f"… ({len(message)} characters)"
        head = json.dumps(entry, separators=(",", ":"))[:-1]
        text = f'{head},"payload":{_payload_json(payload, self.payload_bytes, raw)}}}'
        with self._lock:
            self.counts[reason] += 1
            if self.size == 0:
                self.dropped[reason] += 1
                return entry
            self._entries.append((reason, text))
            self.bytes += len(text)
            while self._entries and (len(self._entries) > self.size
                                     or self.bytes > self.max_bytes):
                gone, gone_text = self._entries.popleft()
                self.bytes -= len(gone_text)
                self.dropped[gone] += 1
        return entry

    def texts(self, reason: str | None = None) -> list[str]:
        """The kept entries as JSON texts, oldest first, of one reason or all."""
        with self._lock:
            return [t for r, t in self._entries if reason is None or r == reason]

    def entries(self, reason: str | None = None) -> list[dict]:
        return [json.loads(t) for t in self.texts(reason)]

    def tallies(self, reason: str | None = None) -> tuple[dict, dict]:
        """``(counts, dropped)`` by reason, of one reason or all."""
        with self._lock:
            counts, dropped = dict(self.counts), dict(self.dropped)
        if reason is not None:
            counts = {reason: counts[reason]} if reason in counts else {}
            dropped = {reason: dropped[reason]} if reason in dropped else {}
        return counts, dropped

    def __len__(self) -> int:
        return len(self._entries)
