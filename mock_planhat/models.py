"""The table of Planhat's objects, as data: `TABLE` is companies, end users and `MODELS`.

One `Model` per object: its path, required fields, typed fields, whether a company owns it
(and by which field), its links to companies and end users, its page sizes, whether it takes a
bulk upsert, what deleting its company does, its list filters, and named hooks for its genuine
special rules — for companies and end users, the matching rule of `matching.py`. `engine.py`
applies a row to any model; `routes/models.py` builds the HTTP handlers from this table; the
store keeps one `Collection` per row; the OpenAPI paths of `MODELS` are generated from it
(`openapi_models.py`; end users' and companies' are hand-written). Nothing here imports Flask.

Not emulated (derived fields Planhat computes from data the fake does not hold): a company's NPS,
MRR/ARR totals from licenses, health scores, conversation threading, task reminders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from .matching import (
    Rejected,
    create_enduser,
    find_company,
    update_enduser,
    upsert_enduser,
)
from .records import (
    COMPANY_FIELDS,
    ENDUSER_FIELDS,
    FieldError,
    _bool,
    _email,
    _key,
    _list_of,
    _number,
    _object,
    _object_id,
    _text,
    _type_name,
)
from .store import norm_email

EPOCH = date(1970, 1, 1)


def _whole(value) -> bool:
    """A whole number (JSON's 7.0 is the integer 7, as JSON Schema counts it)."""
    return not isinstance(value, bool) and (isinstance(value, int) or (
        isinstance(value, float) and value.is_integer()))


def _int_between(low: int, high: int):
    def run(value, name):
        if not _whole(value) or not low <= value <= high:
            shown = repr(value) if isinstance(value, (int, float)) else _type_name(value)
            raise FieldError(name, f"must be a whole number from {low} to {high}, not {shown}")
    run.schema = {"type": "integer", "minimum": low, "maximum": high}
    return run


def _one_of(*values: str):
    def run(value, name):
        if value not in values:
            raise FieldError(name, f"{value!r} is not one of {', '.join(values)}"
                             if isinstance(value, str) else
                             f"must be one of {', '.join(values)}, not {_type_name(value)}")
    run.schema = {"enum": list(values)}
    return run


def _list(check):
    """An array of items that each pass ``check`` (its schema kept for the OpenAPI document)."""
    run = _list_of(check)
    run.item = check
    return run


def _date_text(value, name):
    """A date as text (Planhat takes ISO 8601); kept as sent."""
    _text(value, name)


DAYS_RANGE = (-100_000, 1_000_000)


def _days(value, name):
    """An invoice date: a whole number of days since 1970-01-01, as Planhat sends them."""
    if not _whole(value) or not DAYS_RANGE[0] <= value <= DAYS_RANGE[1]:
        shown = repr(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else _type_name(value)
        raise FieldError(name, f"must be a whole number of days since 1970 "
                         f"({DAYS_RANGE[0]} to {DAYS_RANGE[1]}), not {shown}")


_days.schema = {"type": "integer", "minimum": DAYS_RANGE[0], "maximum": DAYS_RANGE[1],
                "description": "days since 1970-01-01"}


CONVERSATION_TYPES = ("note", "email", "chat", "call", "meeting", "ticket")

# Fields every model shares; a model's own fields are added to these.
COMMON_FIELDS = {
    "_id": _object_id, "externalId": _key, "sourceId": _key, "name": _text,
    "custom": _object, "companyId": _key, "cId": _key, "description": _text,
}


@dataclass(frozen=True)
class Model:
    """One Planhat object type, as the engine needs it."""

    name: str  # singular, for messages: "license"
    path: str  # URL segment and state key: "licenses"
    title: str  # for the OpenAPI document: "License"
    required: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)
    company_field: str | None = "companyId"  # the field naming the owning company
    company_required: bool = True
    default_limit: int = 100
    max_limit: int = 2_000
    bulk: bool = True
    on_company_delete: str = "cascade"  # cascade | refuse | keep
    filters: tuple[str, ...] = ()  # beyond _id/id, externalId, sourceId and the company field
    defaults: dict = field(default_factory=dict)
    prepare: Callable | None = None  # hook(tenant, row, old) -> row; may raise FieldError
    example: dict = field(default_factory=dict)  # a valid new row (tests, docs, OpenAPI)
    common_fields: bool = True  # COMMON_FIELDS are checked too (not for companies, end users)
    shared: dict = field(default_factory=dict)  # field -> record -> the values it is found by
    holds: bool = False  # keeps held records beside its own (end users: pending contacts)
    # Links: field -> the model it names (``companies``, ``endusers``), an id or a list of ids.
    # A write resolves each key (``_id``, ``extid-…``, ``srcid-…``) to the record's ``_id`` (one
    # that names nothing is a 400 naming the field); deleting that record drops its id from the
    # link (a single link becomes null, a list loses the id) and keeps the linking record.
    links: dict = field(default_factory=dict)
    # Named hooks for a model's own rules (companies, end users: the matching rule); None means
    # the engine's rule. See engine.py for where each is called.
    upsert: Callable | None = None  # hook(tenant, row, source) -> Outcome: one bulk row
    create: Callable | None = None  # hook(tenant, row) -> Outcome, after the _id and key checks
    update: Callable | None = None  # hook(tenant, old, row) -> Outcome
    on_delete: Callable | None = None  # hook(tenant, record) -> extra answer fields; may refuse
    select: Callable | None = None  # hook(tenant, filters) -> records; may raise FieldError
    query: tuple[str, ...] | None = None  # the list's filters exactly (else `list_filters`)
    single_filters: tuple[str, ...] = ()  # filters given once: their value, not a set
    trace: str | None = None  # the decision trace's kind: every write records its decision
    report_single: bool = True  # a refused single write also goes to the report
    lean: tuple[str, ...] = ()  # GET /lean<path>: these fields of every record
    id_refusal: str = "_id: is set by the server; send externalId or sourceId as your key"
    unique_keys: tuple[str, ...] = ("externalId", "sourceId")  # checked in this order

    @property
    def company_owned(self) -> bool:
        """Every record belongs to a company (which must exist)."""
        return bool(self.company_field and self.company_required)

    @cached_property
    def checks(self) -> dict:
        """The field checks of a row (common fields and the model's): built once per model,
        read for every row."""
        return {**COMMON_FIELDS, **self.fields} if self.common_fields else dict(self.fields)

    @property
    def list_filters(self) -> tuple[str, ...]:
        if self.query is not None:
            return self.query
        # companyId also filters a model whose company field has another name (NPS's cId):
        # clients filter every model by companyId
        company = tuple(dict.fromkeys((self.company_field, "companyId"))) \
            if self.company_field else ()
        return ("_id", "id", "externalId", "sourceId", *company, *self.filters)


# ----- hooks: the special rules --------------------------------------------------------------
def _conversation(tenant, row: dict, old: dict | None) -> dict:
    """Unknown types become ``note``, as Planhat files them."""
    if "type" in row and row["type"] not in CONVERSATION_TYPES:
        row = {**row, "type": "note", "requestedType": row["type"]}
    elif old is None and "type" not in row:
        row = {**row, "type": "note"}
    return row


def _nps(tenant, row: dict, old: dict | None) -> dict:
    """``euId`` is the end user found by the response's email (when exactly one has it), and
    ``cId`` follows that end user's company unless the row names one."""
    if isinstance(row.get("score"), float):  # 7.0 is stored as 7
        row = {**row, "score": int(row["score"])}
    email = row.get("email")
    if email is None or (old is not None and old.get("email") == email and "euId" in old):
        return row
    people = [p for p in tenant.people_by_email(email) if p["_id"] in tenant.endusers]
    row = dict(row)
    if len(people) == 1:
        row["euId"] = people[0]["_id"]
        if "cId" not in row and people[0].get("companyId") and (old is None or "cId" not in old):
            row["cId"] = people[0]["companyId"]
    return row


def _invoice(tenant, row: dict, old: dict | None) -> dict:
    """Invoice dates are whole days since 1970 (19800.0 is stored as 19800)."""
    whole = {k: int(row[k]) for k in INVOICE_DATES if isinstance(row.get(k), float)}
    return {**row, **whole} if whole else row


INVOICE_DATES = ("date", "dueDate", "paidDate")

_MONEY = {"mrr": _number, "arr": _number, "value": _number, "amount": _number}

MODELS: tuple[Model, ...] = (
    Model("license", "licenses", "License", ("companyId", "_currency", "fromDate"),
          {"_currency": _key, "fromDate": _date_text, "toDate": _date_text,
           "fixedPeriod": _bool, "product": _text, "renewalStatus": _text, **_MONEY},
          max_limit=2_000, filters=("product",),
          example={"_currency": "USD", "fromDate": "2024-01-01", "mrr": 100, "product": "Pro"}),
    Model("conversation", "conversations", "Conversation", ("companyId",),
          {"type": _text, "subject": _text, "date": _date_text, "endusers": _list(_key),
           "users": _list(_key), "tags": _list(_text), "activityTags": _list(_text),
           "starred": _bool, "pinned": _bool, "archived": _bool},
          default_limit=30, filters=("type",), prepare=_conversation,
          links={"endusers": "endusers"},  # end-user ids, per Planhat's docs; `users` as sent
          example={"type": "email", "subject": "Renewal", "date": "2024-01-02"}),
    Model("NPS response", "nps", "Nps", ("email", "score"),
          {"email": _email, "score": _int_between(0, 10), "euId": _key, "campaignId": _key,
           "comment": _text, "dateSent": _date_text, "dateAnswered": _date_text},
          company_field="cId", company_required=False, max_limit=10_000,
          filters=("email", "euId", "campaignId"), prepare=_nps, links={"euId": "endusers"},
          example={"email": "ada@acme.com", "score": 9, "comment": "Great"}),
    Model("task", "tasks", "Task", ("companyId", "mainType"),
          {"mainType": _one_of("task", "event"), "action": _text, "startTime": _date_text,
           "endTime": _date_text, "dateDone": _date_text, "status": _text, "ownerId": _key},
          default_limit=500, max_limit=10_000, filters=("status", "ownerId", "mainType"),
          example={"mainType": "task", "action": "Call back", "status": "open"}),
    Model("churn entry", "churn", "Churn", ("companyId",),
          {"date": _date_text, "reasons": _list(_text), "value": _number},
          max_limit=1_000, example={"date": "2024-03-01", "reasons": ["price"], "value": 50}),
    Model("issue", "issues", "Issue", ("title",),  # "required to create an issue" (docs)
          {"title": _text, "status": _text, "companyIds": _list(_key),
           "enduserIds": _list(_key), "endUserIds": _list(_key)},
          company_field=None, filters=("status",),
          links={"companyIds": "companies", "enduserIds": "endusers", "endUserIds": "endusers"},
          example={"title": "Export fails", "status": "open"}),
    Model("opportunity", "opportunities", "Opportunity", ("companyId",),
          {"title": _text, "status": _text, "closeDate": _date_text, **_MONEY},
          filters=("status",), example={"title": "Upsell", "status": "open", "mrr": 200}),
    Model("project", "projects", "Project", ("companyId", "name"),
          {"startDate": _date_text, "endDate": _date_text, "status": _text},
          example={"name": "Onboarding", "status": "active"}),
    Model("asset", "assets", "Asset", ("companyId", "name"), {},
          example={"name": "Plant 7"}),
    Model("invoice", "invoices", "Invoice", ("companyId",),
          {**{k: _days for k in INVOICE_DATES}, "status": _text, "_currency": _key,
           "invoiceNo": _text, **_MONEY},
          on_company_delete="refuse", filters=("status",), prepare=_invoice,
          example={"invoiceNo": "INV-1", "date": 19800, "amount": 1200, "status": "paid"}),
    Model("sale", "sales", "Sale", ("companyId",),
          {"date": _date_text, "product": _text, **_MONEY},
          example={"date": "2024-02-01", "value": 500}),
    Model("objective", "objectives", "Objective", ("companyId",),
          {"health": _number, "status": _text}, example={"name": "Adoption", "health": 3}),
    Model("campaign", "campaigns", "Campaign", ("companyId",),
          {"status": _text, "startDate": _date_text, "endDate": _date_text},
          example={"name": "Q3 webinar", "status": "planned"}),
    Model("workspace", "workspaces", "Workspace", ("companyId",), {"title": _text},
          example={"title": "EMEA"}),
    Model("ticket", "tickets", "Ticket", ("companyId",),
          {"title": _text, "status": _text, "email": _email, "tags": _list(_text)},
          filters=("status",), example={"title": "Login broken", "status": "open"}),
    Model("custom field", "customfields", "CustomField", ("name", "type", "parent"),
          {"type": _key, "parent": _key, "values": _list(_text)},
          company_field=None, bulk=False, filters=("parent", "name"),
          example={"name": "Tier", "type": "list", "parent": "company"}),
    Model("user", "users", "User", (),
          {"email": _email, "firstName": _text, "lastName": _text, "nickName": _text,
           "isHidden": _bool, "removed": _bool, "roles": _list(_text)},
          company_field=None, default_limit=10_000, max_limit=10_000, filters=("email",),
          example={"email": "csm@vendor.com", "firstName": "Cy", "lastName": "Sm"}),
)


# ----- companies and end users: rows of the same table, with their own rules as hooks --------
def _domains(record: dict) -> list[str]:
    return [d.lower() for d in record.get("domains") or ()]


def _emails(record: dict) -> list[str]:
    email = record.get("email")
    return [norm_email(email)] if email else []


def _delete_company(tenant, record: dict) -> dict:
    """The company cascade: refused while it has records of a ``refuse`` model (invoices),
    else the company goes with its end users and every record it owns."""
    refusals = tenant.delete_refusals(record["_id"])
    if refusals:
        raise Rejected("company_has_records", f"id: the company still has "
                       f"{', '.join(refusals)}; delete them first", "id")
    return {"deletedEndusers": len(tenant.delete_company(record["_id"]))}


ARCHIVED = ("true", "false", "1", "0")


def _select_endusers(tenant, filters: dict) -> list[dict]:
    """End users by ``externalId``, ``email`` (trimmed, any case), ``companyId`` (or ``c``,
    Planhat's older spelling; any company key) and ``archived`` (archived ones are left out
    unless it is true). Every filter given must hold (AND); within one, any value (OR)."""
    ext = filters.get("externalId")
    emails = filters.get("email")
    companies = None if "companyId" not in filters and "c" not in filters else \
        filters.get("companyId", set()) | filters.get("c", set())
    archived = filters.get("archived")
    if archived is not None and archived not in ARCHIVED:
        raise FieldError("archived", f"{archived!r} is not true or false", "invalid_query")
    company_ids = None if companies is None else {
        c["_id"] for key in companies for c in [find_company(tenant, key)] if c}
    wanted_emails = None if emails is None else {norm_email(e) for e in emails}
    # Start from the narrowest index, then every filter is checked on every candidate.
    if ext is not None:
        found = [tenant.person_by_external_id(v) for v in ext]
    elif wanted_emails is not None:
        found = [p for v in emails for p in tenant.people_by_email(v)]
    elif company_ids is not None:
        found = [p for cid in company_ids for p in tenant.members(cid)]
    else:
        found = list(tenant.endusers.values())
    seen: set[str] = set()
    kept = []
    for person in found:
        if person is None or person["_id"] not in tenant.endusers or person["_id"] in seen:
            continue
        seen.add(person["_id"])
        if ext is not None and person.get("externalId") not in ext:
            continue
        if wanted_emails is not None and norm_email(person.get("email") or "") \
                not in wanted_emails:
            continue
        if company_ids is not None and person.get("companyId") not in company_ids:
            continue
        if archived not in ("true", "1") and person.get("archived"):
            continue
        kept.append(person)
    return kept


COMPANY = Model("company", "companies", "Company", ("name",), COMPANY_FIELDS,
                company_field=None, max_limit=5_000, common_fields=False,
                defaults={"domains": [], "custom": {}}, shared={"domains": _domains},
                on_delete=_delete_company,
                query=("externalId", "sourceId", "_id", "id"), trace="company",
                report_single=False, lean=("_id", "externalId", "sourceId", "name"),
                id_refusal="_id: is set by the server on create")
ENDUSER = Model("end user", "endusers", "EndUser", (), ENDUSER_FIELDS,
                common_fields=False, shared={"email": _emails}, holds=True,
                upsert=upsert_enduser, create=create_enduser, update=update_enduser,
                select=_select_endusers, query=("externalId", "email", "companyId", "c",
                                                "archived"),
                single_filters=("archived",), trace="enduser", report_single=False,
                id_refusal="_id: is set by the server on create",
                unique_keys=("sourceId", "externalId"))

TABLE: tuple[Model, ...] = (COMPANY, ENDUSER, *MODELS)  # every object the fake stores
BY_PATH = {m.path: m for m in TABLE}
