"""Companies: /companies and /leancompanies."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..auth import api_tenant
from ..errors import ApiError
from ..matching import Rejected, attempt, create_company, find_company, update_company
from ..matching import upsert_company as _upsert
from ..records import COMPANY_FIELDS
from .common import (
    PATH_KEYS,
    bulk,
    check_query,
    checked_body,
    filter_values,
    found,
    outcome_response,
    page,
    trace,
)

bp = Blueprint("companies", __name__)
DEFAULT_LIMIT, MAX_LIMIT = 100, 5_000
LEAN_FIELDS = ("_id", "externalId", "sourceId", "name")


def _company(tenant, key: str) -> dict:
    return found(find_company(tenant, key), "company", key)


FILTERS = ("externalId", "sourceId", "_id", "id")


def _filtered(tenant) -> list[dict]:
    """Every filter given must hold (AND); within one filter, any of its values (OR)."""
    check_query(FILTERS)
    ext = filter_values("externalId")
    src = filter_values("sourceId")
    ids = filter_values("_id", "id")
    if ext is not None:
        found = [tenant.company_by_external_id(v) for v in ext]
    elif src is not None:
        found = [tenant.company_by_source_id(v) for v in src]
    elif ids is not None:
        found = [tenant.company(v) for v in ids]
    else:
        found = list(tenant.companies.values())
    seen: set[str] = set()
    kept = []
    for company in found:
        if company is None or company["_id"] in seen:
            continue
        seen.add(company["_id"])
        if (ext is None or company.get("externalId") in ext) \
                and (src is None or company.get("sourceId") in src) \
                and (ids is None or company["_id"] in ids):
            kept.append(company)
    return kept


@bp.get("/companies")
def list_companies():
    tenant = api_tenant()
    with tenant.lock:
        records = _filtered(tenant)
    return page(records, DEFAULT_LIMIT, MAX_LIMIT)


@bp.get("/leancompanies")
def lean():
    tenant = api_tenant()
    with tenant.lock:
        records = [{k: c.get(k) for k in LEAN_FIELDS if k in c} for c in _filtered(tenant)]
    return page(records, MAX_LIMIT, MAX_LIMIT)


@bp.post("/companies")
def create():
    tenant = api_tenant()
    row = checked_body(COMPANY_FIELDS)
    with tenant.lock:
        def write():
            if "_id" in row:
                raise Rejected("invalid_field", "_id: is set by the server on create", "_id")
            for key, lookup in (("externalId", tenant.company_by_external_id),
                                ("sourceId", tenant.company_by_source_id)):
                existing = lookup(row.get(key))
                if existing is not None:
                    reason = "duplicate_external_id" if key == "externalId" else \
                        "duplicate_source_id"
                    raise Rejected(reason, f"{key}: {row[key]!r} belongs to company "
                                   f"{existing['_id']}", key)
            return create_company(tenant, row)
        outcome = attempt(tenant, write, row, report=False)
        trace(tenant, "company", [outcome])
        return outcome_response(outcome)


@bp.put("/companies")
def bulk_upsert():
    return bulk(api_tenant(), _upsert)


@bp.get("/companies/<path:key>")
def get(key):
    tenant = api_tenant()
    with tenant.lock:
        return jsonify(_company(tenant, key))


@bp.put("/companies/<path:key>")
def update(key):
    tenant = api_tenant()
    row = checked_body(COMPANY_FIELDS)
    with tenant.lock:
        record = _company(tenant, key)
        outcome = attempt(tenant, lambda: update_company(tenant, record, row), row,
                          report=False)
        outcome.key = outcome.key or PATH_KEYS.get(key[:6], "_id")
        trace(tenant, "company", [outcome])
        return outcome_response(outcome)


@bp.delete("/companies/<path:key>")
def delete(key):
    tenant = api_tenant()
    with tenant.lock:
        record = _company(tenant, key)
        refusals = tenant.delete_refusals(record["_id"])
        if refusals:
            raise ApiError(409, "company_has_records", f"id: the company still has "
                           f"{', '.join(refusals)}; delete them first", "id")
        removed = tenant.delete_company(record["_id"])
    return jsonify({"n": 1, "ok": 1, "deletedCount": 1, "deletedEndusers": len(removed)})
