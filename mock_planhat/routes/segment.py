"""Segment's endpoints on the fake: the HTTP Tracking API (``/v1/*``) and ``/dock/segment``.

Both turn Segment calls into Planhat requests with the translator (``translator/`` is the
only place that knows the mapping) and send them through a ``Destination`` whose transport is
this very app, in process (``WsgiTransport``): every call lands through the same handlers a
real client hits, so the inner requests show up in the journal and fault rules apply to them
(the Destination retries them with a short backoff). No tenant lock is held while sending.

HTTP Tracking API — ``POST /v1/identify|track|page|screen|group|alias``, ``/v1/batch`` and
``/v1/import`` (= batch):

* The write key is the tenant token of the tenant to fill: ``writeKey`` in the body (wins when
  both are given) or HTTP Basic with the key as user name and an empty password.
* ``Content-Encoding: gzip`` bodies are inflated (sizes are checked on the inflated JSON).
* Answers as Segment does: 200 ``{"success": true}``, and 400 ``{"success": false, "message",
  "code": "invalid_request"}`` only for a body that is not JSON (or not a JSON object), bad
  gzip, a call over 32 KB, a batch over 500 KB or over 2,500 calls. Everything else is 200.
* Decisions where Segment gives no answer we can copy:

  - no write key at all (neither in the body nor as Basic) → 401 with ``"code":
    "missing_write_key"`` and a message naming ``writeKey``: the caller is misconfigured and a
    200 would hide it (a ``writeKey`` that is empty or not a string is a 400, same code);
  - a write key that names no tenant → 200 (Segment does not tell senders either) and an
    ``unknown_tenant`` entry in the admin report (``GET /__admin/report``).

* A batch's top-level ``context`` and ``integrations`` merge into each call; the call's own
  keys win (``context`` is merged one level deep: per key of ``context``).
* A single-call endpoint sets the call's ``type`` from its path, as Segment does.
* A call with neither ``userId`` nor ``anonymousId`` is dropped as Segment drops it, and
  reported as ``no_user_anon_id``; it never reaches the translator.

``POST /dock/segment`` — the endpoint Segment's cloud posts to: HTTP Basic with the tenant
token as user name (missing or unknown → 401 naming ``Authorization``), the body one Segment
call. Bad bodies get the fake's own error shape. It answers 200 ``{"success": true, "outcome":
"sent"|"skipped"|"failed", "reason": ..., "message": ...}`` once the call has been processed.

The tenant's report (``source`` = the Segment path, payload = the Segment call) receives
what never reached Planhat or what Planhat answered with an error rather than a row result:
every skip the Planhat answers did not record (``Skip.reported`` False: the translator's
``invalid_call`` with the field message, ``filtered``, ``unsupported_call``,
``no_identifier``; the Destination's ``alias_conflict`` and ``unknown_user``, with a one-line
message), and ``delivery_failed`` for each Planhat request that still failed after the
retries. Rows that the inner bulk upsert did not apply (``no_company`` under ``discard``,
``ambiguous_email``, …) are reported once, by that request itself (source = the Planhat path,
payload = the row); a contact held as pending is not a report item. The inner requests are
marked exempt from rate limits: they apply a call the limit already counted (on
``/dock/segment``) or that Segment's API does not limit (``/v1``).
"""

from __future__ import annotations

import json
import zlib

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from translator import Destination, Settings, WsgiTransport
from translator.segment import CALL_TYPES

from ..app import attribute_tenant
from ..auth import token_from_header
from ..errors import ApiError, loads
from ..journal import CAUSED, JOURNAL_BODY, PARENT
from ..matching import Outcome
from ..ratelimit import EXEMPT
from ..recording import record_calls
from ..report import NO_USER_ANON_ID
from .common import trace

bp = Blueprint("segment", __name__)

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2_500
INTERNAL_BASE = "http://mock-planhat.internal"  # the in-process Planhat the translator targets
RETRY_BACKOFF_BASE = 0.005  # seconds; the inner requests never leave the process
RETRY_BACKOFF_MAX = 0.05
DELIVERY_FAILED = "delivery_failed"


class SegmentError(Exception):
    """A 400 in Segment's shape: ``{"success": false, "message": ..., "code": ...}``."""

    def __init__(self, message: str, code: str = "invalid_request", status: int = 400):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@bp.errorhandler(SegmentError)
def _segment_error(exc: SegmentError):
    response = jsonify({"success": False, "message": exc.message, "code": exc.code})
    response.status_code = exc.status
    return response


# ----- the HTTP Tracking API ---------------------------------------------------------------
@bp.post("/v1/<kind>")
def tracking_api(kind: str):
    batch = kind in ("batch", "import")
    if not batch and kind not in CALL_TYPES:
        raise ApiError(404, "not_found", f"no route for {request.method} {request.path}", "path")
    limit = MAX_BATCH_BYTES if batch else MAX_CALL_BYTES
    raw = _inflated_body(limit, _segment_400)
    if len(raw) > limit:
        raise SegmentError(_too_big("batch" if batch else "call", len(raw), limit))
    body = _parse(raw, _segment_400)
    if not isinstance(body, dict):
        raise SegmentError("body: Invalid JSON: must be a JSON object")
    calls = _batch_calls(body) if batch else [_single_call(body, kind)]
    token = _write_key(body)
    registry = current_app.extensions["mock_planhat"].registry
    tenant = registry.by_tenant_token(token)
    if tenant is None:
        registry.report_unknown_tenant(token, _without_key(body), request.path, raw)
        return jsonify({"success": True})
    fault = attribute_tenant(tenant.tenant_token)
    if fault is not None:
        return fault
    kept = []
    dropped = []
    for call in calls:
        if isinstance(call, dict) and not _has_id(call, "userId") \
                and not _has_id(call, "anonymousId"):
            dropped.append(call)
        else:
            kept.append(call)
    if dropped:
        message = "userId: the call has neither userId nor anonymousId; Segment drops it"
        with tenant.lock:
            for call in dropped:
                tenant.add_report(NO_USER_ANON_ID, message, call, request.path)
            tenant.history.counts["segment", "received", None] += len(dropped)
            trace(tenant, "segment", [_skip_outcome(call, NO_USER_ANON_ID, message)
                                      for call in dropped])
    if kept:
        _deliver(tenant, kept, many=batch)
    return jsonify({"success": True})


def _batch_calls(body: dict) -> list:
    items = body.get("batch")
    if not isinstance(items, list):
        raise SegmentError("batch: must be an array of calls")
    if len(items) > MAX_BATCH_CALLS:
        raise SegmentError(f"batch: {len(items)} calls; at most {MAX_BATCH_CALLS} per batch")
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    integrations = body.get("integrations") \
        if isinstance(body.get("integrations"), dict) else {}
    calls = []
    for index, item in enumerate(items):
        size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_CALL_BYTES:
            raise SegmentError(_too_big(f"batch[{index}]", size, MAX_CALL_BYTES))
        calls.append(_merged(item, context, integrations))
    return calls


def _merged(item, context: dict, integrations: dict):
    """The batch's ``context``/``integrations`` under the call's own (which win)."""
    if not isinstance(item, dict):
        return item  # the translator reports it as invalid_call
    call = dict(item)
    if context:
        own = call.get("context")
        call["context"] = {**context, **own} if isinstance(own, dict) else \
            (dict(context) if own is None else own)
    if integrations:
        own = call.get("integrations")
        call["integrations"] = {**integrations, **own} if isinstance(own, dict) else \
            (dict(integrations) if own is None else own)
    return call


def _single_call(body: dict, kind: str) -> dict:
    call = _without_key(body)
    call["type"] = kind
    return call


def _without_key(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "writeKey"}


def _write_key(body: dict) -> str:
    key = body.get("writeKey")
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise SegmentError("writeKey: must be a non-empty string", "missing_write_key")
        return key
    header = request.headers.get("Authorization", "").strip()
    if header[:6].lower() == "basic ":
        token = token_from_header()
        if token:
            return token
    raise SegmentError("writeKey: missing; send it in the body or as the HTTP Basic user name "
                       "(empty password)", "missing_write_key", 401)


def _has_id(call: dict, key: str) -> bool:
    value = call.get(key)
    return value is not None and value != "" and not isinstance(value, bool)


def _too_big(what: str, size: int, limit: int) -> str:
    return f"{what}: {size} bytes; Segment takes at most {limit // 1024} KB"


# ----- the endpoint Segment's cloud posts to -------------------------------------------------
@bp.post("/dock/segment")
def dock():
    if not request.headers.get("Authorization"):
        raise ApiError(401, "unauthorized", "Authorization: missing; send HTTP Basic with the "
                       "tenant token as user name and an empty password", "Authorization")
    token = token_from_header()
    registry = current_app.extensions["mock_planhat"].registry
    tenant = registry.by_tenant_token(token) if token else None
    if tenant is None:
        raise ApiError(401, "unauthorized", "Authorization: no tenant has this tenant token",
                       "Authorization")
    limit = current_app.extensions["mock_planhat"].config.max_body
    call = _parse(_inflated_body(limit, _api_error), _api_error)
    if not isinstance(call, dict):
        raise ApiError(400, "invalid_body", "body: must be one Segment call (an object)", "body")
    result = _deliver(tenant, [call], many=False)
    message = None
    if result.failed:
        outcome, reason = "failed", DELIVERY_FAILED
    elif result.skips:
        skip = result.skips[0][1]
        outcome, reason, message = "skipped", skip.reason, skip.detail or None
    else:
        outcome, reason = "sent", None
    return jsonify({"success": True, "outcome": outcome, "reason": reason, "message": message})


def _api_error(message: str, code: str = "invalid_json", status: int = 400) -> ApiError:
    """The fake's own error shape, naming the field or header the message starts with."""
    return ApiError(status, code, message, message.partition(":")[0])


def _segment_400(message: str, code: str = "invalid_request", status: int = 400):
    """Segment answers every body problem with 400 and code ``invalid_request``."""
    return SegmentError(message)


# ----- shared: body, delivery ----------------------------------------------------------------
def _inflated_body(limit: int, error) -> bytes:
    """The body, gunzipped when ``Content-Encoding: gzip``; never inflates past ``limit + 1``."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        server_limit = current_app.config["MAX_CONTENT_LENGTH"]
        raise error(f"body: over the server's limit of {server_limit} bytes", "invalid_request",
                    413) from None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise error(f"Content-Encoding: {encoding!r} is not supported; send gzip or none",
                    "invalid_request")
    if not raw:
        raise error("body: not valid gzip (empty)", "invalid_request")
    out = bytearray()
    data = raw
    try:
        while data:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                return bytes(out)  # the caller answers "too big"
            if not inflater.eof:
                raise error("body: not valid gzip (truncated)", "invalid_request")
            data = inflater.unused_data  # a further gzip member, if any
    except zlib.error as exc:
        raise error(f"body: not valid gzip ({exc})", "invalid_request") from None
    request.environ[JOURNAL_BODY] = bytes(out)  # the journal shows the JSON, not the gzip
    return request.environ[JOURNAL_BODY]


def _parse(raw: bytes, error):
    if not raw.strip():
        raise error("body: Invalid JSON: the request has no body", "invalid_json")
    try:
        return loads(raw)
    except RecursionError:
        message = "body: Invalid JSON: nested too deeply"
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"body: Invalid JSON: {exc}"
    raise error(message, "invalid_json")


class _LinkedTransport(WsgiTransport):
    """The in-process transport whose requests name the Segment call's journal entry (and
    are listed on it), so the journal links a call to the Planhat requests it caused."""

    def __init__(self, app, link: tuple[int, list]) -> None:
        super().__init__(app)
        self.link = link

    def build_environ(self, *args, **kwargs) -> dict:
        environ = super().build_environ(*args, **kwargs)
        environ[PARENT] = self.link
        environ[EXEMPT] = True  # it applies a Segment call: no rate limit counts it
        return environ


def _skip_outcome(call, reason: str, message: str, status: str = "discarded") -> Outcome:
    outcome = Outcome(status, None, reason, message)
    outcome.row = call
    return outcome


def _deliver(tenant, calls: list, many: bool):
    """Send the calls to the tenant through this app; report skips and failed requests."""
    settings = Settings.from_dict({"tenant_token": tenant.tenant_token,
                                   "api_token": tenant.api_token, "delivery": "rest",
                                   "api_url": INTERNAL_BASE, "analytics_url": INTERNAL_BASE})
    environ = request.environ
    entry_id = current_app.extensions["mock_planhat"].journal.reserve(environ)
    caused = environ.setdefault(CAUSED, [])
    transport = _LinkedTransport(current_app._get_current_object(), (entry_id, caused))
    destination = Destination(settings, transport,
                              backoff_base=RETRY_BACKOFF_BASE, backoff_max=RETRY_BACKOFF_MAX)
    record_calls(tenant, calls, current_app.extensions["mock_planhat"].config.recording_bytes)
    result = destination.send_many(calls) if many else destination.send(calls[0])
    with tenant.lock:
        tenant.history.counts["segment", "received", None] += len(calls)
        # row-level refusals (no_company, ambiguous_email, ...) are the inner requests'
        # decisions and report entries already; the call's own are what the translator or
        # the Destination decided
        decisions = []
        for call, skip in result.skips:
            if not skip.reported:
                message = skip.detail or skip.reason
                decisions.append(_skip_outcome(call, skip.reason, message))
                tenant.add_report(skip.reason, message, call, request.path)
        for failure in result.failed:
            sent, calls_hit = failure["request"], failure["calls"]
            status = failure["status"]
            decisions += [_skip_outcome(call, DELIVERY_FAILED, f"{sent.method} {sent.path} "
                                        f"answered {status or failure['error']}", "failed")
                          for call in calls_hit]
            answer = (f"answered {status}: {failure['body'][:300]}" if status is not None
                      else f"failed: {failure['error']}")
            tenant.add_report(DELIVERY_FAILED, f"{sent.method} {sent.path} {answer}",
                              calls_hit[0] if len(calls_hit) == 1 else calls_hit, request.path)
        if decisions:
            trace(tenant, "segment", decisions)
    return result
