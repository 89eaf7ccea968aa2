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

from .models import MODELS
from .report import DEFAULT_PAYLOAD_BYTES, DEFAULT_REPORT_BYTES, DEFAULT_REPORT_SIZE, Report


def new_id() -> str:
    """24 hexadecimal characters, like Planhat's ids, but random (96 bits): no client can
    predict one, and two never meet in practice. Ids are the server's alone: no row sets one."""
    return secrets.token_hex(12)


class IdCollision(Exception):
    """A create met an existing record's id: never overwritten (never expected either)."""


_last_stamp: tuple[int, str] = (-1, "")  # (milliseconds since the epoch, its text)
RECORDING_BYTES = 64 * 1024 * 1024  # calls and requests a tenant's recording keeps, in bytes


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
    """value -> set of ids for a key that may be shared (email, domain, companyId)."""

    def __init__(self) -> None:
        self.by_value: dict[str, set[str]] = {}

    def get(self, value) -> set[str]:
        return self.by_value.get(value, set()) if value is not None else set()

    def add(self, value, rid: str) -> None:
        if value is not None:
            self.by_value.setdefault(value, set()).add(rid)

    def discard(self, value, rid: str) -> None:
        ids = self.by_value.get(value)
        if ids is not None:
            ids.discard(rid)
            if not ids:
                del self.by_value[value]


class Collection:
    """The records of one model (licenses, tasks, ...): by ``_id``, with unique ``externalId`` and
    ``sourceId`` indexes and the owning company's ``_id`` -> record ids."""

    def __init__(self, company_field: str | None) -> None:
        self.company_field = company_field
        self.records: dict[str, dict] = {}
        self.ext = _KeyIndex()
        self.src = _KeyIndex()
        self.by_company = _MultiIndex()

    def get(self, rid) -> dict | None:
        return self.records.get(rid) if isinstance(rid, str) else None

    def by_external_id(self, value) -> dict | None:
        return self.get(self.ext.get(value))

    def by_source_id(self, value) -> dict | None:
        return self.get(self.src.get(value))

    def of_company(self, cid: str) -> list[dict]:
        return [self.records[r] for r in self.by_company.get(cid)]

    def put(self, record: dict, old: dict | None = None) -> dict:
        rid = record["_id"]
        self.ext.set(old and old.get("externalId"), record.get("externalId"), rid)
        self.src.set(old and old.get("sourceId"), record.get("sourceId"), rid)
        if self.company_field:
            if old is not None:
                self.by_company.discard(old.get(self.company_field), rid)
            self.by_company.add(record.get(self.company_field), rid)
        self.records[rid] = record
        return record

    def delete(self, rid: str) -> dict | None:
        record = self.records.pop(rid, None)
        if record is not None:
            self.ext.set(record.get("externalId"), None, rid)
            self.src.set(record.get("sourceId"), None, rid)
            if self.company_field:
                self.by_company.discard(record.get(self.company_field), rid)
        return record


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
             "recording_dropped", "_activities_of", "history", "_company_ext", "_company_src",
             "_company_domain", "_person_ext", "_person_src", "_person_email", "_members",
             "collections")

    def adopt(self, other: Tenant) -> None:
        """Take ``other``'s whole state and options (all at once; the caller holds the lock)."""
        for name in self.STATE + tuple(self.OPTIONS.values()):
            setattr(self, name, getattr(other, name))

    def clear(self) -> None:
        self.clock_millis: int | None = None
        # The recording (GET /__admin/scenario): the state before the first recorded item and
        # the calls since, as JSON bytes, bounded by RECORDING_BYTES.
        self.recording_base: dict | None = None
        self.recording_calls: list[bytes] = []
        self.recording_bytes = 0
        self.recording_dropped = 0
        self.companies: dict[str, dict] = {}
        self.endusers: dict[str, dict] = {}
        self.pending: dict[str, dict] = {}
        self.activities: list[dict] = []
        self._activities_of: dict[str, list[dict]] = {}  # end user _id -> their activities
        self.dimensiondata: list[dict] = []
        self.report.clear()
        from .trace import History  # here: trace is read-side code the store only holds

        self.history = History()  # every row's decision, by the record or keys it touched
        self._company_ext = _KeyIndex()
        self._company_src = _KeyIndex()
        self._company_domain = _MultiIndex()
        self._person_ext = _KeyIndex()
        self._person_src = _KeyIndex()
        self._person_email = _MultiIndex()
        self._members = _MultiIndex()  # company _id -> end user ids
        self.collections: dict[str, Collection] = {
            m.path: Collection(m.company_field) for m in MODELS}

    # ----- companies -------------------------------------------------------------------------
    def company(self, cid) -> dict | None:
        return self.companies.get(cid) if isinstance(cid, str) else None

    def company_by_external_id(self, value) -> dict | None:
        return self.company(self._company_ext.get(value))

    def company_by_source_id(self, value) -> dict | None:
        return self.company(self._company_src.get(value))

    def companies_by_domain(self, domain: str) -> list[dict]:
        return [self.companies[c] for c in self._company_domain.get(domain.lower())]

    def put_company(self, record: dict, old: dict | None = None) -> dict:
        """Insert or replace a company record, keeping the indexes and members in step."""
        cid = record["_id"]
        if old is None and cid in self.companies:
            raise IdCollision(f"_id: a company has _id {cid} already")
        self._company_ext.set(old and old.get("externalId"), record.get("externalId"), cid)
        self._company_src.set(old and old.get("sourceId"), record.get("sourceId"), cid)
        for domain in (old or {}).get("domains") or ():
            self._company_domain.discard(domain.lower(), cid)
        for domain in record.get("domains") or ():
            self._company_domain.add(domain.lower(), cid)
        self.companies[cid] = record
        if old is not None and old.get("name") != record.get("name"):
            name = record.get("name")
            for uid in self._members.get(cid):  # records are never mutated in place
                self.endusers[uid] = {**self.endusers[uid], "companyName": name}
            for collection in self.collections.values():
                for rid in collection.by_company.get(cid):
                    collection.records[rid] = {**collection.records[rid], "companyName": name}
        return record

    def delete_company(self, cid: str) -> list[str]:
        """Remove a company and its end users; returns the removed end users' ids."""
        record = self.companies.pop(cid)
        self._company_ext.set(record.get("externalId"), None, cid)
        self._company_src.set(record.get("sourceId"), None, cid)
        for domain in record.get("domains") or ():
            self._company_domain.discard(domain.lower(), cid)
        members = list(self._members.get(cid))
        for uid in members:
            self.delete_person(uid)
        for collection in self.collections.values():  # cascade (refusals are checked first)
            for rid in list(collection.by_company.get(cid)):
                collection.delete(rid)
        return members

    def delete_refusals(self, cid: str) -> list[str]:
        """Why a company cannot be deleted: its records of models whose rule is ``refuse``."""
        return [f"{len(ids)} {m.path}" for m in MODELS if m.on_company_delete == "refuse"
                for ids in [self.collections[m.path].by_company.get(cid)] if ids]

    # ----- end users and pending contacts ----------------------------------------------------
    def person(self, pid) -> dict | None:
        if not isinstance(pid, str):
            return None
        return self.endusers.get(pid) or self.pending.get(pid)

    def is_pending(self, pid: str) -> bool:
        return pid in self.pending

    def person_by_external_id(self, value) -> dict | None:
        return self.person(self._person_ext.get(value))

    def person_by_source_id(self, value) -> dict | None:
        return self.person(self._person_src.get(value))

    def people_by_email(self, value: str) -> list[dict]:
        return [self.person(p) for p in self._person_email.get(norm_email(value))]

    def members(self, cid: str) -> list[dict]:
        return [self.endusers[u] for u in self._members.get(cid)]

    def put_person(self, record: dict, old: dict | None = None, pending: bool = False) -> dict:
        """Insert or replace an end user (or a pending contact), keeping indexes in step."""
        pid = record["_id"]
        if old is None and (pid in self.endusers or pid in self.pending):
            raise IdCollision(f"_id: an end user has _id {pid} already")
        self._person_ext.set(old and old.get("externalId"), record.get("externalId"), pid)
        self._person_src.set(old and old.get("sourceId"), record.get("sourceId"), pid)
        old_email = old.get("email") if old else None
        new_email = record.get("email")
        if old_email != new_email:
            if old_email:
                self._person_email.discard(norm_email(old_email), pid)
            if new_email:
                self._person_email.add(norm_email(new_email), pid)
        if old is not None:
            self._members.discard(old.get("companyId"), pid)
        self.pending.pop(pid, None)
        self.endusers.pop(pid, None)
        if pending:
            self.pending[pid] = record
        else:
            self.endusers[pid] = record
            self._members.add(record.get("companyId"), pid)
        return record

    def delete_person(self, pid: str) -> dict | None:
        record = self.endusers.pop(pid, None) or self.pending.pop(pid, None)
        if record is None:
            return None
        self._person_ext.set(record.get("externalId"), None, pid)
        self._person_src.set(record.get("sourceId"), None, pid)
        if record.get("email"):
            self._person_email.discard(norm_email(record["email"]), pid)
        self._members.discard(record.get("companyId"), pid)
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
            **{path: list(c.records.values()) for path, c in self.collections.items()},
            "report": self.report.entries(),
            "reportCounts": dict(self.report.counts),
        }
