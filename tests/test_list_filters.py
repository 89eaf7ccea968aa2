"""Issue 9 §6: list filters combine with AND, an empty value is a 400 on every filter, and an
unknown parameter is a 400 naming it (paging and the documented filters keep working)."""

from __future__ import annotations

import pytest


@pytest.fixture
def people(api):
    acme = api.post("/companies", json={"name": "Acme", "externalId": "acme",
                                        "sourceId": "s-acme"}).get_json()
    beta = api.post("/companies", json={"name": "Beta", "externalId": "beta",
                                        "sourceId": "s-beta"}).get_json()
    for ext, email, company in (("a1", "ann@x.com", "acme"), ("b1", "ann@x.com", "beta"),
                                ("b2", "bob@x.com", "beta")):
        response = api.post("/endusers", json={"externalId": ext, "email": email,
                                               "companyId": f"extid-{company}"})
        assert response.status_code == 200, response.get_json()
    return acme, beta


def _ext(response):
    assert response.status_code == 200, response.get_json()
    return sorted(p["externalId"] for p in response.get_json())


def test_list_filters_combine_with_and(api, people):
    assert _ext(api.get("/endusers?email=ann@x.com&companyId=extid-beta")) == ["b1"]
    assert _ext(api.get("/endusers?email=ann@x.com&c=extid-acme")) == ["a1"]
    assert _ext(api.get("/endusers?externalId=a1,b2&companyId=extid-beta")) == ["b2"]
    assert _ext(api.get("/endusers?externalId=a1&email=bob@x.com")) == []
    assert _ext(api.get("/endusers?companyId=extid-beta&email=ANN@x.com")) == ["b1"]
    # a repeated filter is the same as its comma list
    assert _ext(api.get("/endusers?externalId=a1&externalId=b2")) == ["a1", "b2"]


def test_list_filters_company_source_id_honoured(api, people):
    response = api.get("/companies?sourceId=s-beta")
    assert [c["name"] for c in response.get_json()] == ["Beta"]
    assert api.get("/companies?sourceId=s-beta&externalId=acme").get_json() == []
    both = api.get("/companies?externalId=acme,beta&sourceId=s-acme").get_json()
    assert [c["name"] for c in both] == ["Acme"]
    lean = api.get("/leancompanies?sourceId=s-acme").get_json()
    assert [c["name"] for c in lean] == ["Acme"]


@pytest.mark.parametrize("path", [
    "/endusers?externalId=", "/endusers?email=", "/endusers?companyId=", "/endusers?c=",
    "/endusers?companyId=,", "/endusers?archived=", "/endusers?limit=", "/endusers?sort=",
    "/companies?externalId=", "/companies?sourceId=", "/companies?_id=", "/companies?id=",
    "/companies?offset=", "/leancompanies?select=",
])
def test_list_filters_empty_value_is_400_naming_it(api, people, path):
    name = path.split("?")[1].split("=")[0]
    response = api.get(path)
    assert response.status_code == 400
    assert response.get_json()["field"] == name
    assert response.get_json()["error"] == "invalid_query"


@pytest.mark.parametrize("path,name", [
    ("/endusers?emial=ann@x.com", "emial"), ("/endusers?sourceId=x", "sourceId"),
    ("/companies?name=Acme", "name"), ("/companies?s=segment-1", "s"),
    ("/leancompanies?companyId=x", "companyId"),
])
def test_list_filters_unknown_parameter_is_400_naming_it(api, people, path, name):
    response = api.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == name and name in body["message"]


def test_list_filters_paging_and_documented_filters_still_work(api, people):
    acme, beta = people
    page = api.get("/endusers?limit=1&offset=1&sort=-externalId&select=email").get_json()
    assert page == [{"_id": page[0]["_id"], "email": "ann@x.com"}]
    assert _ext(api.get(f"/endusers?c={beta['_id']}")) == ["b1", "b2"]
    assert _ext(api.get("/endusers?archived=false")) == ["a1", "b1", "b2"]
    assert len(api.get(f"/companies?_id={acme['_id']}").get_json()) == 1
    assert len(api.get(f"/companies?id={acme['_id']},{beta['_id']}").get_json()) == 2
    assert api.get("/endusers?limit=1&limit=2").status_code == 400
    assert api.get("/endusers?archived=maybe").get_json()["field"] == "archived"
