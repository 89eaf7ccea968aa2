"""The read layer: what the admin API and the dashboard show, computed once for both.

The JSON admin API (``routes/admin.py``) and the HTML dashboard (``dashboard/``) call these
functions and only render their results: tenants with counts, pages of records, one person,
journal queries, ``explain``, the report as a delivery funnel. Nothing here knows Flask; bad
query values raise :class:`QueryError` naming the parameter, which each face turns into its
own error (a JSON 400, a message on the page).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timezone

from .store import Tenant, norm_email
from .trace import ENTRY, KIND, VIA, decision

RECORD_KINDS = ("endusers", "companies", "pending")
SEARCHED = {"endusers": ("email", "externalId", "name"),
            "pending": ("email", "externalId", "name"),
            "companies": ("name", "externalId", "domains")}
APPLIED = ("created", "updated", "nonupdate")
SAMPLES = 3
MAX_PAGE = 1_000


class QueryError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# ----- tenants and records -------------------------------------------------------------------
def find_tenant(registry, token: str | None) -> Tenant:
    """The tenant with either token; the default one without a token (None). An empty token
    names no tenant, like any other unknown one: ``?tenant=`` is a caller's mistake."""
    if token is None:
        return registry.default
    tenant = registry.by_either_token(token)
    if tenant is None:
        raise QueryError("tenant", f"no tenant has token {token!r}")
    return tenant


def tenants(registry) -> list[dict]:
    out = []
    for tenant in registry.all():
        with tenant.lock:
            counts = {"companies": len(tenant.companies), "endusers": len(tenant.endusers),
                      "pending": len(tenant.pending), "activities": len(tenant.activities),
                      "report": sum(tenant.report_counts.values())}
        out.append({"tenantToken": tenant.tenant_token, "apiToken": tenant.api_token,
                    "unassigned": tenant.unassigned, "emailMatch": tenant.email_match,
                    "rateLimit": tenant.rate_limit.text if tenant.rate_limit else None,
                    "counts": counts})
    return out


def whole_number(args, name: str, default: int, maximum: int | None = None) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise QueryError(name, f"{raw[:40]!r} is not a whole number")
    value = int(raw)
    return min(value, maximum) if maximum is not None else value


def records_page(tenant: Tenant, kind: str, q: str = "", sort: str = "", offset: int = 0,
                 limit: int = 50) -> tuple[int, list[dict]]:
    """(how many match, one page) of end users, companies or pending contacts: ``q`` searches
    email, externalId and name (companies: name, externalId, domains), case-insensitive;
    ``sort`` names a field, ``-field`` for descending."""
    if kind not in RECORD_KINDS:
        raise QueryError("kind", f"{kind!r} is not one of {', '.join(RECORD_KINDS)}")
    with tenant.lock:
        source = {"endusers": tenant.endusers, "companies": tenant.companies,
                  "pending": tenant.pending}[kind]
        records = list(source.values())
    needle = q.strip().lower()
    if needle:
        one, two, three = SEARCHED[kind]
        records = [r for r in records
                   if needle in f"{r.get(one) or ''}\x00{r.get(two) or ''}\x00{r.get(three) or ''}".lower()]
    field = sort.lstrip("-")
    if field:
        records = _sorted(records, field, sort.startswith("-"))
    return len(records), records[offset:offset + min(limit, MAX_PAGE)]


def _sorted(records: list[dict], field: str, descending: bool) -> list[dict]:
    """By ``field``, records without it last; values of one type compare as they are (fast),
    mixed types by the API's rule (numbers before text)."""
    present = [r for r in records if r.get(field) is not None]
    missing = [r for r in records if r.get(field) is None]
    try:
        present.sort(key=lambda r: r[field], reverse=descending)
    except TypeError:
        present.sort(key=lambda r: _sort_key(r[field]), reverse=descending)
    return present + missing


def _sort_key(value):
    if value is None:
        return (1, 0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, 0, value)
    return (0, 1, str(value).lower())


def person(fake, tenant: Tenant, pid: str, activities: int = 100) -> dict | None:
    """One end user or pending contact: fields, company, newest activities, decisions."""
    with tenant.lock:
        record = tenant.person(pid)
        if record is None:
            return None
        company = tenant.company(record.get("companyId"))
        done = tenant.activities_of(pid)
    story = explain(fake, tenant, "id", pid)
    return {"record": record, "pending": story["found"][0]["kind"] == "pending",
            "company": company, "activityCount": len(done),
            "activities": done[::-1][:activities], "history": story["history"]}


# ----- journal -------------------------------------------------------------------------------
def journal_query(fake, args, default_limit: int | None = None,
                  newest_first: bool = False) -> dict:
    """The journal filtered by ``tenant``, ``method``, ``path`` (glob), ``status`` (404 or 4xx),
    ``since`` (ISO time or seconds since the epoch), paged by ``offset``/``limit`` and ordered
    by ``order`` (``oldest``, the default, or ``newest``); any other name is a QueryError."""
    journal = fake.journal
    from .journal import FILTERS, _status_test

    unknown = sorted(set(args) - set(FILTERS))
    if unknown:
        raise QueryError(unknown[0], f"not a journal filter ({', '.join(FILTERS)})")
    empty = sorted(k for k in args if k != "tenant" and args.get(k) == "")
    if empty:
        raise QueryError(empty[0], "empty; leave the filter out to not filter")
    token = args.get("tenant") or None
    tenant = find_tenant(fake.registry, token).tenant_token if token else None
    status = args.get("status") or None
    if status:
        try:
            _status_test(status)
        except ValueError as exc:
            raise QueryError("status", str(exc).partition(": ")[2]) from None
    order = args.get("order") or ("newest" if newest_first else "oldest")
    if order not in ("oldest", "newest"):
        raise QueryError("order", f"{order[:40]!r} is not oldest or newest")
    limit = whole_number(args, "limit", default_limit) if args.get("limit") or default_limit \
        else None
    offset = whole_number(args, "offset", 0)
    total, entries = journal.query(tenant, args.get("method") or None, args.get("path") or None,
                                   status, parse_since(args.get("since")), order == "newest",
                                   offset, limit)
    return {"size": journal.size, "total": journal.total, "kept": journal.count(tenant),
            "dropped": journal.dropped, "bytes": journal.bytes, "maxBytes": journal.max_bytes,
            "matched": total, "offset": offset, "limit": limit, "requests": entries}


_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ISO = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?"
                  r"([Zz]|[+-][0-9]{2}:[0-9]{2})")  # RFC 3339: the zone is required


def parse_since(text: str | None) -> float | None:
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        return float(text)
    match = _ISO.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        date, clock, fraction, zone = match.groups()
        fraction = (fraction or "")[1:7].ljust(6, "0")
        zone = "+00:00" if zone in ("Z", "z") else zone
        stamp = datetime.fromisoformat(f"{date}T{clock}.{fraction}{zone}")
    except ValueError:
        raise QueryError("since", f"{text[:40]!r} is not an ISO 8601 time or seconds since "
                         "the epoch") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


# ----- explain -------------------------------------------------------------------------------
EXPLAIN_KEYS = ("externalId", "email", "id")


def explain_args(args) -> tuple[str, str]:
    """The one of ``externalId``, ``email``, ``id`` that an explain query names."""
    unknown = sorted(set(args) - {*EXPLAIN_KEYS, "tenant"})
    if unknown:
        raise QueryError(unknown[0], "not an explain parameter (externalId, email, id, tenant)")
    empty = [k for k in EXPLAIN_KEYS if args.get(k) == ""]
    if empty:
        raise QueryError(empty[0], "empty; name a value")
    given = [k for k in EXPLAIN_KEYS if args.get(k)]
    if len(given) != 1:
        raise QueryError("externalId", "name exactly one of externalId, email or id")
    return given[0], args[given[0]]


def explain(fake, tenant: Tenant, by: str, value: str) -> dict:
    """The records a key names (end users, pending contacts, companies) and every decision
    that touched them or named the key, oldest first, with the journal entry that made it."""
    keys: list[str] = []
    with tenant.lock:
        found = _found(tenant, by, value)
        if by == "externalId":
            keys.append("externalId:" + value)
        elif by == "email":
            keys.append("email:" + norm_email(value))
        else:
            keys.append("id:" + value)
        for _, record in found:
            keys.append("id:" + record["_id"])
            if record.get("externalId"):
                keys.append("externalId:" + str(record["externalId"]))
            if record.get("email"):
                keys.append("email:" + norm_email(str(record["email"])))
        items = tenant.history.about(keys)
    person_kinds = {"enduser", "activity", "segment"}
    wants_company = any(kind == "company" for kind, _ in found)
    wants_person = any(kind != "company" for kind, _ in found) or not found
    items = [i for i in items
             if (i[KIND] == "company" and (wants_company or not found))
             or (i[KIND] in person_kinds and wants_person)]
    entries = fake.journal.by_ids({i[ENTRY] for i in items})
    history = []
    for item in items:
        entry = entries.get(item[ENTRY])
        history.append({
            "entry": ({k: entry[k] for k in ("id", "method", "path", "status", "time", "parent")}
                      if entry else None),
            "via": item[VIA], "entryId": item[ENTRY], "decision": decision(item)})
    return {"tenant": tenant.tenant_token, "query": {by: value},
            "found": [{"kind": kind, "record": record} for kind, record in found],
            "history": history}


def _found(tenant: Tenant, by: str, value: str) -> list[tuple[str, dict]]:
    people: list[dict] = []
    companies: list[dict] = []
    if by == "externalId":
        people = [p for p in [tenant.person_by_external_id(value)] if p]
        companies = [c for c in [tenant.company_by_external_id(value)] if c]
    elif by == "email":
        people = [p for p in tenant.people_by_email(value) if p]
    else:
        people = [p for p in [tenant.person(value)] if p]
        companies = [c for c in [tenant.company(value)] if c]
    return ([("pending" if tenant.is_pending(p["_id"]) else "enduser", p) for p in people]
            + [("company", c) for c in companies])


# ----- the report as a delivery funnel -------------------------------------------------------
def funnel(fake, tenant: Tenant) -> dict:
    """Segment's Delivery Overview for this tenant: calls received → filtered → skipped by
    reason → failed → Planhat rows → not applied by reason → held → applied, each step with its
    count and (where the report keeps them) sample payloads."""
    with tenant.lock:
        counts = dict(tenant.history.counts)
        report_counts = dict(tenant.report_counts)
    samples: dict[str, list] = {}
    for reason in report_counts:  # the newest few the report still keeps, per reason
        texts = tenant.report.texts(reason)[-SAMPLES:]
        samples[reason] = [json.loads(t).get("payload") for t in reversed(texts)]
    segment: dict[str, dict[str, int]] = defaultdict(dict)
    rows: dict[str, dict[str, int]] = defaultdict(dict)
    for (kind, status, reason), n in counts.items():
        if kind == "segment":
            segment[status][reason] = segment[status].get(reason, 0) + n
        else:
            rows[status][reason or kind] = rows[status].get(reason or kind, 0) + n
    received = sum(segment.get("received", {}).values())
    skipped = dict(segment.get("discarded", {}))
    filtered = skipped.pop("filtered", 0)
    failed = segment.get("failed", {})
    not_applied: dict[str, int] = {}
    for status in ("rejected", "discarded"):
        for reason, n in rows.get(status, {}).items():
            not_applied[reason] = not_applied.get(reason, 0) + n
    held = rows.get("held", {})
    applied: dict[str, int] = {}
    for status in APPLIED:
        for kind, n in rows.get(status, {}).items():
            applied[f"{kind} {status}"] = n

    def step(name, label, by_reason: dict | None = None, count=None):
        by_reason = {k: v for k, v in sorted((by_reason or {}).items(), key=lambda i: -i[1])}
        return {"step": name, "label": label,
                "count": count if count is not None else sum(by_reason.values()),
                "reasons": [{"reason": r, "count": n, "samples": samples.get(r, [])}
                            for r, n in by_reason.items()]}

    rows_total = sum(n for by in rows.values() for n in by.values())
    return {"tenant": tenant.tenant_token, "steps": [
        step("received", "Segment calls received (/v1, /dock/segment)", count=received),
        step("filtered", "filtered by the destination's settings", {"filtered": filtered}
             if filtered else {}),
        step("skipped", "skipped by the translator, by reason", skipped),
        step("failed", "delivery failed after retries", failed),
        step("rows", "Planhat rows received (any source)", count=rows_total),
        step("not_applied", "rows not applied, by reason", not_applied),
        step("held", "held as pending contacts", held),
        step("applied", "rows applied", applied),
    ], "reportCounts": report_counts}
