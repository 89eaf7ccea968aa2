"""The Flask app factory: `create_app(config)` builds one fake with its own tenants."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from flask import Flask, request

from . import errors
from .auth import tenant_hint
from .config import Config
from .faults import Faults
from .journal import JOURNAL_BODY, Journal
from .tenants import Registry


@dataclass
class Fake:
    """What one app owns: its config, tenants, journal and fault rules."""

    config: Config
    registry: Registry
    journal: Journal
    faults: Faults


def create_app(config: Config | None = None, **overrides) -> Flask:
    config = config or Config(**overrides)
    app = Flask("mock_planhat")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.json.sort_keys = False
    app.json.compact = True
    fake = Fake(config, Registry(config), Journal(config.journal_size), Faults())
    app.extensions["mock_planhat"] = fake
    errors.register(app)

    from .routes import admin, analytics, companies, endusers, segment

    for module in (endusers, companies, analytics, admin, segment):
        app.register_blueprint(module.bp)

    @app.before_request
    def _before():
        if request.path.startswith("/__admin"):
            if not _is_loopback(request.remote_addr):
                raise errors.ApiError(403, "forbidden",
                                      "the admin API answers loopback clients only", None)
            return None
        rule = fake.faults.take(request.method, request.path, _tenant_hint())
        if rule is None:
            return None
        if rule["delay"]:
            time.sleep(rule["delay"])
        if rule["status"] is None:
            return None
        headers = {}
        if rule["retryAfter"] is not None:
            headers["Retry-After"] = f"{rule['retryAfter']:g}"
        return errors.error_response(rule["status"], "injected_fault",
                                     f"fault rule {rule['id']} answered {rule['status']}",
                                     None, headers)

    @app.after_request
    def _after(response):
        path = request.path
        if not path.startswith("/__admin"):
            size = request.content_length or 0
            body = request.environ.get(JOURNAL_BODY) or (
                request.get_data(cache=True) if 0 < size <= config.max_body else b"")
            fake.journal.record(request.method, path, response.status_code, body,
                                _tenant_hint(), request.query_string.decode("latin-1"))
        return response

    return app


_HINT = "mock_planhat.tenant_hint"


def _tenant_hint() -> str | None:
    """``tenant_hint()``, worked out once per request: the fault rules and the journal both
    need it (it reads the Authorization header and looks the token up). Kept in the request's
    environ, not in ``g``: the Segment routes make requests to this app inside a request, and
    those share the outer request's app context."""
    environ = request.environ
    if _HINT not in environ:
        environ[_HINT] = tenant_hint()
    return environ[_HINT]


def _is_loopback(addr: str | None) -> bool:
    if not addr:
        return True  # in-process (WSGI) callers have no socket
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def fake_of(app: Flask) -> Fake:
    return app.extensions["mock_planhat"]
