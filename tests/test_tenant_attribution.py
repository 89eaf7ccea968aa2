"""Issue 9 §8 (a fault rule scoped by either token fires; every journal entry names its
tenant, /v1 calls with the write key in the body too) and §9 (Retry-After is whole seconds)."""

from __future__ import annotations

import base64

import pytest
import urllib3

TENANT, API_TOKEN = "mock-tenant-token", "mock-api-token"
API = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def other(client):
    return client.post("/__admin/tenants", json={"tenantToken": "t-other",
                                                 "apiToken": "a-other"}).get_json()


@pytest.mark.parametrize("scope", [TENANT, API_TOKEN])
def test_tenant_attribution_fault_rule_scoped_by_either_token_fires(client, other, scope):
    client.post("/__admin/faults", json={"path": "/endusers", "status": 503, "tenant": scope,
                                         "count": 1})
    theirs = client.get("/endusers", headers={"Authorization": "Bearer a-other"})
    assert theirs.status_code == 200  # another tenant is not hit
    assert client.get("/endusers", headers=API).status_code == 503
    assert client.get("/endusers", headers=API).status_code == 200  # spent
    # the tracking path (tenant token in the path) is the same tenant
    client.post("/__admin/faults", json={"path": "/analytics/*", "status": 502, "tenant": scope})
    assert client.post(f"/analytics/{TENANT}", json={"action": "a"}).status_code == 502


@pytest.mark.parametrize("scope", [TENANT, API_TOKEN])
def test_tenant_attribution_fault_rule_fires_on_v1_write_key_in_body(client, scope):
    client.post("/__admin/faults", json={"path": "/v1/*", "status": 503, "tenant": scope})
    other_tenant = client.post("/v1/track", json={"writeKey": "nobody", "userId": "u",
                                                  "event": "e"})
    assert other_tenant.status_code == 200
    hit = client.post("/v1/track", json={"writeKey": TENANT, "userId": "u", "event": "e"})
    assert hit.status_code == 503 and hit.get_json()["error"] == "injected_fault"
    assert client.get("/__admin/faults").get_json() == []


def test_v1_with_basic_for_one_tenant_and_write_key_for_another_is_the_body_tenants(client,
                                                                                     other):
    """The body's writeKey wins over Basic, for everything: the data, the journal and the
    fault rules (the header tenant's rules do not fire; the body tenant's do)."""
    header = {"Authorization": "Basic " + base64.b64encode(f"{TENANT}:".encode()).decode()}
    client.post("/__admin/faults", json={"path": "/v1/*", "status": 503, "tenant": TENANT})
    call = {"writeKey": "t-other", "userId": "u1", "traits": {"email": "u1@x.org"}}
    assert client.post("/v1/identify", json=call, headers=header).status_code == 200
    assert [r["tenant"] for r in client.get("/__admin/faults").get_json()] == [TENANT]
    assert client.get("/__admin/state?tenant=t-other").get_json()["pending"][0][
        "externalId"] == "u1"
    assert client.get("/__admin/requests?path=/v1/*").get_json()["requests"][-1][
        "tenant"] == "t-other"
    client.post("/__admin/faults", json={"path": "/v1/*", "status": 502, "tenant": "a-other"})
    hit = client.post("/v1/identify", json=call, headers=header)
    assert hit.status_code == 502 and hit.get_json()["error"] == "injected_fault"
    # without a writeKey in the body, the header names the tenant: its rule fires
    assert client.post("/v1/identify", json={"userId": "u2"}, headers=header).status_code == 503


def test_tenant_attribution_fault_rules_cleared_by_either_token(client, other):
    client.post("/__admin/faults", json={"status": 503, "tenant": "a-other"})
    client.post("/__admin/faults", json={"status": 503, "tenant": TENANT})
    client.delete("/__admin/faults?tenant=t-other")
    assert [r["tenant"] for r in client.get("/__admin/faults").get_json()] == [TENANT]


def test_tenant_attribution_journal_names_v1_body_write_key(client, other):
    client.delete("/__admin/requests")
    client.post("/v1/identify", json={"writeKey": "t-other", "userId": "u1",
                                      "traits": {"email": "a@b.com"}})
    client.post("/v1/batch", json={"writeKey": TENANT, "batch": [
        {"type": "track", "userId": "u1", "event": "e"}]})
    basic = base64.b64encode(b"t-other:").decode()
    client.post("/dock/segment", json={"type": "track", "userId": "u", "event": "e"},
                headers={"Authorization": f"Basic {basic}"})
    client.get("/endusers", headers={"Authorization": "Bearer a-other"})
    client.get("/companies", headers={"Authorization": "Basic " + base64.b64encode(
        f"{API_TOKEN}:".encode()).decode()})
    entries = client.get("/__admin/requests").get_json()["requests"]
    outer = [(e["path"], e["tenant"]) for e in entries if not e["path"].startswith(
        ("/endusers", "/companies", "/analytics")) or e["method"] == "GET"]
    assert outer == [("/v1/identify", "t-other"), ("/v1/batch", TENANT),
                     ("/dock/segment", "t-other"), ("/endusers", "t-other"),
                     ("/companies", TENANT)]
    assert all(e["tenant"] is not None for e in entries), entries
    mine = client.get("/__admin/requests?tenant=t-other").get_json()["requests"]
    assert "/v1/identify" in [e["path"] for e in mine]


@pytest.mark.parametrize("given,sent", [(1.5, "2"), (0.00001, "1"), (0, "0"), (2, "2"),
                                        (3600, "3600"), (59.0, "59")])
def test_retry_after_is_integer_seconds(client, given, sent):
    client.post("/__admin/faults", json={"status": 429, "retryAfter": given})
    response = client.get("/endusers", headers=API)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == sent
    # what urllib3 (under requests) parses as a valid Retry-After
    retry = urllib3.Retry(total=1, respect_retry_after_header=True)
    assert retry.parse_retry_after(response.headers["Retry-After"]) == int(sent)
