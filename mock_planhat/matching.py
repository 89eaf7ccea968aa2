"""The matching rule and company resolution: pure functions over a `Tenant`.

An end-user row is matched to an existing end user (or pending contact) by, in this order:
``_id``, ``sourceId``, ``externalId``, ``email`` (trimmed, case-insensitive). The first key
that finds a record wins. A matched row updates that record; an unmatched row creates one.

* An email held by two or more records matches neither: the row is not applied
  (``ambiguous_email``).
* An email match whose record has another ``externalId`` (or ``sourceId``) than the row: the
  tenant's ``email_match`` policy decides. ``attach`` (default, the Segment destination's
  documented rule): the row updates that record, its keys included; the outcome carries a
  decision record and the report a ``matched_by_email`` entry saying which key changed from
  what to what. ``strict``: the record is another person, so the row creates a new end user
  (who then shares the email).
* ``externalId`` and ``sourceId`` are unique per tenant: a row that would give one to a second
  record is not applied (``duplicate_external_id`` / ``duplicate_source_id``). An email
  attach never meets this: a key held by any record would have matched before the email.
* A new end user needs a company: ``companyId`` (an ``_id``, ``extid-…`` or ``srcid-…`` key),
  ``companyExternalId``, or the one company whose ``domains`` hold the email's domain. Without
  one the tenant's ``unassigned`` policy decides: ``hold`` keeps it as a pending contact,
  ``discard`` drops it (``no_company``).
* An activity for no known end user creates one when it names a company (as a new end user
  row would find one); without a company it is not stored (``unknown_user``).

Callers hold ``tenant.lock``. Every row that is not applied is written to the tenant's report,
except a single write's: its 4xx answer says why.

Every outcome is also the row's **decision** (see :mod:`mock_planhat.trace`): the key that
matched (``key``), the record before the write (``old``, a reference: records are never
mutated in place), and the near misses (``near``: records that almost matched, references that
named nothing). Nothing is copied here; the trace turns them into JSON when it is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .records import (
    ACTIVITY_FIELDS,
    ENDUSER_FIELDS,
    FieldError,
    check_row,
)
from .store import Tenant, email_domain, new_id

logger = logging.getLogger("mock_planhat")
BULK_LIMIT = 5_000
_REF_KEYS = ("companyId", "companyExternalId")


@dataclass(slots=True)
class Outcome:
    """What one written row did: created, updated, nonupdate, held or rejected."""

    status: str
    record: dict | None = None
    reason: str | None = None
    message: str = ""
    field: str | None = None
    key: str | None = None  # the key that found the record (_id, sourceId, externalId, email)
    old: dict | None = None  # the record before an update (a reference, never a copy)
    near: list | None = None  # near misses: [{"key", "value", "recordId"?, "why"}]
    row: object = None  # the row as sent (set by attempt)
    decision: dict | None = None  # how the row found its record, when that is news
    # A bulk row of the engine's rule: whether it matched a record (its error goes to
    # ``updatedErrors`` if so, else ``createdErrors``); None: a hook's row, placed by reason.
    matched: bool | None = None

    @property
    def applied(self) -> bool:
        return self.status in ("created", "updated", "nonupdate")


class Rejected(Exception):
    def __init__(self, reason: str, message: str, field: str | None = None,
                 near: list | None = None, status: str = "rejected"):
        super().__init__(message)
        self.reason, self.message, self.field = reason, message, field
        self.near, self.status = near, status


def attempt(tenant: Tenant, write, row, source: str | None = None,
            report: bool = True) -> Outcome:
    """Run ``write()``; a `Rejected` becomes a rejected (or discarded) outcome, written to the
    report unless ``report`` is False (a single write answers its refusal itself, as a 4xx)."""
    try:
        outcome = write()
    except Rejected as exc:
        if report:
            tenant.add_report(exc.reason, exc.message, row, source)
        outcome = Outcome(exc.status, None, exc.reason, exc.message, exc.field, near=exc.near)
    outcome.row = row
    return outcome


def _near(key: str, value, why: str, record: dict | None = None) -> dict:
    miss = {"key": key, "value": value, "why": why}
    if record is not None:
        miss["recordId"] = record["_id"]
    return miss


def _checked(row, fields) -> dict:
    try:
        return check_row(row, fields)
    except FieldError as exc:
        raise Rejected(exc.reason, str(exc), exc.field) from None


# ----- keys and companies --------------------------------------------------------------------
def _by_key(key, by_id, by_external_id, by_source_id) -> dict | None:
    """A record by Planhat id or prefixed key (``extid-…``, ``srcid-…``)."""
    if not isinstance(key, str):
        return None
    if key.startswith("extid-"):
        return by_external_id(key[6:])
    if key.startswith("srcid-"):
        return by_source_id(key[6:])
    return by_id(key)


def find_company(tenant: Tenant, key) -> dict | None:
    """A company by ``_id``, ``extid-…`` or ``srcid-…``."""
    return _by_key(key, tenant.company, tenant.company_by_external_id,
                   tenant.company_by_source_id)


def find_person(tenant: Tenant, key) -> dict | None:
    """An end user or pending contact by ``_id``, ``extid-…`` or ``srcid-…``."""
    return _by_key(key, tenant.person, tenant.person_by_external_id,
                   tenant.person_by_source_id)


def company_for(tenant: Tenant, row: dict, email: str | None) -> tuple[dict | None, str | None]:
    """The company a row points at, and the reference it sent (None when it sent none).

    A sent reference is used alone; the email's domain is tried only when none was sent.
    """
    if "companyId" in row:
        return find_company(tenant, row["companyId"]), "companyId"
    if "companyExternalId" in row:
        return tenant.company_by_external_id(row["companyExternalId"]), "companyExternalId"
    domain = email_domain(email) if email else None
    if domain:
        found = tenant.companies_by_domain(domain)
        if len(found) == 1:
            return found[0], None
    return None, None


def _by_keys(row: dict, noun: str, by_id, by_source_id, by_external_id
             ) -> tuple[dict | None, str | None]:
    """(record, key) by ``_id``, then ``sourceId``, then ``externalId``.

    An ``_id`` names an existing record or nothing: one that is unknown is ``unknown_id``,
    whatever the other keys would match (ids are the server's; no row creates one)."""
    if "_id" in row:
        found = by_id(row["_id"])
        if found is None:
            raise Rejected("unknown_id", f"_id: no {noun} has _id {row['_id']!r}", "_id")
        return found, "_id"
    found = by_source_id(row.get("sourceId"))
    if found is not None:
        return found, "sourceId"
    found = by_external_id(row.get("externalId"))
    if found is not None:
        return found, "externalId"
    return None, None


def _same_id(old: dict, row: dict, what: str) -> None:
    """An ``_id`` in an update names the record it updates, or the row is refused."""
    if "_id" in row and row["_id"] != old["_id"]:
        raise Rejected("invalid_field", f"_id: {row['_id']!r} is not this {what}'s _id "
                       f"({old['_id']}); an _id is set by the server and never changes", "_id")


# ----- end users -----------------------------------------------------------------------------
_KEYS = ("externalId", "sourceId")


def match_person(tenant: Tenant, row: dict) -> dict | None:
    """The record a row is about, by _id, then sourceId, then externalId, then email."""
    return _match_person(tenant, row)[0]


def _match_person(tenant: Tenant, row: dict, near: list | None = None
                  ) -> tuple[dict | None, str | None]:
    """(record, the key that found it) by the matching rule; near misses go to ``near``."""
    found, key = _by_keys(row, "end user", tenant.person, tenant.person_by_source_id,
                          tenant.person_by_external_id)
    if found is None and row.get("email"):
        person = _one_by_email(tenant, row, near)
        if person is not None:
            return person, "email"
    return found, key


def _one_by_email(tenant: Tenant, row: dict, near: list | None = None) -> dict | None:
    """The one record holding the row's email, if the tenant's email_match policy takes it."""
    email = row["email"]
    people = tenant.people_by_email(email)
    if len(people) > 1:
        ids = sorted(p["_id"] for p in people)
        raise Rejected("ambiguous_email",
                       f"email: {email!r} is shared by {len(people)} end users "
                       f"({', '.join(ids)}); it matches neither", "email",
                       [_near("email", email, "one of several end users with this email", p)
                        for p in people])
    if not people:
        return None
    if tenant.email_match == "strict" and not _same_person(people[0], row):
        if near is not None:
            other = next(k for k in _KEYS
                         if row.get(k) and people[0].get(k) and row[k] != people[0][k])
            near.append(_near("email", email, f"same email, but {other} {people[0][other]!r} "
                              f"(the row has {row[other]!r}): another person (emailMatch: "
                              "strict)", people[0]))
        return None
    return people[0]


def _same_person(record: dict, row: dict) -> bool:
    return all(not row.get(k) or not record.get(k) or row[k] == record[k] for k in _KEYS)


def _email_decision(tenant: Tenant, old: dict, outcome: Outcome, row: dict, source) -> None:
    """Record that an email match attached the row, and which keys it changed (X → Y)."""
    new = outcome.record or old
    changed = {k: {"from": old.get(k), "to": new.get(k)} for k in _KEYS
               if old.get(k) != new.get(k)}
    outcome.decision = {"matchedBy": "email", "enduserId": old["_id"]}
    if changed:
        outcome.decision["changed"] = changed
    replaced = [k for k, v in changed.items() if v["from"]]
    if replaced:
        what = "; ".join(f"{k} changed from {changed[k]['from']!r} to {changed[k]['to']!r}"
                         for k in replaced)
        tenant.add_report("matched_by_email", f"email: {row.get('email')!r} matched end user "
                          f"{old['_id']} (emailMatch: attach); {what}", row, source,
                          decision=outcome.decision)


def upsert_enduser(tenant: Tenant, row, source: str | None = None) -> Outcome:
    """Apply one end-user row by the matching rule."""
    def write():
        clean = _checked(row, ENDUSER_FIELDS)
        near: list = []
        target, key = _match_person(tenant, clean, near)
        if target is None:
            outcome = create_enduser(tenant, clean)
        else:
            outcome = update_enduser(tenant, target, clean)
            outcome.key = key
            if key == "email" and outcome.record is not None:
                _email_decision(tenant, target, outcome, clean, source)
        if near:
            outcome.near = near + (outcome.near or [])
        return outcome
    return attempt(tenant, write, row, source)


def create_enduser(tenant: Tenant, row: dict) -> Outcome:
    """Create a new end user from a checked row (held or discarded without a company)."""
    if not any(row.get(k) for k in ("email", "externalId", "sourceId")):
        raise Rejected("missing_identifier",
                       "email: a new end user needs an email, externalId or sourceId", "email")
    company, ref = company_for(tenant, row, row.get("email"))
    stamp = tenant.now_iso()
    record = {"_id": None, "archived": False, "custom": {},
              **{k: v for k, v in row.items() if k not in _REF_KEYS},
              "createDate": stamp, "updatedAt": stamp}
    record["_id"] = new_id()  # the server's, whatever the row held
    _derive_name(record, row, None)
    if company is not None:
        _attach(record, company)
        return Outcome("created", tenant.put_person(record))
    return _unassigned(tenant, record, row, ref)


def _ref_miss(tenant: Tenant, row: dict, ref: str | None) -> list:
    """The near miss of a company reference that named nothing (or of no reference)."""
    if ref:
        return [_near(ref, row[ref], "names no company")]
    domain = email_domain(row.get("email") or "")
    if domain:
        n = len(tenant.companies_by_domain(domain))
        why = f"{n} companies have this domain" if n else "no company has this domain"
        return [_near("email", domain, why)]
    return []


def _unassigned(tenant: Tenant, record: dict, row: dict, ref: str | None) -> Outcome:
    why = (f"{ref}: no company matches {row[ref]!r}" if ref
           else "companyId: no companyId, companyExternalId or email domain names a company")
    if tenant.unassigned == "discard":
        raise Rejected("no_company", why + "; the end user was discarded", ref or "companyId",
                       _ref_miss(tenant, row, ref), "discarded")
    record["companyId"] = None
    if ref:
        record["requestedCompany"] = row[ref]
    tenant.put_person(record, pending=True)
    return Outcome("held", record, "no_company", why + "; held as a pending contact",
                   ref or "companyId", near=_ref_miss(tenant, row, ref))


def update_enduser(tenant: Tenant, old: dict, row: dict) -> Outcome:
    """Update a matched end user or pending contact with a checked row."""
    _same_id(old, row, "end user")
    for key, reason, lookup in (
        ("externalId", "duplicate_external_id", tenant.person_by_external_id),
        ("sourceId", "duplicate_source_id", tenant.person_by_source_id),
    ):
        other = lookup(row.get(key))
        if other is not None and other["_id"] != old["_id"]:
            raise Rejected(reason, f"{key}: {row[key]!r} belongs to end user {other['_id']}", key)
    was_pending = tenant.is_pending(old["_id"])
    company, ref = (None, None)
    if any(k in row for k in _REF_KEYS) or was_pending:
        company, ref = company_for(tenant, row, row.get("email") or old.get("email"))
        if company is None and ref and not was_pending:
            raise Rejected("unknown_company", f"{ref}: no company matches {row[ref]!r}", ref,
                           _ref_miss(tenant, row, ref))
    new = {**old, **{k: v for k, v in row.items() if k not in _REF_KEYS and k != "_id"}}
    new["custom"] = {**old.get("custom", {}), **row.get("custom", {})}
    _derive_name(new, row, old)
    if company is not None:
        _attach(new, company)
        new.pop("requestedCompany", None)
    elif was_pending and ref:
        new["requestedCompany"] = row[ref]
    near = None
    if company is not None and ref and old.get("companyId") \
            and old["companyId"] != company["_id"]:
        near = [_near(ref, row[ref], f"the end user was in company {old['companyId']}; the row "
                      f"moves it to {company['_id']}", old)]
    if new == old and not was_pending:
        return Outcome("nonupdate", old, old=old)
    if new != old:  # a pending contact sent again unchanged is still held, with its reason
        new["updatedAt"] = tenant.now_iso()
    if was_pending and company is None:
        tenant.put_person(new, old, pending=True)
        return Outcome("held", new, "no_company",
                       "companyId: still no company; the contact stays pending", "companyId",
                       old=old, near=_ref_miss(tenant, row, ref))
    tenant.put_person(new, old)
    return Outcome("created" if was_pending else "updated", new, old=old, near=near)


def assign_pending(tenant: Tenant, pid: str, company_key: str) -> Outcome:
    """Move a pending contact to a company (the admin's 'manually assigned')."""
    old = tenant.pending.get(pid)
    if old is None:
        raise Rejected("unknown_id", f"id: no pending contact has _id {pid!r}", "id")
    company = find_company(tenant, company_key)
    if company is None:
        raise Rejected("unknown_company", f"companyId: no company matches {company_key!r}",
                       "companyId")
    return update_enduser(tenant, old, {"companyId": company["_id"]})


def _attach(record: dict, company: dict) -> None:
    record["companyId"] = company["_id"]
    record["companyName"] = company.get("name")


def _full_name(record: dict) -> str | None:
    parts = [record.get("firstName"), record.get("lastName")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name or None


def _derive_name(record: dict, row: dict, old: dict | None) -> None:
    """``name`` follows first and last name unless a name was sent or set apart from them."""
    if "name" in row:
        return
    derived = _full_name(record)
    if derived and (old is None or not old.get("name") or old.get("name") == _full_name(old)):
        record["name"] = derived


# ----- bulk upserts --------------------------------------------------------------------------
@dataclass
class BulkResult:
    """Planhat's bulk-upsert response, built row by row."""

    created: int = 0
    createdErrors: list = field(default_factory=list)  # noqa: N815 - Planhat's names
    insertsKeys: list = field(default_factory=list)  # noqa: N815
    updated: int = 0
    updatedErrors: list = field(default_factory=list)  # noqa: N815
    updatesKeys: list = field(default_factory=list)  # noqa: N815
    nonupdates: int = 0
    modified: list = field(default_factory=list)
    upsertedIds: list = field(default_factory=list)  # noqa: N815
    permissionErrors: list = field(default_factory=list)  # noqa: N815

    def add(self, index: int, outcome: Outcome, row) -> None:
        record = outcome.record
        if outcome.status == "created":
            self.created += 1
            self.insertsKeys.append(_keys(record, outcome.decision))
            self.upsertedIds.append(record["_id"])
        elif outcome.status == "updated":
            self.updated += 1
            self.updatesKeys.append(_keys(record, outcome.decision))
            self.modified.append(record["_id"])
        elif outcome.status == "nonupdate":
            self.nonupdates += 1
        else:
            error = {"index": index, "reason": outcome.reason, "field": outcome.field,
                     "message": outcome.message, "item": row}
            if outcome.status == "held":
                error.update(held=True, pendingId=record["_id"])
            updated = outcome.reason in _UPDATE_REASONS if outcome.matched is None \
                else outcome.matched
            target = self.updatedErrors if updated else self.createdErrors
            target.append(error)

    @property
    def status(self) -> int:
        return 206 if self.createdErrors or self.updatedErrors else 200

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_UPDATE_REASONS = {"duplicate_external_id", "duplicate_source_id", "unknown_company"}


def _keys(record: dict, decision: dict | None = None) -> dict:
    """A row's keys in the bulk answer; an email match adds ``matchedBy`` and ``changed``."""
    keys = {k: record[k] for k in ("_id", "externalId", "sourceId", "email") if record.get(k)}
    if decision is not None:
        keys["matchedBy"] = decision["matchedBy"]
        if "changed" in decision:
            keys["changed"] = decision["changed"]
    return keys


def bulk_upsert(tenant: Tenant, rows: list, upsert, source: str | None = None) -> BulkResult:
    """Apply the rows in order; each row succeeds or fails alone. A row that fails in a way
    nobody foresaw (a bug of ours) is a row error ``internal_error`` too, never a 500 that
    leaves the rows before it applied and the caller told nothing."""
    result = BulkResult()
    outcomes = result.outcomes = []  # every row's decision (not part of the response)
    for index, row in enumerate(rows):
        outcome = apply_alone(tenant, index, row, upsert, source)
        outcomes.append(outcome)
        result.add(index, outcome, row)
    return result


def apply_alone(tenant: Tenant, index: int, row, apply, source: str | None) -> Outcome:
    """``apply(tenant, row, source)`` for the row at ``index`` of a bulk; an exception nobody
    foresaw (a bug of ours) fails this row alone, as ``internal_error`` in the report."""
    try:
        return apply(tenant, row, source)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.exception("bulk row %d failed", index)
        message = f"body[{index}]: the row failed ({type(exc).__name__}: {exc})"
        tenant.add_report("internal_error", message, row, source)
        return Outcome("rejected", None, "internal_error", message, f"body[{index}]")


# ----- activities ----------------------------------------------------------------------------
# Set by the server on every activity; a row's values for them are not kept. The inputs are
# ACTIVITY_FIELDS (email, externalId, name, companyExternalId, action, weight, date, info) and
# any other field, kept as sent.
ACTIVITY_SERVER_FIELDS = frozenset({"_id", "enduserId", "companyId", "createDate"})


def _report_ignored(tenant: Tenant, row, source, ignored: list, sent, person: dict) -> None:
    """The activity was stored, but part of its row was not kept: say which part, and why."""
    notes = [f"{name}: set by the server; the row's {name} was not kept" for name in ignored]
    if sent and sent != person.get("externalId"):
        notes.append(f"externalId: no end user has externalId {sent!r}; the activity was "
                     f"credited by email to end user {person['_id']} and carries its "
                     f"externalId ({person.get('externalId')!r})")
    tenant.add_report("ignored_field", "; ".join(notes), row, source)


def record_activity(tenant: Tenant, row, source: str | None = None) -> Outcome:
    """Store a user activity against its end user, or report why it could not be.

    An activity for no known end user that names a company (``companyId``,
    ``companyExternalId``, or an email whose domain is one company's) creates the end user in
    that company first, as Planhat does; without one it is not stored (``unknown_user``).
    """
    def write():
        clean = _checked(row, ACTIVITY_FIELDS)
        if not clean.get("externalId") and not clean.get("email"):
            raise Rejected("missing_identifier", "externalId: an activity needs an externalId "
                           "or an email", "externalId")
        person = tenant.person_by_external_id(clean.get("externalId"))
        if person is None and clean.get("email"):
            person = _one_by_email(tenant, clean)
        decision = None
        if person is None:
            person = _new_user_of_activity(tenant, clean)
            decision = {"createdEnduser": person["_id"], "companyId": person["companyId"]}
        stamp = tenant.now_iso()
        record = {"_id": None, "enduserId": None, "companyId": None, "weight": 1, "info": {},
                  "date": stamp, **clean, "createDate": stamp}
        # Server-owned: whatever the row sent, the activity is the credited person's.
        record["_id"] = new_id()
        record["enduserId"] = person["_id"]
        record["companyId"] = person.get("companyId")
        sent = clean.get("externalId")
        record["externalId"] = person.get("externalId")
        ignored = ACTIVITY_SERVER_FIELDS.intersection(clean)
        if ignored or (sent and sent != record["externalId"]):
            _report_ignored(tenant, row, source, sorted(ignored), sent, person)
        tenant.add_activity(record)
        matched = None if decision else (
            "externalId" if clean.get("externalId") and
            person.get("externalId") == clean["externalId"] else "email")
        return Outcome("created", record, decision=decision, key=matched)
    return attempt(tenant, write, row, source)


def _new_user_of_activity(tenant: Tenant, row: dict) -> dict:
    """The end user an activity for nobody known creates in the company it names."""
    key = "externalId" if row.get("externalId") else "email"
    company, ref = company_for(tenant, row, row.get("email"))
    if company is None:
        why = (f"; {ref} {row[ref]!r} names no company" if ref else
               "; it names no company (companyExternalId, companyId or an email domain) to "
               "create one in")
        raise Rejected("unknown_user", f"{key}: no end user matches {row[key]!r}{why}", key,
                       [_near(key, row[key], "names no end user" + why)])
    fields = {k: row[k] for k in ("externalId", "email", "source") if row.get(k)}
    return create_enduser(tenant, {**fields, "companyId": company["_id"]}).record
