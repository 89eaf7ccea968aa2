"""Planhat's auth, and JSON errors for every kind of bad request."""

from __future__ import annotations

import base64

import pytest

from mock_planhat.config import DEFAULT_API_TOKEN


def basic(user, password=""):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("header", [f"Bearer {DEFAULT_API_TOKEN}", basic(DEFAULT_API_TOKEN),
                                    f"bearer {DEFAULT_API_TOKEN}"])
def test_accepted_credentials(client, header):
    assert client.get("/endusers", headers={"Authorization": header}).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer wrong", basic("wrong"), "Basic %%%",
                                    "Token abc", "Bearer "])
def test_rejected_credentials_are_401_json(client, header):
    headers = {"Authorization": header} if header else {}
    for path in ("/endusers", "/companies", "/leancompanies", "/endusers/extid-x"):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, path
        assert r.get_json()["field"] == "Authorization"


def test_unknown_route_is_404_json(client):
    r = client.get("/nothing/here")
    assert r.status_code == 404 and r.get_json()["field"] == "path"


def test_wrong_method_is_405_json(api):
    r = api.patch("/companies")
    assert r.status_code == 405 and r.get_json()["field"] == "method"
    assert "PUT" in r.headers["Allow"]


def test_malformed_json_is_400_naming_the_body(api):
    r = api.post("/endusers", data="{", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["field"] == "body"
    assert "JSON" in r.get_json()["message"]


def test_wrong_content_type_is_415(api):
    r = api.post("/endusers", data="a=b", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.get_json()["field"] == "Content-Type"


def test_empty_body_is_400(api):
    r = api.post("/companies")
    assert r.status_code == 400 and r.get_json()["field"] == "body"


def test_body_over_limit_is_413(make_api):
    api = make_api(max_body=1000)
    r = api.put("/endusers", json=[{"externalId": "x" * 50}] * 50)
    assert r.status_code == 413 and r.get_json()["field"] == "body"
    assert api.state()["pending"] == []


@pytest.mark.parametrize("body,field", [
    ({"email": "not-an-email", "externalId": "u"}, "email"),
    ({"externalId": ""}, "externalId"),
    ({"externalId": "a\x00b"}, "externalId"),
    ({"externalId": "x" * 2000}, "externalId"),
    ({"externalId": "u", "tags": "a"}, "tags"),
    ({"externalId": "u", "archived": "yes"}, "archived"),
    ({"externalId": "u", "custom": "x"}, "custom"),
    ({"_id": "short"}, "_id"),
])
def test_wrong_field_is_400_naming_it(api, company, body, field):
    r = api.post("/endusers", json={"companyId": "extid-acme", **body})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["field"] == field and field in r.get_json()["message"]
    assert api.state()["endusers"] == []


def test_deeply_nested_custom_is_400(api, company):
    nested = {}
    for _ in range(100):
        nested = {"a": nested}
    r = api.post("/endusers", json={"externalId": "u", "companyId": "extid-acme",
                                    "custom": nested})
    assert r.status_code == 400 and r.get_json()["field"] == "custom"


def test_non_ascii_is_kept(api, company):
    r = api.post("/endusers", json={"externalId": "ü-1", "firstName": "Zoë", "lastName": "Ørsted",
                                    "companyId": "extid-acme"})
    assert r.status_code == 200
    assert api.get("/endusers/extid-ü-1").get_json()["name"] == "Zoë Ørsted"
