"""The Flask app factory: `create_app(config)` builds one fake with its own tenants."""

from __future__ import annotations

import io
import ipaddress
import math
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote

from flask import Flask, Request, current_app, request
from flask.sessions import NullSession, SessionInterface
from werkzeug.exceptions import ClientDisconnected

from . import errors, recording
from .auth import tenant_hint, token_from_header
from .config import Config
from .faults import Faults
from .journal import AFTER_ANSWER, JOURNAL_BODY, PARENT, Journal
from .models import TABLE
from .ratelimit import EXEMPT, RateLimiter
from .tenants import Registry


@dataclass
class Fake:
    """What one app owns: its config, tenants, journal, fault rules and rate limiter."""

    config: Config
    registry: Registry
    journal: Journal
    faults: Faults
    limiter: RateLimiter

    def quick(self, path: str) -> bool:
        """Whether a small write to ``path`` may be answered in the server's I/O loop thread
        (``waitress_server``): not the admin API or the dashboard (slow or large answers),
        not Segment's routes, and no fault rule waits (a delay there would hold every
        connection). A Segment call is applied by in-process Planhat requests, each retried
        with a sleep when a fault rule (status only) answers 5xx: a batch of a few hundred
        calls slept for seconds, and in the loop every connection waited with it."""
        return ("__admin" not in path and path != "/" and not path.startswith(_SEGMENT_PATHS)
                and not self.faults.delays())



class _Request(Request):
    def get_data(self, cache: bool = True, as_text: bool = False,
                 parse_form_data: bool = False):
        """The body; the bytes a server handed over (``errors.WHOLE_BODY``) when it did."""
        data = self.environ.get(errors.WHOLE_BODY)
        if data is None or as_text or parse_form_data:
            return super().get_data(cache, as_text, parse_form_data)
        return data


class _NoSessions(SessionInterface):
    """The fake keeps no sessions: one empty session, never signed or saved (Flask's own
    looks for a secret key and makes a new empty session on every request)."""

    def open_session(self, app, request):
        return None  # Flask then uses the null session

    def make_null_session(self, app):
        return _NULL_SESSION

    def save_session(self, app, session, response):
        pass


_NULL_SESSION = NullSession()


class _App(Flask):
    """Flask, for an app whose views and hooks are all plain functions and that keeps no
    sessions."""

    request_class = _Request
    session_interface = _NoSessions()

    def ensure_sync(self, func):
        # Flask asks inspect whether each view and hook is a coroutine function, four times
        # a request; none is (a test holds to it)
        return func


def create_app(config: Config | None = None, **overrides) -> Flask:
    config = config or Config(**overrides)
    app = _App("mock_planhat")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.json.sort_keys = False
    app.json.compact = True
    fake = Fake(config, Registry(config), Journal(config.journal_size, config.journal_bytes,
                                                 config.payload_bytes), Faults(),
                RateLimiter(config.clock))
    app.extensions["mock_planhat"] = fake
    app.wsgi_app = _SizedBodies(app.wsgi_app, config.max_body)
    errors.register(app)

    from .dashboard import bp as dashboard_bp
    from .routes import admin, analytics, models, segment

    for module in (models, analytics, admin, segment):
        app.register_blueprint(module.bp)
    app.register_blueprint(dashboard_bp)
    admin_from = [ipaddress.ip_network(n, strict=False) for n in config.admin_from]

    @app.before_request
    def _before():
        req = request._get_current_object()  # one lookup: the hooks run on every request
        environ = req.environ
        if _BAD_CHUNKS in environ:
            _bad_chunks(environ[_BAD_CHUNKS])
        refused = environ.get(errors.REFUSED_BODY)
        if refused is not None:  # the server's answer, given here to be journaled
            raise errors.ApiError(refused["status"], refused["error"], refused["message"],
                                  refused["field"])
        if _is_admin(req.path):
            if not _admin_allowed(req.remote_addr, admin_from):
                raise errors.ApiError(403, "forbidden", "the admin API and the dashboard answer "
                                      "loopback clients only (and --admin-from networks)", None)
            if req.method in recording.RECORDED_METHODS:  # it may change a tenant outside
                for tenant in fake.registry.all():  # a recording: a base not started is stale
                    recording.drop_unstarted(tenant)
            return None
        # Segment's tracking API learns its tenant from the body (writeKey wins over Basic):
        # that tenant's rules apply once the body is read (attribute_tenant), not the header's
        path = req.path
        hint = None if path.startswith(_BODY_TENANT) else _tenant_hint(req, fake)
        answer = apply_fault(fake, _request_tokens(fake, hint))
        if answer is None and fake.registry.rate_limited and EXEMPT not in environ:
            answer = _rate_limit(fake, path, environ)
        if answer is not None:
            environ[_EARLY] = True  # a fault rule or a rate limit answered
        elif PARENT not in environ and recording.may_record(req.method, req.path):
            tenant = fake.registry.by_tenant_token(hint) if hint else None
            if tenant is not None and tenant.recording_base is None:
                recording.before_request(tenant, config.recording_bytes)
        return answer

    @app.after_request
    def _after(response):
        req = request._get_current_object()
        environ = req.environ
        decision = environ.get(_RATE)
        if decision is not None:
            response.headers.update(decision.headers())
        path = req.path
        if (response.content_length or 0) > _LARGE:  # a large answer, made of large parts
            environ[_TRIM] = True
        if not _is_admin(path):
            size = req.content_length or 0
            try:
                body = environ.get(JOURNAL_BODY) or (
                    req.get_data(cache=True) if 0 < size <= config.max_body else b"")
            except ClientDisconnected:  # stalled or cut short: answered 408/400 already
                body = b""
            keep = _Keep(fake, req, body, response)
            later = environ.get(AFTER_ANSWER)
            if later is None:
                keep()
            else:  # the server sends the answer first
                later.append(keep)
        return response

    @app.teardown_request
    def _teardown(exc):
        req = request._get_current_object()
        if (req.content_length or 0) > _LARGE or req.environ.get(_TRIM):
            release_memory()

    return app


class _Keep:
    """What a Planhat request leaves besides its answer: its journal entry, and its item of
    the tenant's recording. Done after the answer is sent where the server can
    (``journal.AFTER_ANSWER``). The entry's time is when it is kept: a client that pages the
    journal by time (``since``) does not miss an entry kept after its last page."""

    __slots__ = ("fake", "req", "body", "response")

    def __init__(self, fake: Fake, req, body: bytes, response) -> None:
        self.fake, self.req, self.body, self.response = fake, req, body, response

    def __call__(self) -> None:
        fake, req, response = self.fake, self.req, self.response
        environ, method, path = req.environ, req.method, req.path
        hint = _tenant_hint(req, fake)
        tenant = fake.registry.by_tenant_token(hint) if hint else None
        at = tenant.now_millis() / 1000 if tenant is not None else None  # None: wall clock
        fake.journal.record(method, path, response.status_code, self.body, hint,
                            req.query_string.decode("latin-1"), environ, response, at,
                            AFTER_ANSWER in environ)
        if (tenant is not None and tenant.recording_base is not None
                and PARENT not in environ and _EARLY not in environ):
            answer = b"" if response.is_streamed or method not in \
                recording.RECORDED_METHODS else response.get_data()
            recording.record_request(tenant, method, _raw_path(environ, path),
                                     quote(req.query_string, safe=_URI_SAFE),
                                     response.status_code, self.body, answer,
                                     fake.config.recording_bytes)


class _SizedBodies:
    """WSGI middleware: a body without Content-Length (``Transfer-Encoding: chunked``) is read
    here, at most ``max_body + 1`` bytes, and handed on as a sized body. So it meets the same
    rules as a sized one: over the limit a 413 (werkzeug would cut it at the limit silently),
    and the journal keeps it. Under waitress (the default server) a chunked body arrives here
    already read and sized, its limit held by the server; this serves werkzeug and WSGI
    callers in process."""

    def __init__(self, wsgi_app, max_body: int) -> None:
        self.wsgi_app, self.max_body = wsgi_app, max_body

    def __call__(self, environ, start_response):
        # Transfer-Encoding wins over any Content-Length (RFC 9112 §6.3), as in werkzeug.
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = environ["wsgi.input"]
            chunks, size = [], 0
            try:
                while size <= self.max_body:
                    chunk = stream.read(min(64 * 1024, self.max_body + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            except (OSError, ValueError) as exc:  # stalled, or a broken chunk: said below
                environ[_BAD_CHUNKS] = exc
                chunks = []
            body = b"".join(chunks)
            # Over the limit: a Content-Length over it makes the 413 of a sized body (the rest
            # of the upload is not read; the server closes the connection after answering).
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["wsgi.input"] = io.BytesIO(body)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = False
        return self.wsgi_app(environ, start_response)


def _bad_chunks(exc: Exception):
    """A chunked body that could not be read: stalled past the read timeout, the 408 of a
    stalled sized body; else (a broken chunk header, a cut connection) a 400."""
    try:
        raise exc
    except TimeoutError:
        raise ClientDisconnected() from None  # the 408 (errors: its context is the timeout)
    except (OSError, ValueError):
        raise errors.ApiError(400, "invalid_body", "Transfer-Encoding: the chunked body is "
                              f"malformed or cut short ({str(exc)[:200] or type(exc).__name__})",
                              "Transfer-Encoding") from None


_LARGE = 1024 * 1024  # a body this large parses into many short-lived objects
_TRIM = "mock_planhat.release_memory"
_BAD_CHUNKS = "mock_planhat.bad_chunks"
_malloc_trim = None


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``), after a request
    that made many large short-lived objects: a 30 MB body parses into ~150 MB that, once freed,
    would otherwise stay in the process's RSS (per-thread malloc arenas keep it). A no-op where
    there is no glibc."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_HINT = "mock_planhat.tenant_hint"
_EARLY = "mock_planhat.answered_early"  # a fault rule or a rate limit answered: not recorded
_FAULTS_CHECKED = "mock_planhat.faults_checked"


def _request_tokens(fake: Fake, hint: str | None) -> frozenset[str]:
    """Both tokens of the request's tenant (a fault rule may name either), or the unknown
    token the path names."""
    if hint is None:
        return frozenset()
    tenant = fake.registry.by_tenant_token(hint)
    return frozenset(tenant.tokens) if tenant else frozenset((hint,))


def apply_fault(fake: Fake, tokens: frozenset[str], scoped_only: bool = False):
    """Spend the first fault rule this request matches: wait its delay, then answer its status
    (None: carry on). ``scoped_only``: rules that name a tenant only."""
    req = request._get_current_object()
    req.environ[_FAULTS_CHECKED] = tokens
    rule = fake.faults.take(req.method, req.path, tokens, scoped_only)
    if rule is None:
        return None
    if rule["delay"]:
        time.sleep(rule["delay"])
    if rule["status"] is None:
        return None
    headers = {}
    if rule["retryAfter"] is not None:
        # HTTP's delay-seconds is a whole number: a fraction is rounded up, never sent as 1.5
        headers["Retry-After"] = str(math.ceil(rule["retryAfter"]))
    return errors.error_response(rule["status"], "injected_fault",
                                 f"fault rule {rule['id']} answered {rule['status']}",
                                 None, headers)


def attribute_tenant(tenant_token: str):
    """For a route that learns its tenant from the body (Segment's ``writeKey``): the journal
    names that tenant, and the fault rules scoped to it apply now (they could not before the
    body was read). Returns a fault answer or None."""
    request.environ[_HINT] = tenant_token
    if request.environ.get(_FAULTS_CHECKED):
        return None  # the headers named the tenant already; its rules had their chance
    fake = fake_of(current_app)
    return apply_fault(fake, _request_tokens(fake, tenant_token), scoped_only=True)


_RATE = "mock_planhat.rate_limit"
_BODY_TENANT = "/v1/"  # paths whose tenant the body names
_SEGMENT_PATHS = (_BODY_TENANT, "/dock/segment")  # routes/segment.py: the translator's
# Planhat's limit covers its whole API: every model's paths (and its lean list), and the
# dimension data read. ``POST /dimensiondata/{tenantToken}`` is tracking, exempt like the others.
_REST_ROOTS = frozenset(root for model in TABLE
                        for root in (model.path, *(("lean" + model.path,) if model.lean else ())))
_REST_PATHS = frozenset({"/dimensiondata"})


def _rate_limit(fake: Fake, path: str, environ: dict):
    """Count a REST request (per API token) or a ``/dock/segment`` call (per tenant token)
    against its tenant's rate limit; a 429 when over it. Other paths are exempt."""
    root = path.lstrip("/").partition("/")[0]
    registry = fake.registry
    if root in _REST_ROOTS or path in _REST_PATHS:
        lookup = registry.by_api_token
    elif path == "/dock/segment":
        lookup = registry.by_tenant_token
    else:
        return None
    token = token_from_header(environ)
    tenant = lookup(token) if token else None
    if tenant is None or tenant.rate_limit is None:
        return None  # the route answers 401, or the tenant has no limit
    frozen = tenant.clock_millis  # a test clock set by POST /__admin/clock: the limit reads it
    decision = fake.limiter.take(token, tenant.rate_limit,
                                 None if frozen is None else (lambda: frozen / 1000))
    environ[_RATE] = decision
    if decision.allowed:
        return None
    return errors.error_response(
        429, "rate_limited", f"Too many requests: over the rate limit {tenant.rate_limit.text!r}"
        f"; retry after {decision.retry_after} s", "Authorization")


def _tenant_hint(req, fake: Fake) -> str | None:
    """``tenant_hint()`` of the request ``req``, worked out once per request: the fault rules
    and the journal both need it (it reads the Authorization header and looks the token up).
    Kept in the request's environ, not in ``g``: the Segment routes make requests to this app
    inside a request, and those share the outer request's app context."""
    environ = req.environ
    try:
        return environ[_HINT]
    except KeyError:
        hint = environ[_HINT] = tenant_hint(req.path, environ, fake.registry)
        return hint


def _raw_path(environ, routed: str) -> str:
    """The request's path as sent, %-escapes kept (``extid-a%2Fb`` is not ``extid-a/b``):
    the server's raw URI when it gives one, else the decoded path escaped again. ``routed``:
    the decoded path the app routed on."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        # a WSGI string holds bytes as latin-1 (werkzeug's server encodes them once more):
        # the form whose decoding is the path the app routed on, other bytes %-escaped
        raw = raw.partition("?")[0]
        for data in _byte_forms(raw):
            path = quote(data, safe=_URI_SAFE)
            if unquote(path) == routed:
                return path
    return quote(routed, safe="/:@!$&'()*+,;=-._~")


def _byte_forms(raw: str):
    data = raw.encode("latin-1", "replace")
    yield data
    try:
        yield data.decode("utf-8").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        pass


_URI_SAFE = "/:@!$&'()*+,;=-._~%?"  # kept as sent; %-escapes stay escaped


def _is_admin(path: str) -> bool:
    """The admin API and the dashboard (``/``): loopback only, never journaled."""
    return path.startswith("/__admin") or path == "/"


def _admin_allowed(addr: str | None, networks: list) -> bool:
    if not addr:
        return True  # in-process (WSGI) callers have no socket
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if network.version == ip.version)


def fake_of(app: Flask) -> Fake:
    return app.extensions["mock_planhat"]
