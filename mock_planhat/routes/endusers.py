"""End users (Planhat's contacts): /endusers."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..auth import api_tenant
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
from .common import bulk, checked_body, filter_values, found, outcome_response, page

bp = Blueprint("endusers", __name__)
DEFAULT_LIMIT, MAX_LIMIT = 100, 2_000


def _person(tenant, key: str) -> dict:
    return found(find_person(tenant, key), "end user", key)


@bp.get("/endusers")
def list_endusers():
    tenant = api_tenant()
    with tenant.lock:
        records = _filtered(tenant)
    return page(records, DEFAULT_LIMIT, MAX_LIMIT)


def _filtered(tenant) -> list[dict]:
    ext = filter_values("externalId")
    emails = filter_values("email")
    companies = filter_values("companyId") or filter_values("c")
    if ext is not None:
        found = [tenant.person_by_external_id(v) for v in ext]
    elif emails is not None:
        found = [p for v in emails for p in tenant.people_by_email(v)]
    elif companies is not None:
        found = [p for key in companies
                 for company in [find_company(tenant, key)] if company
                 for p in tenant.members(company["_id"])]
    else:
        found = list(tenant.endusers.values())
    found = [p for p in found if p is not None and p["_id"] in tenant.endusers]
    if emails is not None:
        wanted = {norm_email(e) for e in emails}
        found = [p for p in found if norm_email(p.get("email") or "") in wanted]
    if companies is not None and ext is not None:
        ids = {c["_id"] for key in companies for c in [find_company(tenant, key)] if c}
        found = [p for p in found if p.get("companyId") in ids]
    if request.args.get("archived") not in ("true", "1"):
        found = [p for p in found if not p.get("archived")]
    return found


@bp.post("/endusers")
def create():
    tenant = api_tenant()
    row = checked_body(ENDUSER_FIELDS)
    with tenant.lock:
        def write():
            for key in ("_id", "sourceId", "externalId"):
                existing = match_person(tenant, {key: row[key]}) if row.get(key) else None
                if existing is not None:
                    raise Rejected("duplicate_" + ("external_id" if key == "externalId" else
                                                   "source_id" if key == "sourceId" else "id"),
                                   f"{key}: {row[key]!r} belongs to end user {existing['_id']}",
                                   key)
            if "_id" in row:
                raise Rejected("invalid_field", "_id: is set by the server on create", "_id")
            return create_enduser(tenant, row)
        return outcome_response(attempt(tenant, write, row, request.path))


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
        outcome = attempt(tenant, lambda: update_enduser(tenant, record, row), row, request.path)
        return outcome_response(outcome)


@bp.delete("/endusers/<path:key>")
def delete(key):
    tenant = api_tenant()
    with tenant.lock:
        record = _person(tenant, key)
        tenant.delete_person(record["_id"])
    return jsonify({"n": 1, "ok": 1, "deletedCount": 1})
