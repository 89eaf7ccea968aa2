"""Planhat's tracking host: user activities and dimension data, keyed by the tenant token.

Like Planhat, these are data sinks: once the body parses they answer 200, and what could not
be applied (unknown tenant, unknown user, a bad row) goes to the report.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..errors import ApiError, json_response, read_json
from ..matching import BULK_LIMIT, apply_alone, record_activity
from ..records import DIMENSION_FIELDS, FieldError, check_row
from ..store import new_id, now_iso

bp = Blueprint("analytics", __name__)


def _tenant(token: str, payload):
    registry = current_app.extensions["mock_planhat"].registry
    tenant = registry.by_tenant_token(token)
    if tenant is None:  # the body's size bounds the report entry without serialising it
        registry.report_unknown_tenant(token, payload, request.path, request.get_data())
    return tenant


def _activities(token: str, rows: list):
    tenant = _tenant(token, rows)
    if tenant is None:
        message = f"tenantToken: no tenant has token {token!r}"
        return jsonify({"processed": 0, "notApplied": [
            {"index": i, "reason": "unknown_tenant", "message": message}
            for i in range(len(rows))]})
    source = request.path  # once, not a context-local lookup per row
    with tenant.lock:
        outcomes = [apply_alone(tenant, i, row, record_activity, source)
                    for i, row in enumerate(rows)]
    processed = sum(o.status == "created" for o in outcomes)
    return json_response({"processed": processed,
                          "notApplied": [{"index": i, "reason": o.reason, "message": o.message}
                                         for i, o in enumerate(outcomes)
                                         if o.status != "created"]})


@bp.post("/analytics/<token>")
def activity(token):
    return _activities(token, [read_json(dict)])


@bp.post("/analytics/bulk/<token>")
def activities(token):
    rows = read_json(list)
    if len(rows) > BULK_LIMIT * 10:
        raise ApiError(400, "too_many_items", f"body: {len(rows)} items; at most "
                       f"{BULK_LIMIT * 10} per bulk", "body")
    return _activities(token, rows)


@bp.post("/dimensiondata/<token>")
def dimensiondata(token):
    body = read_json((list, dict))
    rows = body if isinstance(body, list) else [body]
    if len(rows) > BULK_LIMIT:
        raise ApiError(400, "too_many_items", f"body: {len(rows)} items; at most "
                       f"{BULK_LIMIT} per request", "body")
    tenant = _tenant(token, rows)
    if tenant is None:
        return jsonify({"processed": 0, "errors": []})
    errors, processed = [], 0
    with tenant.lock:
        for index, row in enumerate(rows):
            try:
                clean = check_row(row, DIMENSION_FIELDS, f"[{index}].")
                missing = [k for k in ("dimensionId", "value") if k not in clean]
                if missing:
                    raise FieldError(f"[{index}].{missing[0]}", "is required")
            except FieldError as exc:
                errors.append({"index": index, "reason": "invalid_metric", "field": exc.field,
                               "message": str(exc)})
                tenant.add_report("invalid_metric", str(exc), row, request.path)
                continue
            stamp = now_iso()
            record = {"_id": None, "date": stamp, **clean, "createDate": stamp}
            record["_id"] = new_id()  # the server's, whatever the row held
            if "_id" in clean:
                tenant.add_report("ignored_field", f"[{index}]._id: set by the server; the "
                                  "row's _id was not kept", row, request.path)
            tenant.dimensiondata.append(record)
            processed += 1
    return jsonify({"processed": processed, "errors": errors})
