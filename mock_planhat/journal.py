"""The request journal: the newest requests the fake answered, bounded by count and by bytes,
oldest dropped first.

Recording is on every request's path, reading is rare: an entry keeps the raw request and
response bodies, the clock reading and the rows' decisions (one packed group a request, see
:class:`mock_planhat.trace.Group`), and is turned into its JSON shape (bodies parsed, time
formatted, decisions rendered) when read.
A body over ``payload_bytes`` keeps its head only. An entry's size is the length of its
bytes and text fields plus a fixed overhead (no serialising on the request's path); the
entries kept never add up to more than ``max_bytes`` (a decision counts ``DECISION_BYTES``).

Every entry has an id (increasing). A Segment call's entry lists the Planhat requests it caused
(``caused``); each of those names it back (``parent``).
"""

from __future__ import annotations

import fnmatch
import itertools
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
ENTRY_ID = "mock_planhat.entry_id"  # the id reserved for this request's entry
DECISIONS = "mock_planhat.decisions"  # [trace.Group, ...] of this request (trace.settle)
PARENT = "mock_planhat.parent"  # (entry id, list of caused ids) of the request that caused this
CAUSED = "mock_planhat.caused"  # the ids of the requests this one caused
# A server that sends the answer before the app's bookkeeping (waitress, for a request it
# answers in its I/O loop's thread) puts a list here: the app appends the work that the
# answer does not need (its journal entry, a recording's item), and the server runs it once
# the answer is sent, before it reads the next request. Elsewhere the app does it at once.
AFTER_ANSWER = "mock_planhat.after_answer"
DECISION_BYTES = 200  # what a kept decision counts against the byte bound
MAX_DECISIONS_SHOWN = 100  # decisions rendered per entry in a listing (the count is exact)
KEPT_HEADERS = ("Content-Type", "Retry-After", "Location", "Allow")
FILTERS = ("tenant", "method", "path", "status", "since", "limit", "offset", "order")


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
    id: int = 0
    response: tuple | None = None  # (((header, value), ...), body bytes | _Truncated)
    decisions: tuple | None = None  # (trace.Group, ...)
    parent: int | None = None
    caused: list | None = None


_KEPT = {name.lower(): name for name in KEPT_HEADERS}


def _kept_headers(headers) -> tuple:
    """The response's KEPT_HEADERS, in that order, each its first value. One pass over the
    headers there are: asking werkzeug's ``Headers`` for an absent name raises and catches a
    KeyError inside it, three times a request for the headers most answers do not have."""
    found: dict[str, str] = {}
    for key, value in headers:
        name = _KEPT.get(key.lower())
        if name is not None and name not in found:
            found[name] = value
    return tuple((name, found[name]) for name in KEPT_HEADERS if name in found)


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
        self._ids = itertools.count(1)

    def reserve(self, environ: dict) -> int:
        """The id of the entry this request will get (so its decisions can name it first)."""
        entry_id = environ.get(ENTRY_ID)
        if entry_id is None:
            entry_id = environ[ENTRY_ID] = next(self._ids)
        return entry_id

    def record(self, method: str, path: str, status: int, body: bytes, tenant: str | None,
               query: str = "", environ: dict | None = None, response=None,
               at: float | None = None, late: bool = False) -> int | None:
        """Keep one request: ``environ`` carries its reserved id, decisions and links,
        ``response`` is the Flask response it got, ``at`` its time in seconds (the tenant's
        clock; default the wall clock). ``late``: kept after its answer was sent
        (``AFTER_ANSWER``). Entries are listed in the order they are kept (a Segment call
        after the requests it caused), a late one where it was answered."""
        entry_id = parent = decisions = caused = None
        if environ is not None:
            entry_id = environ.get(ENTRY_ID)
            decisions = environ.get(DECISIONS)
            if decisions is not None:  # of trace.Group: two containers a group (None: a
                # group to be settled after the answer whose settling failed)
                decisions = tuple(group for group in decisions if group is not None)
            caused = environ.get(CAUSED)
            link = environ.get(PARENT)
            if link is not None:
                parent = link[0]
        if entry_id is None:
            entry_id = next(self._ids)
        if parent is not None:
            link[1].append(entry_id)
        if self.size == 0:
            return entry_id
        bound = self.payload_bytes
        kept = _Truncated(len(body), body[:bound]) if len(body) > bound else body
        answer = None
        if response is not None:
            data = b"" if response.direct_passthrough or response.is_streamed \
                else response.get_data()
            answer = (_kept_headers(response.headers),
                      _Truncated(len(data), data[:bound]) if len(data) > bound else data)
        entry = _Entry(method, path, query, status, kept, time.time() if at is None else at,
                       tenant, entry_id, answer, None, parent, caused)
        size = _size(entry)  # decisions are counted below, by number, not walked
        if decisions:
            entry = entry._replace(decisions=decisions)
            size += DECISION_BYTES * sum(len(group) for group in decisions)
        with self._lock:
            self.total += 1
            entries = self._entries
            if late and entries and entries[-1][0].id > entry_id:
                # kept after its answer (AFTER_ANSWER) while pool threads kept entries of
                # requests taken later: placed before those, as if kept when it was answered
                index = len(entries) - 1
                while index > 0 and entries[index - 1][0].id > entry_id:
                    index -= 1
                entries.insert(index, (entry, size))
            else:
                entries.append((entry, size))
            self.bytes += size
            while self._entries and (len(self._entries) > self.size
                                     or self.bytes > self.max_bytes):
                self.bytes -= self._entries.popleft()[1]
                self.dropped += 1
        return entry_id

    def entries(self, tenant: str | None = None, offset: int = 0,
                limit: int | None = None) -> list[dict]:
        """The kept entries, oldest first, of one tenant or all; ``offset``/``limit`` page
        them before they are turned into dicts (a page of a full journal costs a page)."""
        with self._lock:
            items = [e for e, _ in self._entries if not tenant or e.tenant == tenant]
        items = items[offset:] if limit is None else items[offset:offset + limit]
        return [_as_dict(e) for e in items]

    def query(self, tenant: str | None = None, method: str | None = None,
              path: str | None = None, status: str | None = None, since: float | None = None,
              newest_first: bool = False, offset: int = 0, limit: int | None = None
              ) -> tuple[int, list[dict]]:
        """(how many entries match, the page of them as JSON). ``path`` is a glob, ``status``
        a code or a class (``4xx``), ``since`` a time (seconds since the epoch)."""
        with self._lock:
            items = [e for e, _ in self._entries]
        if newest_first:
            items.reverse()
        method = method.upper() if method else None
        status_test = _status_test(status) if status else None
        found = [e for e in items
                 if (not tenant or e.tenant == tenant) and (not method or e.method == method)
                 and (not path or fnmatch.fnmatchcase(e.path, path))
                 and (status_test is None or status_test(e.status))
                 and (since is None or e.time >= since)]
        end = None if limit is None else offset + limit
        return len(found), [_as_dict(e) for e in found[offset:end]]

    def by_ids(self, ids) -> dict[int, dict]:
        """The entries with these ids that are still kept, as JSON (decisions left out)."""
        wanted = set(ids)
        with self._lock:
            items = [e for e, _ in self._entries if e.id in wanted]
        return {e.id: _as_dict(e, decisions=False) for e in items}

    def count(self, tenant: str | None = None) -> int:
        with self._lock:
            return sum(1 for e, _ in self._entries if not tenant or e.tenant == tenant)

    def clear(self, tenant: str | None = None) -> None:
        with self._lock:
            kept = [] if tenant is None else [x for x in self._entries if x[0].tenant != tenant]
            self._entries.clear()
            self._entries.extend(kept)
            self.bytes = sum(size for _, size in kept)


def _status_test(text: str):
    """``404`` or ``4xx``; anything else is a ValueError naming the filter."""
    text = text.strip().lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        return lambda status: status // 100 == int(text[0])
    if text.isascii() and text.isdigit() and len(text) == 3:
        return lambda status: status == int(text)
    raise ValueError(f"status: {text!r} is not a status code (404) or class (4xx)")


def _as_dict(entry: _Entry, decisions: bool = True) -> dict:
    stamp = datetime.fromtimestamp(entry.time, timezone.utc)
    out = {"id": entry.id, "method": entry.method, "path": entry.path, "query": entry.query,
           "status": entry.status, "body": _body(entry.body),
           "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
           "tenant": entry.tenant}
    if entry.response is not None:
        headers, body = entry.response
        out["response"] = {"status": entry.status, "headers": dict(headers),
                           "body": _body(body)}
    else:
        out["response"] = None
    out["parent"] = entry.parent
    out["caused"] = list(entry.caused) if entry.caused else []
    if decisions:
        out.update(_decisions(entry.decisions))
    return out


def _decisions(groups) -> dict:
    from .trace import decision

    shown, total = [], 0
    for group in groups or ():
        total += len(group)
        room = MAX_DECISIONS_SHOWN - len(shown)
        shown += [decision(d) for d in group.first(room)]
    return {"decisions": shown, "decisionsTotal": total}


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
