"""Planhat's tracking host: user activities and dimension data, keyed by the tenant token.

Like Planhat, these are data sinks: once the body is received they answer 200, and what
could not be applied (a body that is not JSON, unknown tenant, unknown user, a bad row) goes
to the report. The ``Content-Type`` is not checked (browsers' ``sendBeacon`` posts JSON as
``text/plain``); a body that is not JSON, or not the shape the path takes, is reported as
``invalid_json`` / ``invalid_body`` with its first 64 KB as text.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..errors import ApiError, json_response, loads
from ..matching import BULK_LIMIT, record_activity
from ..records import FieldError, check_row
from ..store import new_id, now_iso

bp = Blueprint("analytics", __name__)
DIMENSION_FIELDS = ("dimensionId", "value", "externalId", "model", "date")
RAW_KEPT = 64 * 1024  # bytes of a bad body kept in its report entry
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
    return {"body": raw[:RAW_KEPT].decode("utf-8", "replace"),
            "truncated": len(raw) > RAW_KEPT, "bytes": len(raw),
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
    if tenant is None:
        registry.report_unknown_tenant(token, payload, request.path)
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
        outcomes = [record_activity(tenant, row, source) for row in rows]
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
    tenant = _tenant(token, rows)
    if tenant is None:
        return jsonify({"processed": 0, "errors": []})
    errors, processed = [], 0
    with tenant.lock:
        for index, row in enumerate(rows):
            try:
                clean = check_row(row, {}, f"[{index}].")
                missing = [k for k in ("dimensionId", "value") if k not in clean]
                if missing:
                    raise FieldError(f"[{index}].{missing[0]}", "is required")
                if not (isinstance(clean["value"], (int, float))
                        and not isinstance(clean["value"], bool)):
                    raise FieldError(f"[{index}].value", "must be a number")
            except FieldError as exc:
                errors.append({"index": index, "field": exc.field, "message": str(exc)})
                tenant.add_report("invalid_metric", str(exc), row, request.path)
                continue
            tenant.dimensiondata.append({"_id": new_id(), "date": now_iso(), **clean,
                                         "createDate": now_iso()})
            processed += 1
    return jsonify({"processed": processed, "errors": errors})
