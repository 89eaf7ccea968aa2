"""One tenant's state: companies, end users, pending contacts, activities and the report.

Records are plain dicts in Planhat's JSON shape. Every key lookup goes through an index that
is updated in the same locked section as the record it indexes, so lookups cost the same
with 100 or 100,000 records. Callers take ``tenant.lock`` around a match-then-write; the
methods here assume it is held and never take it themselves. A stored record is never
mutated in place (writers store a new dict), so a snapshot can be serialised after the lock
is released.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime, timezone

from .report import DEFAULT_PAYLOAD_BYTES, DEFAULT_REPORT_BYTES, DEFAULT_REPORT_SIZE, Report


def new_id() -> str:
    """24 hexadecimal characters, like Planhat's ids, but random (96 bits): no client can
    predict one, and two never meet in practice. Ids are the server's alone: no row sets one."""
    return secrets.token_hex(12)


class IdCollision(Exception):
    """A create met an existing record's id: never overwritten (never expected either)."""


_last_stamp: tuple[int, str] = (-1, "")  # (milliseconds since the epoch, its text)


def now_iso() -> str:
    """The wall-clock UTC time to the millisecond, ``2024-06-01T12:00:00.000Z``."""
    return format_millis(time.time_ns() // 1_000_000)  # floored, as datetime.now() is


def format_millis(millis: int) -> str:
    """Milliseconds since the epoch as ``2024-06-01T12:00:00.000Z``.

    A bulk write stamps thousands of records within the same millisecond: the text is made
    once per millisecond (formatting it was ~2 us, a third of storing an activity).
    """
    global _last_stamp
    cached = _last_stamp
    if cached[0] == millis:
        return cached[1]
    seconds, rest = divmod(millis, 1000)
    whole = datetime.fromtimestamp(seconds, timezone.utc).isoformat()  # ...T12:00:00+00:00
    text = f"{whole[:19]}.{rest:03d}Z"
    _last_stamp = (millis, text)
    return text


def norm_email(value: str) -> str:
    return value.strip().lower()


def email_domain(value: str) -> str | None:
    _, sep, domain = norm_email(value).rpartition("@")
    return domain if sep and domain else None


class _KeyIndex:
    """value -> id for a unique key (externalId, sourceId)."""

    def __init__(self) -> None:
        self.by_value: dict[str, str] = {}

    def get(self, value):
        return self.by_value.get(value) if value is not None else None

    def set(self, old, new, rid: str) -> None:
        if old == new:
            return
        if old is not None and self.by_value.get(old) == rid:
            del self.by_value[old]
        if new is not None:
            self.by_value[new] = rid


class _MultiIndex:
    """value -> the ids filed under it, for a key that may be shared (email, domain,
    companyId). Most values name one record: those keep the id itself (a str), and a set
    only once a second record shares the value (a set per value cost ~0.2 KiB an end user
    and scattered the index over memory)."""

    def __init__(self) -> None:
        self.by_value: dict[str, str | set[str]] = {}

    def get(self, value) -> tuple[str, ...] | set[str]:
        ids = self.by_value.get(value) if value is not None else None
        if ids is None:
            return ()
        return (ids,) if isinstance(ids, str) else ids

    def add(self, value, rid: str) -> None:
        if value is None:
            return
        ids = self.by_value.get(value)
        if ids is None:
            self.by_value[value] = rid
        elif isinstance(ids, str):
            if ids != rid:
                self.by_value[value] = {ids, rid}
        else:
            ids.add(rid)

    def discard(self, value, rid: str) -> None:
        ids = self.by_value.get(value)
        if ids is None:
            return
        if isinstance(ids, str):
            if ids == rid:
                del self.by_value[value]
            return
        ids.discard(rid)
        if len(ids) == 1:
            self.by_value[value] = next(iter(ids))
        elif not ids:
            del self.by_value[value]


class Collection:
    """The records of one model of `models.TABLE` (companies, end users, licenses, ...): by
    ``_id``, with unique ``externalId`` and ``sourceId`` indexes, the owning company's ``_id`` ->
    record ids, and the model's shared-key indexes (a company's domains, an end user's email).

    A model that ``holds`` records (end users: pending contacts) keeps them in ``held``: found
    by ``_id`` and by their keys like the others, but not among ``records`` and in no company.
    Writing a record of such a model moves it to the end of its dict (as end users always
    have); other models keep a record in its place."""

    def __init__(self, model) -> None:
        self.model = model
        self.company_field = model.company_field
        self.holds = model.holds
        self.records: dict[str, dict] = {}
        self.held: dict[str, dict] = {}
        self.ext = _KeyIndex()
        self.src = _KeyIndex()
        self.by_company = _MultiIndex()
        # field -> (its index, record -> the values it files the record under)
        self.shared = {name: (_MultiIndex(), values) for name, values in model.shared.items()}
        self.links = tuple(model.links)
        self.by_link = _MultiIndex()  # a linked record's _id -> ids of the records linking it

    def get(self, rid) -> dict | None:
        if not isinstance(rid, str):
            return None
        return self.records.get(rid) or self.held.get(rid)

    def by_external_id(self, value) -> dict | None:
        return self.get(self.ext.get(value))

    def by_source_id(self, value) -> dict | None:
        return self.get(self.src.get(value))

    def by_shared(self, name: str, value) -> list[dict]:
        """The records (held ones included) whose shared key ``name`` has ``value``."""
        return [self.get(r) for r in self.shared[name][0].get(value)]

    def of_company(self, cid: str) -> list[dict]:
        return [self.records[r] for r in self.by_company.get(cid)]

    def put(self, record: dict, old: dict | None = None, held: bool = False) -> dict:
        """Insert or replace a record, keeping every index in step."""
        rid = record["_id"]
        if old is None and (rid in self.records or rid in self.held):
            article = "an" if self.model.name[0] in "aeiou" else "a"
            raise IdCollision(f"_id: {article} {self.model.name} has _id {rid} already")
        self.ext.set(old and old.get("externalId"), record.get("externalId"), rid)
        self.src.set(old and old.get("sourceId"), record.get("sourceId"), rid)
        for field, (index, values) in self.shared.items():
            if old is not None and old.get(field) == record.get(field):
                continue  # the usual update: the shared key's field is unchanged
            before = values(old) if old is not None else ()
            after = values(record)
            if before != after:
                for value in before:
                    index.discard(value, rid)
                for value in after:
                    index.add(value, rid)
        if self.links:
            before = self._linked(old) if old is not None else set()
            after = self._linked(record)
            for value in before - after:
                self.by_link.discard(value, rid)
            for value in after - before:
                self.by_link.add(value, rid)
        if self.company_field:
            if old is not None:
                self.by_company.discard(old.get(self.company_field), rid)
            if not held:
                self.by_company.add(record.get(self.company_field), rid)
        if self.holds:
            self.held.pop(rid, None)
            self.records.pop(rid, None)
        (self.held if held else self.records)[rid] = record
        return record

    def delete(self, rid: str) -> dict | None:
        record = self.records.pop(rid, None) or self.held.pop(rid, None)
        if record is not None:
            self.ext.set(record.get("externalId"), None, rid)
            self.src.set(record.get("sourceId"), None, rid)
            for index, values in self.shared.values():
                for value in values(record):
                    index.discard(value, rid)
            if self.company_field:
                self.by_company.discard(record.get(self.company_field), rid)
            for value in self._linked(record) if self.links else ():
                self.by_link.discard(value, rid)
        return record

    def _linked(self, record: dict) -> set[str]:
        ids: set[str] = set()
        for name in self.links:
            value = record.get(name)
            if isinstance(value, str):
                ids.add(value)
            elif isinstance(value, list):
                ids.update(v for v in value if isinstance(v, str))
        return ids

    def unlink(self, target: str) -> None:
        """Drop a deleted record's ``_id`` from the links naming it (a single link becomes
        null, a list loses it); the linking records stay."""
        for rid in list(self.by_link.get(target)):
            old = self.records[rid]
            new = dict(old)
            for name in self.links:
                value = old.get(name)
                if value == target:
                    new[name] = None
                elif isinstance(value, list) and target in value:
                    new[name] = [v for v in value if v != target]
            self.put(new, old)


class Tenant:
    """All state of one Planhat tenant. Both of its tokens route requests to it."""

    def __init__(self, tenant_token: str, api_token: str, unassigned: str = "hold",
                 report_size: int = DEFAULT_REPORT_SIZE, report_bytes: int = DEFAULT_REPORT_BYTES,
                 payload_bytes: int = DEFAULT_PAYLOAD_BYTES, email_match: str = "attach") -> None:
        self.tenant_token = tenant_token
        self.api_token = api_token
        self.unassigned = unassigned
        self.email_match = email_match  # "attach" (the seeds' rule) or "strict"
        self.rate_limit = None  # a ratelimit.RateLimit, or None: no limit
        self.lock = threading.RLock()
        self.report = Report(report_size, report_bytes, payload_bytes)
        self.clear()

    # Tenant options: what ``POST /__admin/tenants`` accepts and a snapshot carries, as data.
    OPTIONS = {"unassigned": "unassigned", "emailMatch": "email_match"}  # name -> attribute

    @property
    def tokens(self) -> tuple[str, str]:
        """Both tokens: the tenant token and the API token."""
        return self.tenant_token, self.api_token

    def settings(self) -> dict:
        return {name: getattr(self, attr) for name, attr in self.OPTIONS.items()}

    # ----- the clock -------------------------------------------------------------------------
    def now_millis(self) -> int:
        """The tenant's clock: wall time, or the test time set by ``set_clock``."""
        frozen = self.clock_millis
        return time.time_ns() // 1_000_000 if frozen is None else frozen

    def now_iso(self) -> str:
        return format_millis(self.now_millis())

    def set_clock(self, millis: int | None) -> None:
        """Freeze the clock at ``millis`` (it then moves only when advanced); None = wall time."""
        self.clock_millis = millis

    def clock_state(self) -> dict:
        frozen = self.clock_millis
        return {"real": frozen is None, "now": self.now_iso()}

    # State attributes, swapped together by ``adopt`` (a restore builds a scratch tenant first).
    STATE = ("companies", "endusers", "pending", "activities", "dimensiondata", "report",
             "clock_millis", "recording_base", "recording_calls", "recording_bytes",
             "recording_dropped", "_activities_of", "history", "collections", "_companies",
             "_people")

    def adopt(self, other: Tenant) -> None:
        """Take ``other``'s whole state and options (all at once; the caller holds the lock)."""
        for name in self.STATE + tuple(self.OPTIONS.values()):
            setattr(self, name, getattr(other, name))

    def clear(self) -> None:
        self.clock_millis: int | None = None
        # The recording (GET /__admin/scenario): the state before the first recorded item, as
        # (time, compact JSON bytes), and the calls since, as JSON bytes (see recording.py).
        self.recording_base: tuple[str, bytes] | None = None
        self.recording_calls: list[bytes] = []
        self.recording_bytes = 0
        self.recording_dropped = 0
        self.activities: list[dict] = []
        self._activities_of: dict[str, list[dict]] = {}  # end user _id -> their activities
        self.dimensiondata: list[dict] = []
        self.report.clear()
        from .trace import History  # here: trace is read-side code the store only holds

        self.history = History()  # every row's decision, by the record or keys it touched
        from .models import TABLE  # here: the table's hooks import the matching rule, which
        # imports this module

        # One collection per model of the table; companies and end users are two of them.
        self.collections: dict[str, Collection] = {m.path: Collection(m) for m in TABLE}
        self._companies = self.collections["companies"]
        self._people = self.collections["endusers"]
        self.companies: dict[str, dict] = self._companies.records
        self.endusers: dict[str, dict] = self._people.records
        self.pending: dict[str, dict] = self._people.held  # contacts held without a company

    # ----- companies -------------------------------------------------------------------------
    def company(self, cid) -> dict | None:
        return self.companies.get(cid) if isinstance(cid, str) else None

    def company_by_external_id(self, value) -> dict | None:
        return self._companies.by_external_id(value)

    def company_by_source_id(self, value) -> dict | None:
        return self._companies.by_source_id(value)

    def companies_by_domain(self, domain: str) -> list[dict]:
        return self._companies.by_shared("domains", domain.lower())

    def put_record(self, path: str, record: dict, old: dict | None = None) -> dict:
        """Insert or replace a record of any model (a company: `put_company`, which keeps
        ``companyName`` in step on what it owns)."""
        if path == "companies":
            return self.put_company(record, old)
        return self.collections[path].put(record, old)

    def put_company(self, record: dict, old: dict | None = None) -> dict:
        """Insert or replace a company; a new name is copied to every record it owns."""
        self._companies.put(record, old)
        if old is not None and old.get("name") != record.get("name"):
            self.refresh_company_name(record)
        return record

    def refresh_company_name(self, company: dict) -> None:
        """Keep ``companyName`` in step on the company's records (never mutated in place)."""
        cid, name = company["_id"], company.get("name")
        for collection in self.collections.values():
            for rid in collection.by_company.get(cid):
                collection.records[rid] = {**collection.records[rid], "companyName": name}

    def delete_company(self, cid: str) -> list[str]:
        """Remove a company and every record it owns (refusals are checked first); returns the
        removed end users' ids."""
        self._companies.delete(cid)
        members = list(self._people.by_company.get(cid))
        for collection in self.collections.values():
            for rid in list(collection.by_company.get(cid)):
                collection.delete(rid)
        self._unlink(cid, *members)
        return members

    def _unlink(self, *ids: str) -> None:
        """Deleted records' ids leave every link that named them (`Collection.unlink`)."""
        for collection in self.collections.values():
            if collection.links:
                for rid in ids:
                    collection.unlink(rid)

    def delete_refusals(self, cid: str) -> list[str]:
        """Why a company cannot be deleted: its records of models whose rule is ``refuse``."""
        return [f"{len(ids)} {path}" for path, c in self.collections.items()
                if c.model.on_company_delete == "refuse"
                for ids in [c.by_company.get(cid)] if ids]

    # ----- end users and pending contacts ----------------------------------------------------
    def person(self, pid) -> dict | None:
        return self._people.get(pid)

    def is_pending(self, pid: str) -> bool:
        return pid in self.pending

    def person_by_external_id(self, value) -> dict | None:
        return self._people.by_external_id(value)

    def person_by_source_id(self, value) -> dict | None:
        return self._people.by_source_id(value)

    def people_by_email(self, value: str) -> list[dict]:
        return self._people.by_shared("email", norm_email(value))

    def members(self, cid: str) -> list[dict]:
        return self._people.of_company(cid)

    def put_person(self, record: dict, old: dict | None = None, pending: bool = False) -> dict:
        """Insert or replace an end user (or a pending contact), keeping indexes in step."""
        return self._people.put(record, old, held=pending)

    def delete_person(self, pid: str) -> dict | None:
        return self.delete_record("endusers", pid)

    def delete_record(self, path: str, rid: str) -> dict | None:
        """Delete a record of any model but companies (`delete_company`); links to it drop it."""
        record = self.collections[path].delete(rid)
        if record is not None:
            self._unlink(rid)
        return record

    # ----- activities and the report ---------------------------------------------------------
    def add_activity(self, record: dict) -> None:
        self.activities.append(record)
        done = self._activities_of.get(record["enduserId"])
        if done is None:
            self._activities_of[record["enduserId"]] = [record]
        else:
            done.append(record)

    def activities_of(self, pid: str) -> list[dict]:
        """An end user's activities, oldest first (a copy)."""
        return list(self._activities_of.get(pid, ()))

    @property
    def report_counts(self):
        """Report entries by reason since the last clear (kept or dropped by the bound)."""
        return self.report.counts

    def add_report(self, reason: str, message: str, payload=None, source: str | None = None,
                   raw: bytes | None = None, decision: dict | None = None):
        """Report what was not applied; ``raw``, the body the payload came from, lets a large
        one be bounded without serialising it; ``decision``, the matching decision behind it."""
        entry = {"reason": reason, "message": message, "source": source, "time": self.now_iso()}
        if decision is not None:
            entry["decision"] = decision
        return self.report.add(entry, payload, raw)

    def snapshot(self) -> dict:
        """The whole state as JSON-able data (copies, so callers may not mutate the store)."""
        return {
            "tenant": self.tenant_token,
            "unassigned": self.unassigned,
            "emailMatch": self.email_match,
            "rateLimit": self.rate_limit.text if self.rate_limit else None,
            **self.records(),
        }

    def records(self) -> dict:
        """Every kind of record the tenant holds and its report, as lists (copies of the
        containers): what the state answer and a snapshot both carry."""
        return {
            "companies": list(self.companies.values()),
            "endusers": list(self.endusers.values()),
            "pending": list(self.pending.values()),
            "activities": list(self.activities),
            "dimensiondata": list(self.dimensiondata),
            **{path: list(c.records.values()) for path, c in self.collections.items()
               if path not in ("companies", "endusers")},
            "report": self.report.entries(),
            "reportCounts": dict(self.report.counts),
        }
