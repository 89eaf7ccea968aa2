"""Issue 9 §7: every token names one tenant in one role, and is a valid header value."""

from __future__ import annotations

import pytest

from mock_planhat import Config

TENANT, API_TOKEN = "mock-tenant-token", "mock-api-token"


def _new(client, **body):
    return client.post("/__admin/tenants", json=body)


@pytest.mark.parametrize("body,field", [
    ({"tenantToken": API_TOKEN}, "tenantToken"),       # another tenant's API token
    ({"apiToken": TENANT}, "apiToken"),                # another tenant's tenant token
    ({"tenantToken": TENANT}, "tenantToken"),
    ({"apiToken": API_TOKEN}, "apiToken"),
    ({"tenantToken": "same-1", "apiToken": "same-1"}, "apiToken"),  # one token, both roles
])
def test_tokens_unique_across_roles_conflict_is_409(client, body, field):
    response = _new(client, **body)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"] == "token_conflict"
    assert response.get_json()["field"] == field
    assert len(client.get("/__admin/tenants").get_json()) == 1  # nothing was created


def test_tokens_unique_across_roles_of_created_tenants(client):
    first = _new(client, tenantToken="t-one", apiToken="a-one").get_json()
    assert _new(client, tenantToken=first["apiToken"]).status_code == 409
    assert _new(client, apiToken=first["tenantToken"]).status_code == 409
    # the first tenant still answers by both of its tokens, each in its own role only
    assert client.get("/endusers", headers={"Authorization": "Bearer a-one"}).status_code == 200
    assert client.get("/endusers", headers={"Authorization": "Bearer t-one"}).status_code == 401


@pytest.mark.parametrize("token", [
    " padded", "padded ", "with space", "tab\there", "new\nline", "nul\x00", "del\x7f",
    "colon:inside", "slash/inside", "é-accent", "", "x" * 201,
])
@pytest.mark.parametrize("field", ["tenantToken", "apiToken"])
def test_tokens_must_be_valid_header_values(client, token, field):
    response = _new(client, **{field: token})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field
    assert len(client.get("/__admin/tenants").get_json()) == 1


def test_tokens_valid_ones_authenticate(client):
    token = "Ab0._~-" + "z" * 100
    created = _new(client, apiToken=token, tenantToken="tt.0~x").get_json()
    assert created["apiToken"] == token
    assert client.get("/endusers", headers={"Authorization": f"Bearer {token}"}).status_code \
        == 200
    assert client.post("/analytics/tt.0~x", json={"action": "a", "externalId": "u"}) \
        .status_code == 200


@pytest.mark.parametrize("config,name", [
    ({"tenant_token": "has space"}, "tenant_token"), ({"api_token": "a\tb"}, "api_token"),
    ({"tenant_token": "same", "api_token": "same"}, "api_token"),
])
def test_tokens_checked_in_config(config, name):
    with pytest.raises(ValueError, match=name):
        Config(**config)
