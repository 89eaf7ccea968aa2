"""A fresh fake per test (Flask's test client), and a live one on a free port when needed."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from mock_planhat import Config, create_app
from mock_planhat.server import Server

API = {"Authorization": "Bearer mock-api-token"}
TENANT = "mock-tenant-token"


@pytest.fixture
def app():
    return create_app(Config())


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """Flask's test client with the default tenant's API token on every request."""

    def __init__(self, client, headers=API):
        self.client = client
        self.headers = headers

    def __getattr__(self, method):
        def call(path, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(path, headers=headers, **kwargs)
        return call

    def state(self, tenant=None):
        query = f"?tenant={tenant}" if tenant else ""
        return self.client.get(f"/__admin/state{query}").get_json()


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def company(api):
    """A company with domain acme.com and externalId acme."""
    response = api.post("/companies", json={"name": "Acme", "externalId": "acme",
                                            "domains": ["acme.com"]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def live_server():
    server = Server(create_app(Config()), "127.0.0.1", 0).start()
    yield server
    server.stop()


@pytest.fixture
def make_api():
    """``make_api(unassigned="discard", ...)``: an Api on a fresh app with that config."""
    return lambda **config: Api(create_app(Config(**config)).test_client())


# ----- skips: under CI=true only the ones listed in tests/allowed_skips.txt ------------------
ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")


def allowed_skip_patterns() -> list[str]:
    lines = ALLOWED_SKIPS.read_text("utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def _enforce(report) -> None:
    """Turn a skip that is not on the allow-list into a failure (CI only)."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    if any(fnmatch.fnmatchcase(report.nodeid, p) for p in allowed_skip_patterns()):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{report.nodeid} skipped under CI=true ({reason}), and "
                       f"{ALLOWED_SKIPS.name} does not allow it: a skip could hide a "
                       "regression. Make the test run, or list it there with the reason.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _enforce(outcome.get_result())


def exchange(server, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw ``data`` to a live server, read until it closes the connection (or
    ``timeout``): for what an HTTP client library would not send."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as conn:
        conn.sendall(data)
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
        return out
