"""End users (Planhat's contacts): /endusers."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..auth import api_tenant
from ..errors import ApiError
from ..matching import (
    Rejected,
    attempt,
    create_enduser,
    find_company,
    find_person,
    match_person,
    update_enduser,
)
from ..matching import upsert_enduser as _upsert
from ..records import ENDUSER_FIELDS
from ..store import norm_email
from .common import (
    PATH_KEYS,
    bulk,
    check_query,
    checked_body,
    filter_values,
    found,
    outcome_response,
    page,
    single_arg,
    trace,
)

bp = Blueprint("endusers", __name__)
DEFAULT_LIMIT, MAX_LIMIT = 100, 2_000


def _person(tenant, key: str) -> dict:
    return found(find_person(tenant, key), "end user", key)


FILTERS = ("externalId", "email", "companyId", "c", "archived")


@bp.get("/endusers")
def list_endusers():
    tenant = api_tenant()
    check_query(FILTERS)
    with tenant.lock:
        records = _filtered(tenant)
    return page(records, DEFAULT_LIMIT, MAX_LIMIT)


def _filtered(tenant) -> list[dict]:
    """Every filter given must hold (AND); within one filter, any of its values (OR)."""
    ext = filter_values("externalId")
    emails = filter_values("email")
    companies = filter_values("companyId", "c")  # c= is Planhat's older spelling
    archived = single_arg("archived")
    if archived not in (None, "true", "false", "1", "0"):
        raise ApiError(400, "invalid_query", f"archived: {archived!r} is not true or false",
                       "archived")
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


@bp.post("/endusers")
def create():
    tenant = api_tenant()
    row = checked_body(ENDUSER_FIELDS)
    with tenant.lock:
        def write():
            if "_id" in row:
                raise Rejected("invalid_field", "_id: is set by the server on create", "_id")
            for key in ("sourceId", "externalId"):
                existing = match_person(tenant, {key: row[key]}) if row.get(key) else None
                if existing is not None:
                    raise Rejected("duplicate_" + ("external_id" if key == "externalId" else
                                                   "source_id"),
                                   f"{key}: {row[key]!r} belongs to end user {existing['_id']}",
                                   key)
            return create_enduser(tenant, row)
        outcome = attempt(tenant, write, row, report=False)
        trace(tenant, "enduser", [outcome])
        return outcome_response(outcome)


@bp.put("/endusers")
def bulk_upsert():
    tenant = api_tenant()
    return bulk(tenant, _upsert)


@bp.get("/endusers/<path:key>")
def get(key):
    tenant = api_tenant()
    with tenant.lock:
        return jsonify(_person(tenant, key))


@bp.put("/endusers/<path:key>")
def update(key):
    tenant = api_tenant()
    row = checked_body(ENDUSER_FIELDS)
    with tenant.lock:
        record = _person(tenant, key)
        outcome = attempt(tenant, lambda: update_enduser(tenant, record, row), row,
                          report=False)
        outcome.key = outcome.key or PATH_KEYS.get(key[:6], "_id")
        trace(tenant, "enduser", [outcome])
        return outcome_response(outcome)


@bp.delete("/endusers/<path:key>")
def delete(key):
    tenant = api_tenant()
    with tenant.lock:
        record = _person(tenant, key)
        tenant.delete_person(record["_id"])
    return jsonify({"n": 1, "ok": 1, "deletedCount": 1})
