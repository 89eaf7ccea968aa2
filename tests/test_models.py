"""Every model of the table, through HTTP: the six operations, keys, company references, paging,
filters, bad input (a 4xx naming the field, never a 5xx) — one set of tests generated per model,
plus the models' special rules."""

from __future__ import annotations

import json

import pytest

from mock_planhat.models import MODELS, Model

IDS = [m.path for m in MODELS]


@pytest.fixture
def acme(api):
    response = api.post("/companies", json={"name": "Acme", "externalId": "acme"})
    assert response.status_code == 200
    return response.get_json()


def new_row(model: Model, **extra) -> dict:
    """A valid new row for ``model``: its example, its required fields and its company."""
    row = dict(model.example)
    if model.company_owned:
        row[model.company_field] = "extid-acme"
    for name in model.required:
        row.setdefault(name, f"{name}-value")
    return {**row, **extra}


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_six_operations(api, acme, model):
    base = f"/{model.path}"
    made = api.post(base, json=new_row(model, externalId="e-1", sourceId="s-1"))
    assert made.status_code == 200, made.get_json()
    record = made.get_json()
    assert len(record["_id"]) == 24 and record["externalId"] == "e-1"
    assert record["createDate"] == record["updatedAt"]
    if model.company_owned:
        assert record[model.company_field] == acme["_id"]
        assert record["companyName"] == "Acme"
    for key in (record["_id"], "extid-e-1", "srcid-s-1"):
        got = api.get(f"{base}/{key}")
        assert got.status_code == 200 and got.get_json() == record
    listed = api.get(base)
    assert listed.status_code == 200 and listed.get_json() == [record]
    changed = api.put(f"{base}/extid-e-1", json={"custom": {"tier": "gold"}})
    assert changed.status_code == 200
    assert changed.get_json()["custom"] == {"tier": "gold"}
    assert api.get(f"{base}/{record['_id']}").get_json()["custom"] == {"tier": "gold"}
    state = api.state()
    assert [r["_id"] for r in state[model.path]] == [record["_id"]]
    gone = api.delete(f"{base}/srcid-s-1")
    assert gone.status_code == 200 and gone.get_json() == {"n": 1, "ok": 1, "deletedCount": 1}
    assert api.get(f"{base}/{record['_id']}").status_code == 404
    assert api.get(base).get_json() == []


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_stamps_read_the_tenants_clock(api, acme, model):
    """createDate and updatedAt follow the tenant's test clock, as every stamp the fake makes."""
    assert api.client.post("/__admin/clock", json={"now": "2024-06-01T00:00:00Z"}
                           ).status_code == 200
    made = api.post(f"/{model.path}", json=new_row(model, externalId="e-1")).get_json()
    assert made["createDate"] == made["updatedAt"] == "2024-06-01T00:00:00.000Z"
    api.client.post("/__admin/clock", json={"advance": "P1D"})
    changed = api.put(f"/{model.path}/extid-e-1", json={"custom": {"tier": "gold"}}).get_json()
    assert changed["updatedAt"] == "2024-06-02T00:00:00.000Z"
    assert changed["createDate"] == "2024-06-01T00:00:00.000Z"


@pytest.mark.parametrize("model", [m for m in MODELS if m.bulk], ids=lambda m: m.path)
def test_bulk_upsert(api, acme, model):
    base = f"/{model.path}"
    first = api.put(base, json=[new_row(model, externalId="a"), new_row(model, sourceId="b")])
    body = first.get_json()
    assert first.status_code == 200, body
    assert body["created"] == 2 and len(body["upsertedIds"]) == 2
    assert [k.get("externalId") for k in body["insertsKeys"]] == ["a", None]
    a_id, b_id = body["upsertedIds"]
    second = api.put(base, json=[
        {"externalId": "a", "custom": {"n": 1}},       # matched by externalId
        {"sourceId": "b", "externalId": "b-ext"},      # matched by sourceId
        {"_id": a_id, "custom": {"n": 1}},             # matched by _id, nothing new
        {"_id": "0" * 24, "externalId": "z"},          # an _id the server never gave
        {"externalId": "c", "custom": "x"},            # a wrong type
    ])
    body = second.get_json()
    assert second.status_code == 206, body
    assert body["updated"] == 2 and body["nonupdates"] == 1 and body["created"] == 0
    assert body["modified"] == [a_id, b_id]
    errors = {e["index"]: e for e in body["createdErrors"] + body["updatedErrors"]}
    assert errors[3]["reason"] == "unknown_id" and errors[3]["field"] == "_id"
    assert errors[4]["field"] == "custom"
    assert api.get(f"{base}/extid-b-ext").get_json()["_id"] == b_id
    assert len(api.get(base).get_json()) == 2  # the refused rows created nothing
    report = api.client.get("/__admin/report?reason=unknown_id").get_json()
    assert report["counts"]["unknown_id"] == 1


@pytest.mark.parametrize("model", [m for m in MODELS if m.bulk], ids=lambda m: m.path)
def test_bulk_is_capped_at_5000_rows(api, model):
    response = api.put(f"/{model.path}", json=[{}] * 5001)
    assert response.status_code == 400 and response.get_json()["field"] == "body"


@pytest.mark.parametrize("model", [m for m in MODELS if not m.bulk], ids=lambda m: m.path)
def test_no_bulk_upsert(api, model):
    response = api.put(f"/{model.path}", json=[new_row(model)])
    assert response.status_code == 405 and "PUT" not in response.headers["Allow"]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_required_fields_are_named(api, acme, model):
    for name in model.required:
        row = new_row(model)
        del row[name]
        response = api.post(f"/{model.path}", json=row)
        assert response.status_code == 400, (name, response.get_json())
        assert response.get_json()["field"] == name


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_server_owns_ids(api, acme, model):
    response = api.post(f"/{model.path}", json=new_row(model, _id="a" * 24))
    assert response.status_code == 400 and response.get_json()["field"] == "_id"
    made = api.post(f"/{model.path}", json=new_row(model)).get_json()
    moved = api.put(f"/{model.path}/{made['_id']}", json={"_id": "b" * 24})
    assert moved.status_code == 400 and moved.get_json()["field"] == "_id"


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_keys_are_unique_per_model(api, acme, model):
    assert api.post(f"/{model.path}", json=new_row(model, externalId="k")).status_code == 200
    again = api.post(f"/{model.path}", json=new_row(model, externalId="k"))
    assert again.status_code == 409 and again.get_json()["field"] == "externalId"
    other = api.post(f"/{model.path}", json=new_row(model, sourceId="s")).get_json()
    clash = api.put(f"/{model.path}/{other['_id']}", json={"externalId": "k"})
    assert clash.status_code == 409 and clash.get_json()["field"] == "externalId"


BAD_VALUES = [
    ("custom", "not an object"),
    ("externalId", 12),
    ("externalId", ""),
    ("name", {"deep": 1}),
    ("unknownField", json.loads("[" * 40 + "]" * 40)),  # nested deeper than the fake keeps
    ("unknownField", "x" * 70_000),
]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_bad_fields_are_400s_naming_the_field(api, acme, model):
    made = api.post(f"/{model.path}", json=new_row(model, externalId="x")).get_json()
    for field, value in BAD_VALUES:
        for method, path in (("post", f"/{model.path}"), ("put", f"/{model.path}/extid-x")):
            response = getattr(api, method)(path, json=new_row(model, **{field: value}))
            assert response.status_code == 400, (field, method, response.get_json())
            assert response.get_json()["field"] == field
        if model.bulk:
            bulk = api.put(f"/{model.path}", json=[new_row(model, **{field: value})])
            if bulk.status_code == 400:  # too deep for the parser: the whole body, by its path
                assert bulk.get_json()["field"] == f"[0].{field}"
            else:
                assert bulk.status_code == 206
                assert bulk.get_json()["createdErrors"][0]["field"] == field
    assert api.state()[model.path] == [made]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_bad_bodies_and_queries(api, model):
    base = f"/{model.path}"
    assert api.post(base, data="{", content_type="application/json").status_code == 400
    assert api.post(base, json=[1]).status_code == 400
    assert api.post(base, data="a=1", content_type="text/plain").status_code == 415
    for query, name in (("limit=ten", "limit"), ("offset=-1", "offset"), ("nope=1", "nope"),
                        ("externalId=", "externalId"), ("sort=-", "sort")):
        response = api.get(f"{base}?{query}")
        assert response.status_code == 400 and response.get_json()["field"] == name, query
    assert api.client.get(base).status_code == 401
    assert api.get(f"{base}/extid-none").status_code == 404


@pytest.mark.parametrize("model", [m for m in MODELS if m.company_owned], ids=lambda m: m.path)
def test_company_references(api, acme, model):
    base = f"/{model.path}"
    missing = api.post(base, json=new_row(model, **{model.company_field: "extid-nobody"}))
    assert missing.status_code == 404  # as for end users: the named company is not found
    assert missing.get_json()["field"] == model.company_field
    bulk = api.put(base, json=[new_row(model, **{model.company_field: "srcid-nobody"})]) \
        if model.bulk else None
    if bulk is not None:
        assert bulk.status_code == 206
        assert bulk.get_json()["createdErrors"][0]["reason"] == "unknown_company"
    made = api.post(base, json=new_row(model, **{model.company_field: acme["_id"]})).get_json()
    api.put("/companies/extid-acme", json={"name": "Acme Renamed"})
    assert api.get(f"{base}/{made['_id']}").get_json()["companyName"] == "Acme Renamed"
    other = api.post("/companies", json={"name": "Other", "externalId": "other"}).get_json()
    api.post(base, json=new_row(model, **{model.company_field: "extid-other"}))
    mine = api.get(f"{base}?{model.company_field}=extid-acme").get_json()
    assert [r["_id"] for r in mine] == [made["_id"]]
    both = api.get(f"{base}?{model.company_field}={acme['_id']},{other['_id']}").get_json()
    assert len(both) == 2
    moved = api.put(f"{base}/{made['_id']}", json={model.company_field: "extid-other"})
    assert moved.get_json()["companyName"] == "Other"
    assert api.state()[model.path][0]["companyId" if model.company_field == "companyId"
                                      else model.company_field] in (acme["_id"], other["_id"])


@pytest.mark.parametrize("model", [m for m in MODELS if m.company_owned], ids=lambda m: m.path)
def test_deleting_the_company(api, acme, model):
    made = api.post(f"/{model.path}", json=new_row(model)).get_json()
    response = api.delete("/companies/extid-acme")
    if model.on_company_delete == "refuse":
        assert response.status_code == 409 and model.path in response.get_json()["message"]
        api.delete(f"/{model.path}/{made['_id']}")
        assert api.delete("/companies/extid-acme").status_code == 200
    else:
        assert response.status_code == 200
        assert api.get(f"/{model.path}/{made['_id']}").status_code == 404
    assert api.state()[model.path] == []


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_paging_sort_select(api, acme, model):
    for n in (3, 1, 2):
        api.post(f"/{model.path}", json=new_row(model, externalId=f"e{n}", rank=n))
    ranks = [r["rank"] for r in api.get(f"/{model.path}?sort=-rank").get_json()]
    assert ranks == [3, 2, 1]
    page = api.get(f"/{model.path}?sort=rank&offset=1&limit=1&select=rank").get_json()
    assert page == [{"_id": page[0]["_id"], "rank": 2}]
    capped = api.get(f"/{model.path}?limit={model.max_limit + 1}")
    assert capped.status_code == 200 and len(capped.get_json()) == 3
    by_ext = api.get(f"/{model.path}?externalId=e1,e3&sort=rank").get_json()
    assert [r["rank"] for r in by_ext] == [1, 3]


def test_reset_empties_every_model(api, acme):
    for model in MODELS:
        assert api.post(f"/{model.path}", json=new_row(model)).status_code == 200
    api.client.post("/__admin/reset")
    state = api.state()
    assert all(state[m.path] == [] for m in MODELS)


def test_tenants_do_not_share_records(api, client, acme):
    other = client.post("/__admin/tenants").get_json()
    headers = {"Authorization": f"Bearer {other['apiToken']}"}
    api.post("/tasks", json=new_row(MODELS_BY["tasks"]))
    assert client.get("/tasks", headers=headers).get_json() == []
    assert api.state(other["tenantToken"])["tasks"] == []


MODELS_BY = {m.path: m for m in MODELS}


# ----- special rules -------------------------------------------------------------------------
def test_conversation_types(api, acme):
    odd = api.post("/conversations", json={"companyId": "extid-acme", "type": "fax"}).get_json()
    assert odd["type"] == "note" and odd["requestedType"] == "fax"
    plain = api.post("/conversations", json={"companyId": "extid-acme"}).get_json()
    assert plain["type"] == "note"
    mail = api.post("/conversations", json={"companyId": "extid-acme", "type": "email"})
    assert mail.get_json()["type"] == "email"
    notes = api.get("/conversations?type=note").get_json()
    assert {n["_id"] for n in notes} == {odd["_id"], plain["_id"]}


def test_nps_score_and_end_user(api, acme):
    user = api.post("/endusers", json={"email": "ada@acme.com", "companyId": "extid-acme"})
    user = user.get_json()
    for score in (-1, 11, 7.5, "9", True):
        bad = api.post("/nps", json={"email": "ada@acme.com", "score": score})
        assert bad.status_code == 400 and bad.get_json()["field"] == "score", score
    made = api.post("/nps", json={"email": "ADA@acme.com", "score": 10.0, "sourceId": "r-1"})
    record = made.get_json()
    assert record["euId"] == user["_id"] and record["cId"] == acme["_id"]
    assert record["score"] == 10 and isinstance(record["score"], int)
    assert record["companyName"] == "Acme"
    again = api.put("/nps", json=[{"sourceId": "r-1", "score": 0, "email": "ADA@acme.com"}])
    assert again.get_json()["updated"] == 1
    assert api.get("/nps/srcid-r-1").get_json()["score"] == 0
    stranger = api.post("/nps", json={"email": "who@else.org", "score": 5}).get_json()
    assert "euId" not in stranger and "cId" not in stranger


def test_deleting_an_end_user_keeps_their_nps_responses_with_euid_null(api, acme):
    """Like a company's links: the response stays (it is the company's), its euId becomes null;
    an NPS response naming an end user that does not exist is a 404 naming euId."""
    ada = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "ada",
                                      "companyId": "extid-acme"}).get_json()
    made = api.post("/nps", json={"email": "ada@acme.com", "score": 9}).get_json()
    by_key = api.post("/nps", json={"email": "x@y.org", "score": 3, "euId": "extid-ada"})
    assert by_key.get_json()["euId"] == ada["_id"]
    assert api.delete("/endusers/extid-ada").status_code == 200
    for record in (made, by_key.get_json()):
        kept = api.get(f"/nps/{record['_id']}").get_json()
        assert kept["euId"] is None and kept["score"] == record["score"]
    assert api.get("/nps?euId=" + ada["_id"]).get_json() == []
    bad = api.post("/nps", json={"email": "x@y.org", "score": 3, "euId": "extid-ada"})
    assert bad.status_code == 404 and bad.get_json()["field"] == "euId"
    assert bad.get_json()["error"] == "unknown_user"
    assert "no end user matches 'extid-ada'" in bad.get_json()["message"]


def test_issue_links_are_resolved_and_kept_in_step(api, acme):
    """An Issue's companyIds and enduserIds (Planhat's spelling; endUserIds too) take any key,
    are stored as _ids, refuse a key that names nothing (404 naming the item) and lose the id
    of a record deleted later."""
    beta = api.post("/companies", json={"name": "Beta", "sourceId": "b"}).get_json()
    ada = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "ada",
                                      "companyId": "extid-acme"}).get_json()
    bo = api.post("/endusers", json={"email": "bo@beta.com", "externalId": "bo",
                                     "companyId": "srcid-b"}).get_json()
    made = api.post("/issues", json={
        "title": "Export fails", "externalId": "i1",
        "companyIds": ["extid-acme", "srcid-b", acme["_id"]],
        "enduserIds": ["extid-ada", bo["_id"]], "endUserIds": ["extid-bo"]}).get_json()
    assert made["companyIds"] == [acme["_id"], beta["_id"]]
    assert made["enduserIds"] == [ada["_id"], bo["_id"]] and made["endUserIds"] == [bo["_id"]]
    for field, value, reason in (("companyIds", ["extid-acme", "extid-nope"], "unknown_company"),
                                 ("enduserIds", ["extid-nobody"], "unknown_user"),
                                 ("endUserIds", ["acme"], "unknown_user")):
        bad = api.post("/issues", json={"title": "x", field: value})
        assert bad.status_code == 404, field
        index = len(value) - 1
        assert bad.get_json()["field"] == f"{field}[{index}]"
        assert bad.get_json()["error"] == reason and "matches" in bad.get_json()["message"]
        bulk = api.put("/issues", json=[{"externalId": "i1", field: value}])
        assert bulk.status_code == 206
        error = bulk.get_json()["updatedErrors"][0]
        assert error["field"] == f"{field}[{index}]" and error["reason"] == reason
    api.put("/companies/extid-acme", json={"name": "Acme Renamed"})
    assert api.get("/issues/extid-i1").get_json()["companyIds"] == [acme["_id"], beta["_id"]]
    assert api.delete("/endusers/extid-bo").status_code == 200
    kept = api.get("/issues/extid-i1").get_json()
    assert kept["enduserIds"] == [ada["_id"]] and kept["endUserIds"] == []
    assert api.delete("/companies/extid-acme").status_code == 200  # ada goes with it
    kept = api.get("/issues/extid-i1").get_json()
    assert kept["companyIds"] == [beta["_id"]] and kept["enduserIds"] == []


def test_conversation_endusers_are_end_user_ids_and_users_are_kept_as_sent(api, acme):
    """Planhat's docs: a conversation's ``endusers`` are end-user ids (resolved like an Issue's
    links: any key, stored as the _id, a key naming nothing is a 404 naming the item, a deleted
    end user leaves the list); ``users`` are Planhat users, kept as sent."""
    ada = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "ada",
                                      "companyId": "extid-acme"}).get_json()
    made = api.post("/conversations", json={
        "companyId": "extid-acme", "externalId": "c1", "endusers": ["extid-ada", ada["_id"]],
        "users": ["planhat-user-1"]})
    assert made.status_code == 200, made.get_json()
    assert made.get_json()["endusers"] == [ada["_id"]]
    assert made.get_json()["users"] == ["planhat-user-1"]
    bad = api.post("/conversations", json={"companyId": "extid-acme",
                                           "endusers": ["extid-ada", "extid-nobody"]})
    assert bad.status_code == 404 and bad.get_json()["field"] == "endusers[1]"
    assert bad.get_json()["error"] == "unknown_user"
    bulk = api.put("/conversations", json=[{"externalId": "c1", "endusers": ["extid-nobody"]}])
    assert bulk.status_code == 206
    assert bulk.get_json()["updatedErrors"][0]["field"] == "endusers[0]"
    assert api.get("/conversations/extid-c1").get_json()["endusers"] == [ada["_id"]]
    assert api.delete("/endusers/extid-ada").status_code == 200
    kept = api.get("/conversations/extid-c1").get_json()
    assert kept["endusers"] == [] and kept["users"] == ["planhat-user-1"]


def test_an_issue_needs_a_title_to_be_created_not_to_be_updated(api):
    """Planhat's docs: an Issue's ``title`` is "required to create an issue"."""
    for body in ({"status": "open"}, {"title": "  ", "status": "open"}):
        response = api.post("/issues", json=body)
        assert response.status_code == 400 and response.get_json()["field"] == "title"
    bulk = api.put("/issues", json=[{"externalId": "i1", "status": "open"},
                                    {"externalId": "i2", "title": "Export fails"}])
    assert bulk.status_code == 206 and bulk.get_json()["created"] == 1
    assert bulk.get_json()["createdErrors"][0]["field"] == "title"
    changed = api.put("/issues/extid-i2", json={"status": "closed"})
    assert changed.status_code == 200 and changed.get_json()["title"] == "Export fails"


def test_invoice_dates_are_days_since_1970(api, acme):
    made = api.post("/invoices", json={"companyId": "extid-acme", "date": 10,
                                       "dueDate": 20000.0, "paidDate": 19875})
    record = made.get_json()
    assert (record["date"], record["dueDate"], record["paidDate"]) == (10, 20000, 19875)
    assert isinstance(record["dueDate"], int)
    for value in ("2024-06-01", 19800.5, True, 10**7):
        bad = api.post("/invoices", json={"companyId": "extid-acme", "date": value})
        assert bad.status_code == 400 and bad.get_json()["field"] == "date", value


def test_task_main_type(api, acme):
    bad = api.post("/tasks", json={"companyId": "extid-acme", "mainType": "chore"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "mainType"


def test_dimension_data_reads_back(api, acme, client):
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u1",
                                "companyId": "extid-acme"})
    rows = [{"dimensionId": "logins", "value": 3, "externalId": "acme",
             "date": "2024-01-10T00:00:00Z"},
            {"dimensionId": "logins", "value": 4, "externalId": "u1", "model": "EndUser",
             "date": "2024-01-20"},
            {"dimensionId": "seats", "value": 9, "externalId": "nobody", "date": "2024-01-15"}]
    api.post("/assets", json={"name": "Plant", "externalId": "a1", "companyId": "extid-acme"})
    rows.append({"dimensionId": "uptime", "value": 99, "externalId": "a1", "model": "Asset",
                 "date": "2024-02-01"})
    assert client.post("/dimensiondata/mock-tenant-token", json=rows).status_code == 200
    everything = api.get("/dimensiondata").get_json()
    assert [r["companyName"] for r in everything] == ["Acme", "Acme", None, "Acme"]
    mine = api.get("/dimensiondata?cid=extid-acme&dimid=logins").get_json()
    assert [r["value"] for r in mine] == [3, 4] and mine[0]["companyId"] == acme["_id"]
    # 2024-01-15 is day 19737 since 1970
    early = api.get("/dimensiondata?from=19730&to=19737").get_json()
    assert [r["value"] for r in early] == [3, 9]
    assert api.get("/dimensiondata?cid=extid-none").get_json() == []
    assert api.get("/dimensiondata?cid=extid-none&offset=-1").status_code == 400
    assert api.get("/dimensiondata?limit=1&offset=1").get_json()[0]["value"] == 4
    for query, name in (("from=soon", "from"), ("dim=1", "dim")):
        bad = api.get(f"/dimensiondata?{query}")
        assert bad.status_code == 400 and bad.get_json()["field"] == name
