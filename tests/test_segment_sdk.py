"""Segment's own Python SDK (analytics-python) pointed at the live fake: its calls land."""

from __future__ import annotations

import pytest
import requests
from segment.analytics import Client

TENANT = "mock-tenant-token"
PERSONAS = {"computation_class": "audience", "computation_key": "first_time_shopper",
            "computation_id": "aud_1", "namespace": "spa_1", "space_id": "spa_1"}
ENGAGE_ONLY = {"All": False, "Planhat": True}


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def compress(request):
    return request.param


@pytest.fixture(params=["sync", "async"])
def sdk(request, live_server, compress):
    """A Segment client of its own (no global state) whose host is the live fake."""
    errors = []
    client = Client(write_key=TENANT, host=live_server.url, gzip=compress,
                    sync_mode=request.param == "sync", max_retries=1, upload_interval=0.05,
                    on_error=lambda error, batch: errors.append(error))
    client.errors = errors
    yield client
    if request.param == "async":
        client.shutdown()


def get(server, path):
    response = requests.get(server.url + path, timeout=10)
    response.raise_for_status()
    return response.json()


def test_sdk_calls_fill_the_tenant(live_server, sdk, compress):
    sdk.group("anon-user", "g1", {"name": "Acme", "plan": "enterprise"})
    sdk.identify("anon-user", {"email": "ann@acme.com", "firstName": "Ann", "lastName": "Lee",
                               "company": {"id": "g1", "name": "Acme"}, "role": "admin"})
    sdk.track("anon-user", "Order Completed", {"revenue": 42.5})
    sdk.page("anon-user", "Docs", "Pricing", {"path": "/pricing"})
    sdk.alias("anon-user", "user-1")
    sdk.track("user-1", "Signed In")
    sdk.identify("user-1", {"first_time_shopper": True}, context={"personas": PERSONAS},
                 integrations=ENGAGE_ONLY)
    sdk.screen("user-1", "App", "Home")
    sdk.flush()
    assert sdk.errors == []

    data = get(live_server, "/__admin/state")
    [company] = data["companies"]
    assert (company["externalId"], company["name"], company["custom"]) == (
        "g1", "Acme", {"plan": "enterprise"})
    assert data["pending"] == []
    [user] = data["endusers"]
    assert user["externalId"] == "user-1"
    assert (user["email"], user["name"]) == ("ann@acme.com", "Ann Lee")
    assert (user["companyId"], user["companyName"]) == (company["_id"], "Acme")
    assert user["custom"] == {"company": "Acme", "role": "admin", "first_time_shopper": True}
    activities = [(a["action"], a["enduserId"], a["companyId"]) for a in data["activities"]]
    assert activities == [(action, user["_id"], company["_id"]) for action in
                          ("Order Completed", "Viewed Pricing Page", "Signed In")]
    assert data["activities"][0]["info"] == {"revenue": 42.5}
    assert data["activities"][1]["info"] == {"path": "/pricing", "category": "Docs"}
    # the group came before the user existed: its attach is the skip unknown_user
    assert [e["reason"] for e in data["report"] if e["source"] == "/v1/batch"] == [
        "unknown_user", "unsupported_call"]

    # Leaving the audience flips the boolean back.
    sdk.identify("user-1", {"first_time_shopper": False}, context={"personas": PERSONAS},
                 integrations=ENGAGE_ONLY)
    sdk.flush()
    [user] = get(live_server, "/__admin/state")["endusers"]
    assert user["custom"]["first_time_shopper"] is False

    # The SDK really spoke to /v1/batch, with Basic auth, compressed when asked to.
    posts = [e for e in get(live_server, "/__admin/requests")["requests"]
             if e["path"] == "/v1/batch"]
    assert posts and all(e["status"] == 200 for e in posts)
    assert all(e["tenant"] == TENANT for e in posts)  # the Basic user named the tenant
    # The journal shows the JSON that arrived, gzip or not.
    assert all(isinstance(e["body"], dict) and e["body"]["batch"] for e in posts)  # gunzipped


def test_sdk_with_an_unknown_write_key_is_answered_success(live_server, compress):
    errors = []
    client = Client(write_key="not-a-tenant", host=live_server.url, gzip=compress,
                    sync_mode=True, on_error=lambda error, batch: errors.append(error))
    client.identify("u1", {"email": "ann@acme.com"})
    assert errors == []
    entries = get(live_server, "/__admin/report?reason=unknown_tenant")["entries"]
    assert [(e["tenant"], e["source"]) for e in entries] == [("not-a-tenant", "/v1/batch")]
    data = get(live_server, "/__admin/state")
    assert data["endusers"] == [] and data["pending"] == []
