"""Planhat's tracking host: user activities and dimension data, keyed by the tenant token.

Like Planhat, these are data sinks: once the body is received they answer 200, and what
could not be applied (a body that is not JSON, unknown tenant, unknown user, a bad row) goes
to the report. The ``Content-Type`` is not checked (browsers' ``sendBeacon`` posts JSON as
``text/plain``); a body that is not JSON, or not the shape the path takes, is reported as
``invalid_json`` / ``invalid_body`` with its head as text (``--payload-bytes`` less 1 KB).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..errors import ApiError, json_response, loads
from ..matching import BULK_LIMIT, apply_alone, record_activity
from ..records import DIMENSION_FIELDS, FieldError, check_row
from ..store import new_id
from .common import trace

bp = Blueprint("analytics", __name__)
ENVELOPE = 1024  # room for the entry's other fields within --payload-bytes
_SHAPES = {dict: "an object", list: "an array"}


class _BadBody(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def _sink_body(expect):
    """The body as JSON of an expected type (the Content-Type is not checked); `_BadBody`
    when it is not."""
    raw = request.get_data(cache=True)
    try:
        if not raw.strip():
            raise ValueError("the request has no body")
        data = loads(raw)
    except RecursionError:
        raise _BadBody("invalid_json", "body: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadBody("invalid_json", f"body: not valid JSON ({exc})") from None
    if not isinstance(data, expect):
        wanted = " or ".join(_SHAPES[t] for t in (expect if isinstance(expect, tuple)
                                                  else (expect,)))
        raise _BadBody("invalid_body", f"body: must be {wanted}")
    return data


def _raw_payload() -> dict:
    """A bad body as a report payload: its text, bounded."""
    raw = request.get_data(cache=True)
    kept = max(0, current_app.extensions["mock_planhat"].config.payload_bytes - ENVELOPE)
    return {"body": raw[:kept].decode("utf-8", "replace"),
            "truncated": len(raw) > kept, "bytes": len(raw),
            "contentType": request.content_type}


def _report_bad_body(token: str, exc: _BadBody) -> None:
    payload = _raw_payload()
    tenant = _tenant(token, payload)
    if tenant is not None:
        with tenant.lock:
            tenant.add_report(exc.reason, exc.message, payload, request.path)


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
        trace(tenant, "activity", outcomes)
    processed = sum(o.status == "created" for o in outcomes)
    return json_response({"processed": processed,
                          "notApplied": [{"index": i, "reason": o.reason, "message": o.message}
                                         for i, o in enumerate(outcomes)
                                         if o.status != "created"]})


def _not_applied(token: str, exc: _BadBody):
    _report_bad_body(token, exc)
    return jsonify({"processed": 0, "notApplied": [
        {"index": 0, "reason": exc.reason, "message": exc.message}]})


@bp.post("/analytics/<token>")
def activity(token):
    try:
        row = _sink_body(dict)
    except _BadBody as exc:
        return _not_applied(token, exc)
    return _activities(token, [row])


@bp.post("/analytics/bulk/<token>")
def activities(token):
    try:
        rows = _sink_body(list)
    except _BadBody as exc:
        return _not_applied(token, exc)
    if len(rows) > BULK_LIMIT * 10:
        raise ApiError(400, "too_many_items", f"body: {len(rows)} items; at most "
                       f"{BULK_LIMIT * 10} per bulk", "body")
    return _activities(token, rows)


@bp.post("/dimensiondata/<token>")
def dimensiondata(token):
    try:
        body = _sink_body((list, dict))
    except _BadBody as exc:
        _report_bad_body(token, exc)
        return jsonify({"processed": 0, "errors": [
            {"index": 0, "field": "body", "message": exc.message}]})
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
            stamp = tenant.now_iso()
            record = {"_id": None, "date": stamp, **clean, "createDate": stamp}
            record["_id"] = new_id()  # the server's, whatever the row held
            if "_id" in clean:
                tenant.add_report("ignored_field", f"[{index}]._id: set by the server; the "
                                  "row's _id was not kept", row, request.path)
            tenant.dimensiondata.append(record)
            processed += 1
    return jsonify({"processed": processed, "errors": errors})
