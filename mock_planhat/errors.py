"""JSON errors and request-body parsing shared by every route.

Every error is ``{"error": code, "message": "...", "field": name-or-null}`` with a 4xx status;
nothing answers with HTML or a traceback.
"""

from __future__ import annotations

import json
import math
import re

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from .records import MAX_DEPTH, FieldError

# The one depth rule, applied where every body comes in (``loads``): a stored field (custom,
# info, an unknown field) nests at most MAX_DEPTH (32) levels, and a body at most that plus
# its envelope (batch → call → traits/properties). Anything deeper is refused as invalid JSON,
# so everything stored, echoed or reported can be written back as JSON.
MAX_BODY_DEPTH = MAX_DEPTH + 8


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.extra = extra or {}

    @classmethod
    def from_field(cls, exc: FieldError, status: int = 400) -> ApiError:
        return cls(status, exc.reason, str(exc), exc.field)


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict | None = None, extra: dict | None = None):
    body = {"error": code, "message": message, "field": field, **(extra or {})}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def json_response(body, status: int = 200):
    """``jsonify(body)`` answered with ``status``, for the routes on the hot path: the same bytes
    (compact, ASCII-escaped, keys in order, a trailing newline) without the JSON provider's
    per-call argument handling."""
    app = current_app
    encode = app.extensions.get(_ENCODE)
    if encode is None:  # json.dumps builds an encoder per call when given options: one an app
        encode = app.extensions[_ENCODE] = json.JSONEncoder(
            separators=(",", ":"), default=app.json.default).encode
    return app.response_class(encode(body) + "\n", status=status,
                              content_type="application/json")


_ENCODE = "mock_planhat.encode_json"


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def too_deep(data, limit: int = MAX_BODY_DEPTH) -> bool:
    """Whether ``data`` nests more than ``limit`` arrays/objects (level by level, no recursion:
    the cost is one type check per value)."""
    level = [data] if type(data) is dict or type(data) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for value in level:
            for item in (value.values() if type(value) is dict else value):
                if type(item) is dict or type(item) is list:
                    below.append(item)
        level = below
    return False


class TooDeep(ValueError):
    """A body nested past MAX_BODY_DEPTH; ``field`` names the branch (``custom``,
    ``[0].info``, or ``body`` when the body itself is the branch)."""

    def __init__(self, field: str):
        super().__init__(f"{field}: nested deeper than {MAX_BODY_DEPTH} levels (a stored field "
                         f"may nest {MAX_DEPTH})")
        self.field = field


def _deep_field(data) -> str:
    """The field under which ``data`` nests too deep: its first key (after any array
    indexes), e.g. ``custom`` or ``[3].info``. Called only once a body was found too deep."""
    def depth(value, limit):  # bounded recursion: stops at limit
        if limit < 0 or not isinstance(value, (dict, list)):
            return 0
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((depth(v, limit - 1) for v in items), default=0)

    path, value = "", data
    while isinstance(value, (dict, list)) and (not path or path.endswith("]")) \
            and path.count("[") < 3:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if depth(item, MAX_BODY_DEPTH) >= MAX_BODY_DEPTH - path.count("[") - 1:
                path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else key)
                value = item
                break
        else:
            break
    return path or "body"


# json.loads builds a decoder per call when given hooks: one, made once
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def loads(raw: bytes):
    """Parse a body as the fake accepts JSON: no NaN or Infinity (spelled out or overflowing),
    no lone UTF-16 surrogates, nothing nested deeper than MAX_BODY_DEPTH — what could not be
    stored and answered as valid JSON."""
    data = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    # Fewer brackets than the limit cannot nest past it: most bodies skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_BODY_DEPTH and too_deep(data):
        raise TooDeep(_deep_field(data))
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)") \
                from None
    return data


def read_json(expect: type | tuple | None = None, what: str = "body"):
    """The request body as JSON, or a 4xx that says what is wrong with it."""
    ctype = request.mimetype or ""
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type: {request.content_type!r} is not supported; "
                       "send application/json", "Content-Type")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "invalid_json", f"{what}: the request has no JSON body", what)
    try:
        data = loads(raw)
    except RecursionError:
        raise ApiError(400, "invalid_json", f"{what}: JSON nested too deeply", what) from None
    except TooDeep as exc:
        field = what if exc.field == "body" else exc.field
        raise ApiError(400, "invalid_json", str(exc).replace("body:", f"{what}:", 1),
                       field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"{what}: not valid JSON ({exc})", what) from None
    if expect is not None and not isinstance(data, expect):
        names = {dict: "an object", list: "an array"}
        wanted = " or ".join(names[t] for t in (expect if isinstance(expect, tuple) else (expect,)))
        raise ApiError(400, "invalid_body", f"{what}: must be {wanted}", what)
    return data


def register(app: Flask) -> None:
    # Werkzeug answers a path with '//' in it by a 308 redirect to the merged path (an HTML
    # page); the fake routes paths as sent, so '/__admin//health' is a 404 naming the path.
    app.url_map.merge_slashes = False

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers,
                              exc.extra)

    @app.errorhandler(FieldError)
    def _field_error(exc: FieldError):
        return error_response(400, exc.reason, str(exc), exc.field)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if isinstance(exc, ClientDisconnected):  # the body could not be read to its end
            if isinstance(exc.__context__, TimeoutError):
                return _read_timeout()
            return error_response(400, "incomplete_body", "body: the connection ended before "
                                  "the body was complete", "body")
        if status == 404:
            message = f"no route for {request.method} {request.path}"
            if "//" in request.path:
                message += " (an empty path segment: '//')"
            field = "path"
        elif status == 405:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
            field = "method"
        elif status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"body: over the limit of {limit} bytes"
            field = "body"
        else:
            message, field = exc.description or exc.name, None
        code = exc.name.lower().replace(" ", "_")
        headers = {"Allow": ", ".join(exc.valid_methods)} if status == 405 and exc.valid_methods else None
        return error_response(status, code, message, field, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # a bug of ours: still JSON, never a traceback page
        app.logger.exception("unexpected error")
        return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")


# A server that refused a request for its body (over the limit, a broken or unsupported
# transfer coding, stalled) before the app saw it puts the answer it decided here, as
# ``{"status", "error", "message", "field"}``, and has the app give it: the app answers it as
# its own errors, so the journal (and a recording) keep it as they do every answer.
REFUSED_BODY = "mock_planhat.refused_body"

# A server that has a request's whole body in memory (waitress reads it before the app is
# called) may put its bytes here: the app's request reads them instead of the input stream.
WHOLE_BODY = "mock_planhat.whole_body"

READ_TIMEOUT_MESSAGE = ("body: the client stopped sending the body (the server's read "
                        "timeout passed)")


def _read_timeout():
    """The client stopped sending its body for longer than the server's read timeout. No
    ``Connection: close`` here: a connection header is the server's to send (a WSGI app must
    not), and the server closes this connection and says so once."""
    return error_response(408, "request_timeout", READ_TIMEOUT_MESSAGE, "body")
