"""A fresh fake per test (Flask's test client), and a live one on a free port when needed."""

from __future__ import annotations

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
