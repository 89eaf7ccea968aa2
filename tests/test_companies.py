"""Companies over HTTP, and /leancompanies."""

from __future__ import annotations

import pytest


def test_create_needs_a_name(api):
    r = api.post("/companies", json={"externalId": "x"})
    assert r.status_code == 400 and r.get_json()["field"] == "name"
    assert api.state()["companies"] == []


def test_crud_with_prefixed_keys(api, company):
    for key in (company["_id"], "extid-acme"):
        assert api.get(f"/companies/{key}").get_json()["name"] == "Acme"
    api.put("/companies/extid-acme", json={"sourceId": "s-acme", "custom": {"tier": 1}})
    got = api.get("/companies/srcid-s-acme").get_json()
    assert got["custom"] == {"tier": 1} and got["_id"] == company["_id"]
    assert api.delete("/companies/srcid-s-acme").get_json()["deletedCount"] == 1
    assert api.get("/companies/extid-acme").status_code == 404


def test_duplicate_external_id_is_409(api, company):
    r = api.post("/companies", json={"name": "Acme 2", "externalId": "acme"})
    assert r.status_code == 409 and r.get_json()["field"] == "externalId"


def test_bulk_upsert(api, company):
    r = api.put("/companies", json=[{"externalId": "acme", "name": "Acme Inc"},
                                    {"externalId": "beta", "name": "Beta"},
                                    {"externalId": "nameless"}])
    assert r.status_code == 206
    body = r.get_json()
    assert (body["created"], body["updated"]) == (1, 1)
    assert body["createdErrors"][0]["field"] == "name"
    assert {c["name"] for c in api.get("/companies").get_json()} == {"Acme Inc", "Beta"}


@pytest.mark.parametrize("path,row", [
    ("/companies", {"name": "Acme"}),
    ("/projects", {"name": "Rollout", "companyId": "extid-acme"}),
])
def test_a_refused_bulk_row_that_matched_a_record_is_an_update_error(api, company, path, row):
    """Companies follow the engine's bulk rule, as every model does: a row that matched a
    record and is refused is in ``updatedErrors``; one that matched nothing in
    ``createdErrors``; same reasons and fields for companies as for the rest."""
    if path != "/companies":
        assert api.post(path, json={**row, "externalId": "acme"}).status_code == 200
    r = api.put(path, json=[{"externalId": "acme", "name": " "},
                            {**row, "externalId": "new-one", "name": ""}])
    assert r.status_code == 206
    body = r.get_json()
    assert [(e["index"], e["reason"], e["field"]) for e in body["updatedErrors"]] == [
        (0, "invalid_field", "name")]
    assert [(e["index"], e["reason"], e["field"]) for e in body["createdErrors"]] == [
        (1, "missing_field", "name")]
    assert body["createdErrors"][0]["message"].startswith("name: a new ")


def test_rename_updates_company_name_of_its_end_users(api, company):
    api.post("/endusers", json={"externalId": "u1", "companyId": "extid-acme"})
    api.put("/companies/extid-acme", json={"name": "Acme Corp"})
    assert api.get("/endusers/extid-u1").get_json()["companyName"] == "Acme Corp"


def test_delete_removes_its_end_users(api, company):
    api.post("/endusers", json={"externalId": "u1", "companyId": "extid-acme"})
    body = api.delete("/companies/extid-acme").get_json()
    assert body["deletedEndusers"] == 1
    assert api.get("/endusers/extid-u1").status_code == 404


def test_list_and_lean(api, company):
    api.post("/companies", json={"name": "Beta", "externalId": "beta", "sourceId": "sb"})
    names = [c["name"] for c in api.get("/companies?sort=-name").get_json()]
    assert names == ["Beta", "Acme"]
    lean = api.get("/leancompanies?externalId=beta").get_json()
    assert len(lean) == 1 and set(lean[0]) == {"_id", "externalId", "sourceId", "name"}
    assert [c["name"] for c in api.get("/companies?externalId=acme").get_json()] == ["Acme"]


@pytest.mark.parametrize("body,field", [({"name": 5}, "name"), ({"name": "A", "domains": "x"},
                                        "domains"), ({"name": "A", "status": "vip"}, "status"),
                                        ({"name": "A", "custom": []}, "custom")])
def test_wrong_types_name_the_field(api, body, field):
    r = api.post("/companies", json=body)
    assert r.status_code == 400 and r.get_json()["field"] == field


@pytest.mark.parametrize("child", ["tasks", "endusers"])
@pytest.mark.parametrize("prefix,key", [("extid-", "externalId"), ("srcid-", "sourceId")])
def test_company_whose_key_ends_in_a_model_path_is_its_own(api, company, child, prefix, key):
    """``/companies/extid-a/tasks`` lists company a's tasks, unless a company's key is the
    whole ``a/tasks``: then the path is that company's (read, update, delete)."""
    odd = api.post("/companies", json={"name": "Odd", key: f"acme/{child}"}).get_json()
    path = f"/companies/{prefix}acme/{child}"
    assert api.get(path).get_json()["_id"] == odd["_id"]
    assert api.put(path, json={"phase": "onboarding"}).get_json()["phase"] == "onboarding"
    assert api.get(f"/companies/{odd['_id']}").get_json()["phase"] == "onboarding"
    assert api.delete(path).get_json()["deletedCount"] == 1
    assert api.get(f"/companies/{odd['_id']}").status_code == 404
    # without that company, the path is company acme's list again, and other methods are 405
    assert api.get(path).get_json() == [] if prefix == "extid-" else \
        api.get(path).status_code == 404
    assert api.put(path, json={"phase": "x"}).status_code == 405
