"""One set of rules for every model of `models.TABLE`: pure functions over a `Tenant`.

* A row's known fields are type-checked (`records.check_row`); unknown fields are kept as sent,
  under the same depth and size bounds.
* ``_id`` is the server's: a create that sends one is refused, and a bulk row whose ``_id``
  names no record is a row error (``unknown_id``), never a record with a chosen id.
* A bulk row is matched by ``_id``, then ``sourceId``, then ``externalId`` (Planhat's keyables);
  an unmatched row is created when it has the model's required fields.
* ``externalId`` and ``sourceId`` are unique per model in a tenant.
* A company-owned model's company field (``companyId``, or ``cId`` for NPS) takes an ``_id``,
  ``extid-…`` or ``srcid-…`` key; it is stored as the company's ``_id`` with ``companyName``
  beside it (kept in step with renames by the store). A key that names no company is refused.
* A model's hook (``Model.prepare``) applies its special rule after the checks.
* A model's links (``Model.links``: an Issue's ``companyIds``/``enduserIds``, an NPS response's
  ``euId``) take keys like the company field and are stored as ``_id``s; the store drops a
  deleted record's id from them.
* Companies follow these rules too; their own is a hook: ``on_delete`` (the cascade). The
  store keeps ``companyName`` in step on what a renamed company owns (`Tenant.put_record`).
* End users bring their own rules as hooks (`models.ENDUSER`: the matching rule of
  `matching`): ``upsert`` for a bulk row, ``create`` after the ``_id`` and key checks,
  ``update``, ``select`` (their filters).

Callers hold ``tenant.lock``; refused rows are written to the tenant's report by `attempt`.
"""

from __future__ import annotations

from .matching import (
    BulkResult,
    Outcome,
    Rejected,
    _by_key,
    _by_keys,
    _same_id,
    attempt,
    find_company,
)
from .matching import bulk_upsert as _bulk_by_rule
from .models import Model
from .records import FieldError, check_row
from .store import Tenant, new_id


def collection(tenant: Tenant, model: Model):
    return tenant.collections[model.path]


def find(tenant: Tenant, model: Model, key) -> dict | None:
    """A record by ``_id``, ``extid-…`` or ``srcid-…``."""
    c = collection(tenant, model)
    return _by_key(key, c.get, c.by_external_id, c.by_source_id)


def _checked(model: Model, row) -> dict:
    try:
        return check_row(row, model.checks)
    except FieldError as exc:
        raise Rejected(exc.reason, str(exc), exc.field) from None


def _prepared(tenant: Tenant, model: Model, row: dict, old: dict | None) -> dict:
    if model.prepare is not None:
        try:
            row = model.prepare(tenant, row, old)
        except FieldError as exc:
            raise Rejected(exc.reason, str(exc), exc.field) from None
    owner = model.company_field
    if owner and owner in row:
        company = find_company(tenant, row[owner])
        if company is None:
            raise Rejected("unknown_company", f"{owner}: no company matches {row[owner]!r}",
                           owner)
        row = {**row, owner: company["_id"], "companyName": company.get("name")}
    for name, target in model.links.items():
        if name in row:
            row = {**row, name: _resolved_link(tenant, name, target, row[name])}
    return row


LINK_REASONS = {"companies": "unknown_company", "endusers": "unknown_user"}


def _resolved_link(tenant: Tenant, name: str, target: str, value):
    """A link's keys as ``_id``s (a list keeps its order, once each); a key naming no record of
    ``target`` (a pending contact is not an end user yet) is refused (a 404, as for
    ``companyId``), naming the field and the item."""
    c = tenant.collections[target]

    def one(key, where: str) -> str:
        found = _by_key(key, c.get, c.by_external_id, c.by_source_id)
        if found is None or found["_id"] not in c.records:
            raise Rejected(LINK_REASONS[target], f"{where}: no {c.model.name} matches {key!r}",
                           where)
        return found["_id"]
    if isinstance(value, list):
        return list(dict.fromkeys(one(key, f"{name}[{i}]") for i, key in enumerate(value)))
    return one(value, name)


def _unique(tenant: Tenant, model: Model, row: dict, rid: str | None) -> None:
    c = collection(tenant, model)
    for key in model.unique_keys:
        lookup, reason = (c.by_external_id, "duplicate_external_id") if key == "externalId" \
            else (c.by_source_id, "duplicate_source_id")
        other = lookup(row.get(key))
        if other is not None and other["_id"] != rid:
            raise Rejected(reason, f"{key}: {row[key]!r} belongs to {model.name} "
                           f"{other['_id']}", key)


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def create(tenant: Tenant, model: Model, row: dict) -> Outcome:
    """Create a record from a checked row."""
    if "_id" in row:
        raise Rejected("invalid_field", model.id_refusal, "_id")
    if model.create is not None:  # the model's own rule (its company, its required fields)
        _unique(tenant, model, row, None)
        return model.create(tenant, row)
    for name in model.required:
        if _missing(row.get(name)):
            raise Rejected("missing_field", f"{name}: a new {model.name} needs {name}", name)
    row = _prepared(tenant, model, row, None)
    _unique(tenant, model, row, None)
    stamp = tenant.now_iso()
    record = {"_id": new_id(), **model.defaults, **row, "createDate": stamp, "updatedAt": stamp}
    return Outcome("created", tenant.put_record(model.path, record))


def update(tenant: Tenant, model: Model, old: dict, row: dict) -> Outcome:
    """Update a record with a checked row (fields merged; ``custom`` merged key by key)."""
    if model.update is not None:
        return model.update(tenant, old, row)
    _same_id(old, row, model.name)
    for name in model.required:
        if name in row and _missing(row[name]):
            raise Rejected("invalid_field", f"{name}: must not be empty", name)
    row = _prepared(tenant, model, row, old)
    _unique(tenant, model, row, old["_id"])
    new = {**old, **{k: v for k, v in row.items() if k != "_id"}}
    if isinstance(old.get("custom"), dict) and isinstance(row.get("custom"), dict):
        new["custom"] = {**old["custom"], **row["custom"]}
    if new == old:
        return Outcome("nonupdate", old, old=old)
    new["updatedAt"] = tenant.now_iso()
    return Outcome("updated", tenant.put_record(model.path, new, old), old=old)


def match(tenant: Tenant, model: Model, row: dict) -> tuple[dict | None, str | None]:
    """The record a bulk row is about and the key that found it: by ``_id`` (which must
    exist), then ``sourceId``, then ``externalId`` — the same lookup as end users'."""
    c = collection(tenant, model)
    return _by_keys(row, model.name, c.get, c.by_source_id, c.by_external_id)


def upsert(tenant: Tenant, model: Model, row, source: str | None = None) -> Outcome:
    """Apply one bulk row; the outcome says whether it matched a record (``matched``: which
    list its error goes to) and by which key."""
    found: list = [None, None]

    def write():
        clean = _checked(model, row)
        found[:] = match(tenant, model, clean)
        return create(tenant, model, clean) if found[0] is None else \
            update(tenant, model, found[0], clean)
    outcome = attempt(tenant, write, row, source)
    outcome.matched, outcome.key = found[0] is not None, found[1]
    return outcome


def bulk_upsert(tenant: Tenant, model: Model, rows: list, source: str | None = None) -> BulkResult:
    """Planhat's bulk upsert, row by row (`matching.bulk_upsert`: each row alone, every row's
    decision kept for the trace). A refused row goes to ``updatedErrors`` when it matched a
    record, else to ``createdErrors``. End users bring their own ``upsert`` (the matching
    rule: email, pending contacts; their row errors are placed by reason)."""
    if model.upsert is not None:
        return _bulk_by_rule(tenant, rows, model.upsert, source)
    return _bulk_by_rule(tenant, rows, lambda t, row, src: upsert(t, model, row, src), source)


def delete(tenant: Tenant, model: Model, record: dict) -> dict:
    """Delete a record; returns the answer's extra fields (a company: ``deletedEndusers``).
    A model's ``on_delete`` may refuse (`Rejected`)."""
    if model.on_delete is not None:
        return model.on_delete(tenant, record)
    tenant.delete_record(model.path, record["_id"])
    return {}


def select(tenant: Tenant, model: Model, filters: dict) -> list[dict]:
    """The records every filter admits (filters AND; a filter's values OR)."""
    if model.select is not None:
        return model.select(tenant, filters)
    c = collection(tenant, model)
    records = _candidates(c, filters)
    for name, values in filters.items():
        if name in ("_id", "id"):
            wanted = set(values)
            records = [r for r in records if r["_id"] in wanted]
        elif model.company_field and name in (model.company_field, "companyId"):
            ids = {co["_id"] for v in values for co in [find_company(tenant, v)] if co}
            records = [r for r in records if r.get(model.company_field) in ids]
        else:
            wanted = set(values)
            records = [r for r in records if _as_text(r.get(name)) in wanted]
    return records


def _candidates(c, filters: dict) -> list[dict]:
    """Every record, or the one a single-valued key filter names (found by its index; the
    filters are still checked on it)."""
    for name, lookup in (("_id", c.get), ("id", c.get), ("externalId", c.by_external_id),
                         ("sourceId", c.by_source_id)):
        values = filters.get(name)
        if values is not None and len(values) == 1:
            found = lookup(next(iter(values)))
            return [found] if found is not None and found["_id"] in c.records else []
    return list(c.records.values())


def _as_text(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
