"""Decisions as data: every row's decision in the journal and in explain; journal responses,
links and filters; the delivery funnel; --admin-from."""

from __future__ import annotations

import time

import pytest

from mock_planhat import Config, create_app
from mock_planhat.cli import main

API = {"Authorization": "Bearer mock-api-token"}
TENANT = "mock-tenant-token"


@pytest.fixture
def acme(api):
    api.post("/companies", json={"name": "Acme", "externalId": "acme", "domains": ["acme.com"]})


def _last(client, **filters):
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return client.get(f"/__admin/requests?{query}").get_json()["requests"][-1]


def test_bulk_rows_record_their_decisions(client, api, acme):
    api.put("/endusers", json=[
        {"externalId": "u1", "email": "a@acme.com", "firstName": "Ann"},
        {"externalId": "u2", "email": "A@acme.com "},
        {"externalId": "u3", "email": "x@elsewhere.io", "companyId": "extid-acmee"},
    ])
    entry = _last(client, path="/endusers")
    assert entry["decisionsTotal"] == 3
    first, second, third = entry["decisions"]
    assert (first["outcome"], first["matchedBy"]) == ("created", None)
    # emailMatch attach (the default): the email found u1, and the row gave it u2
    assert (second["outcome"], second["matchedBy"]) == ("updated", "email")
    assert second["recordId"] == first["recordId"]
    assert second["changed"]["externalId"] == {"from": "u1", "to": "u2"}
    assert second["detail"]["matchedBy"] == "email"
    assert (third["outcome"], third["reason"]) == ("held", "no_company")
    assert third["nearMisses"] == [{"key": "companyId", "value": "extid-acmee",
                                    "why": "names no company"}]
    assert entry["response"]["status"] == 206
    assert entry["response"]["body"]["createdErrors"][0]["reason"] == "no_company"
    assert entry["response"]["headers"]["Content-Type"] == "application/json"

    api.put("/endusers/extid-u2", json={"lastName": "Lee", "custom": {"plan": "pro"}})
    update = _last(client, method="PUT", path="/endusers/*")["decisions"][0]
    assert (update["outcome"], update["matchedBy"]) == ("updated", "externalId")
    assert update["changed"] == {"lastName": {"from": None, "to": "Lee"},
                                 "name": {"from": "Ann", "to": "Ann Lee"},
                                 "custom.plan": {"from": None, "to": "pro"}}


def test_strict_email_match_records_the_near_miss(make_api):
    api = make_api(email_match="strict")
    api.post("/companies", json={"name": "Acme", "externalId": "acme", "domains": ["acme.com"]})
    api.put("/endusers", json=[{"externalId": "u1", "email": "a@acme.com"},
                               {"externalId": "u2", "email": "A@acme.com "}])
    entry = api.client.get("/__admin/requests?path=/endusers").get_json()["requests"][-1]
    first, second = entry["decisions"]
    assert (second["outcome"], second["matchedBy"]) == ("created", None)
    assert second["nearMisses"] == [{
        "key": "email", "value": "A@acme.com", "recordId": first["recordId"],
        "why": "same email, but externalId 'u1' (the row has 'u2'): another person "
               "(emailMatch: strict)"}]


def test_rejected_and_discarded_rows_are_explained(make_api):
    api = make_api(unassigned="discard", email_match="strict")  # strict: a shared email
    api.post("/companies", json={"name": "Acme", "externalId": "acme"})
    api.put("/endusers", json=[{"externalId": "a", "email": "s@x.io", "companyId": "extid-acme"},
                               {"externalId": "b", "email": "s@x.io", "companyId": "extid-acme"},
                               {"email": "s@x.io"},
                               {"externalId": "gone", "companyId": "extid-nope"}])
    story = api.client.get("/__admin/explain?externalId=gone").get_json()
    assert story["found"] == []
    [item] = story["history"]
    assert item["decision"]["outcome"] == "discarded"
    assert item["decision"]["reason"] == "no_company"
    assert item["entry"]["path"] == "/endusers"
    ambiguous = api.client.get("/__admin/explain?email=S@X.io").get_json()
    assert len(ambiguous["found"]) == 2
    rejected = [h["decision"] for h in ambiguous["history"]
                if h["decision"]["outcome"] == "rejected"]
    assert rejected[0]["reason"] == "ambiguous_email"
    assert len(rejected[0]["nearMisses"]) == 2


def test_explain_a_person_oldest_first_with_activities_and_assign(client, api, acme):
    api.put("/endusers", json=[{"externalId": "p1", "email": "p1@nowhere.io"}])
    pending = client.get("/__admin/pending").get_json()[0]
    client.post(f"/analytics/{TENANT}", json={"externalId": "nobody", "action": "Clicked"})
    client.post(f"/__admin/pending/{pending['_id']}/assign", json={"companyId": "extid-acme"})
    api.put("/endusers", json=[{"externalId": "p1", "firstName": "Pat"}])
    story = client.get("/__admin/explain?externalId=p1").get_json()
    assert [f["kind"] for f in story["found"]] == ["enduser"]
    outcomes = [h["decision"]["outcome"] for h in story["history"]]
    assert outcomes == ["held", "created", "updated"]  # assign turns pending into created
    assert story["history"][1]["entry"] is None
    assert story["history"][1]["via"] == f"POST /__admin/pending/{pending['_id']}/assign"
    ids = [h["entryId"] for h in story["history"]]
    assert ids == sorted(ids)
    by_id = client.get(f"/__admin/explain?id={pending['_id']}").get_json()
    assert [h["decision"]["outcome"] for h in by_id["history"]] == outcomes
    nobody = client.get("/__admin/explain?externalId=nobody").get_json()
    assert nobody["history"][0]["decision"]["kind"] == "activity"
    assert nobody["history"][0]["decision"]["reason"] == "unknown_user"


def test_explain_keeps_every_row_of_one_request_and_the_newest_ten_a_key(client, api, acme):
    # Decisions are kept packed, one group a request: two rows of one bulk about one person
    # are both in their story, and a key keeps the newest 10 decisions.
    api.put("/endusers", json=[{"externalId": "r1", "email": "r1@acme.com"},
                               {"externalId": "r1", "firstName": "Rae"}])
    story = client.get("/__admin/explain?externalId=r1").get_json()
    assert [(h["decision"]["index"], h["decision"]["outcome"]) for h in story["history"]] == [
        (0, "created"), (1, "updated")]
    assert story["history"][0]["entryId"] == story["history"][1]["entryId"]
    for n in range(11):
        api.put("/endusers", json=[{"externalId": "r1", "custom": {"n": n}}])
    history = client.get("/__admin/explain?externalId=r1").get_json()["history"]
    assert len(history) == 10
    assert [h["decision"]["changed"]["custom.n"]["to"] for h in history] == list(range(1, 11))
    assert history[0]["decision"]["changed"]["custom.n"]["from"] == 0
    client.post(f"/analytics/bulk/{TENANT}", json=[
        {"externalId": "r1", "action": "Opened"}, {"externalId": "nobody", "action": "A"},
        {"externalId": "nobody", "action": "B"}])
    rejected = client.get("/__admin/explain?externalId=nobody").get_json()["history"]
    assert [(h["decision"]["index"], h["decision"]["reason"]) for h in rejected] == [
        (1, "unknown_user"), (2, "unknown_user")]
    entry = _last(client, path="/analytics/bulk/*")
    assert [d["outcome"] for d in entry["decisions"]] == ["created", "rejected", "rejected"]
    assert entry["decisions"][0]["row"] == {"externalId": "r1", "action": "Opened"}
    assert entry["decisions"][0]["enduserId"] == story["found"][0]["record"]["_id"]


def test_explain_a_company(client, api, acme):
    api.put("/companies", json=[{"externalId": "acme", "name": "Acme Inc"}])
    story = client.get("/__admin/explain?externalId=acme").get_json()
    assert [f["kind"] for f in story["found"]] == ["company"]
    decisions = [h["decision"] for h in story["history"]]
    assert [d["outcome"] for d in decisions] == ["created", "updated"]
    assert decisions[1]["changed"]["name"] == {"from": "Acme", "to": "Acme Inc"}


@pytest.mark.parametrize("query, field", [
    ("", "externalId"), ("externalId=a&email=b", "externalId"), ("name=x", "name"),
    ("externalId=a&id=", "id"),
])
def test_explain_needs_exactly_one_key(client, query, field):
    response = client.get(f"/__admin/explain?{query}")
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_explain_unknown_tenant_is_404(client):
    response = client.get("/__admin/explain?externalId=a&tenant=nope")
    assert response.status_code == 404 and response.get_json()["field"] == "tenant"


def test_segment_call_links_to_the_requests_it_caused(client, acme):
    client.post("/v1/batch", json={"writeKey": TENANT, "batch": [
        {"type": "identify", "userId": "s1", "traits": {"email": "s1@acme.com"}},
        {"type": "track", "userId": "s1", "event": "Clicked"},
        {"type": "identify", "anonymousId": "anon-only"},
    ]})
    entries = client.get("/__admin/requests").get_json()["requests"]
    outer = next(e for e in entries if e["path"] == "/v1/batch")
    assert outer["caused"], outer
    children = [e for e in entries if e["id"] in outer["caused"]]
    assert {e["path"] for e in children} >= {"/endusers", f"/analytics/bulk/{TENANT}"}
    assert all(e["parent"] == outer["id"] for e in children)
    assert all(e["id"] < outer["id"] or e["parent"] for e in children)
    assert outer["response"]["body"] == {"success": True}


def test_segment_skips_are_decisions(client):
    client.post("/v1/alias", json={"writeKey": TENANT, "userId": "k2", "previousId": "k1"})
    story = client.get("/__admin/explain?externalId=k2").get_json()
    [item] = story["history"]
    assert item["entry"]["path"] == "/v1/alias"
    decision = item["decision"]
    assert (decision["kind"], decision["outcome"], decision["reason"]) == \
        ("segment", "discarded", "unknown_user")
    assert decision["row"] == {"userId": "k2", "type": "alias"}


def test_journal_filters(client, api, acme):
    api.get("/endusers")
    api.get("/endusers/nope")
    api.put("/endusers", json=[{"externalId": "f1", "email": "f1@acme.com"}])
    before = time.time()
    time.sleep(0.01)
    api.get("/companies")

    def paths(query):
        response = client.get(f"/__admin/requests?{query}")
        assert response.status_code == 200, response.get_json()
        return [e["path"] for e in response.get_json()["requests"]]

    assert paths("method=put") == ["/endusers"]
    assert paths("path=/endusers*") == ["/endusers", "/endusers/nope", "/endusers"]
    assert paths("status=404") == ["/endusers/nope"]
    assert paths("status=4xx") == ["/endusers/nope"]
    assert paths(f"since={before}") == ["/companies"]
    assert paths("limit=2") == ["/companies", "/endusers"]
    assert paths("limit=2&order=newest") == ["/companies", "/endusers"]
    assert paths("limit=1&offset=1&order=newest") == ["/endusers"]
    assert paths(f"tenant={TENANT}&method=GET&limit=1") == ["/endusers"]
    page = client.get("/__admin/requests?path=/endusers*&limit=1").get_json()
    assert (page["matched"], page["limit"], page["offset"]) == (3, 1, 0)


@pytest.mark.parametrize("query, field", [
    ("methd=GET", "methd"), ("status=abc", "status"), ("status=99", "status"),
    ("since=yesterday", "since"), ("limit=-1", "limit"), ("offset=x", "offset"),
    ("order=random", "order"), ("method=", "method"), ("since=2024-06-01T12:00:00", "since"),
    ("since=1e5", "since"),
])
def test_journal_filter_errors_are_400(client, query, field):
    response = client.get(f"/__admin/requests?{query}")
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_journal_response_bodies_are_bounded(client, api):
    rows = [{"externalId": f"big{i}", "email": f"big{i}@x.io", "title": "t" * 200}
            for i in range(400)]
    api.put("/endusers", json=rows)
    entry = _last(client, path="/endusers")
    assert entry["response"]["body"]["truncated"] is True
    assert entry["decisionsTotal"] == 400 and len(entry["decisions"]) == 100


def test_funnel_counts_each_step(client, acme):
    client.post("/v1/batch", json={"writeKey": TENANT, "batch": [
        {"type": "identify", "userId": "f1", "traits": {"email": "f1@acme.com"}},
        {"type": "identify", "userId": "f2", "traits": {"email": "f2@nowhere.io"}},
        {"type": "screen", "userId": "f1", "name": "Home"},
        {"type": "track", "anonymousId": "x", "event": "Anon"},
        {"type": "identify"},
    ]})
    funnel = client.get("/__admin/funnel").get_json()
    steps = {s["step"]: s for s in funnel["steps"]}
    assert steps["received"]["count"] == 5
    skipped = {r["reason"]: r for r in steps["skipped"]["reasons"]}
    assert skipped["no_user_anon_id"]["count"] == 1
    assert skipped["no_user_anon_id"]["samples"] == [{"type": "identify"}]
    assert steps["held"]["count"] == 1
    applied = {r["reason"]: r["count"] for r in steps["applied"]["reasons"]}
    assert applied["enduser created"] == 1 and applied["company created"] == 1
    assert sum(steps["skipped"]["reasons"][i]["count"]
               for i in range(len(steps["skipped"]["reasons"]))) == steps["skipped"]["count"]


def test_admin_from_opens_the_admin_api_to_a_network():
    app = create_app(Config(admin_from=["172.17.0.0/16"]))
    client = app.test_client()
    inside = client.get("/__admin/health", environ_base={"REMOTE_ADDR": "172.17.0.5"})
    outside = client.get("/__admin/health", environ_base={"REMOTE_ADDR": "10.0.0.5"})
    page = client.get("/", environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert inside.status_code == 200
    assert outside.status_code == 403 and page.status_code == 403
    plain = create_app(Config()).test_client()
    assert plain.get("/__admin/health", environ_base={"REMOTE_ADDR": "172.17.0.5"}) \
        .status_code == 403


def test_admin_from_rejects_a_bad_network(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--admin-from", "172.17.0.0/99"])
    assert exc.value.code == 2
    assert "--admin-from" in capsys.readouterr().err
    with pytest.raises(ValueError, match="admin-from"):
        Config(admin_from=["nope"])
