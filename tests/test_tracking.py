"""The tracking host: /analytics, /analytics/bulk and /dimensiondata, keyed by tenant token."""

from __future__ import annotations

import pytest

from mock_planhat.config import DEFAULT_TENANT_TOKEN as TENANT


def test_activity_is_stored_against_its_end_user(api, company):
    user = api.post("/endusers", json={"externalId": "u1", "email": "a@acme.com",
                                       "companyId": "extid-acme"}).get_json()
    r = api.client.post(f"/analytics/{TENANT}", json={
        "externalId": "u1", "action": "Logged In", "info": {"plan": "pro"},
        "date": "2026-01-02T03:04:05Z"})
    assert r.status_code == 200
    (activity,) = api.state()["activities"]
    assert activity["enduserId"] == user["_id"] and activity["companyId"] == company["_id"]
    assert activity["action"] == "Logged In" and activity["weight"] == 1
    assert activity["date"] == "2026-01-02T03:04:05Z" and activity["info"] == {"plan": "pro"}


def test_activity_by_email_and_default_date(api, company):
    api.post("/endusers", json={"externalId": "u1", "email": "a@acme.com",
                                "companyId": "extid-acme"})
    api.client.post(f"/analytics/{TENANT}", json={"email": "A@ACME.com", "action": "x"})
    (activity,) = api.state()["activities"]
    assert activity["externalId"] == "u1" and activity["date"].endswith("Z")


def test_bulk_activities(api, company):
    api.post("/endusers", json={"externalId": "u1", "companyId": "extid-acme"})
    rows = [{"externalId": "u1", "action": f"a{i}", "weight": i} for i in range(5)]
    r = api.client.post(f"/analytics/bulk/{TENANT}", json=rows)
    assert r.status_code == 200 and r.get_json()["processed"] == 5
    assert [a["weight"] for a in api.state()["activities"]] == [0, 1, 2, 3, 4]


def test_unknown_user_answers_200_and_goes_to_report(api):
    r = api.client.post(f"/analytics/{TENANT}", json={"externalId": "ghost", "action": "x"})
    assert r.status_code == 200
    state = api.state()
    assert state["activities"] == []
    assert state["report"][0]["reason"] == "unknown_user"
    assert state["report"][0]["payload"] == {"externalId": "ghost", "action": "x"}


def test_bad_activity_row_answers_200_and_goes_to_report(api):
    r = api.client.post(f"/analytics/bulk/{TENANT}", json=[{"action": "no id"},
                                                          {"externalId": 5}])
    assert r.status_code == 200
    reasons = [e["reason"] for e in api.state()["report"]]
    assert reasons == ["missing_identifier", "invalid_field"]


def test_unknown_tenant_answers_200_and_is_reported(client):
    r = client.post("/analytics/not-a-tenant", json={"externalId": "u1", "action": "x"})
    assert r.status_code == 200
    assert r.get_json()["notApplied"][0]["reason"] == "unknown_tenant"
    entries = client.get("/__admin/report").get_json()["entries"]
    assert entries[-1]["reason"] == "unknown_tenant" and entries[-1]["tenant"] == "not-a-tenant"


def _report(client, reason):
    return client.get(f"/__admin/report?reason={reason}").get_json()["entries"]


@pytest.mark.parametrize("path", [f"/analytics/{TENANT}", f"/analytics/bulk/{TENANT}",
                                  f"/dimensiondata/{TENANT}"])
@pytest.mark.parametrize(("data", "ctype"), [
    (b"{nope", "application/json"), (b"", "application/json"),
    (b"email=a%40acme.com", "application/x-www-form-urlencoded"), (b"<a/>", "text/xml"),
    (b"\xff\xfe", None)], ids=["broken", "empty", "form", "xml", "binary"])
def test_a_body_that_is_not_json_is_answered_200_and_reported(client, path, data, ctype):
    """Planhat's tracking paths are data sinks: no 4xx, but nothing goes missing silently."""
    r = client.post(path, data=data, content_type=ctype)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["processed"] == 0
    assert (body.get("notApplied") or body.get("errors"))[0]["message"].startswith("body:")
    (entry,) = _report(client, "invalid_json")
    assert entry["source"] == path
    assert entry["payload"] == {"body": data.decode("utf-8", "replace"), "truncated": False,
                                "bytes": len(data), "contentType": ctype}


def test_a_bad_body_is_kept_bounded_in_the_report(client):
    data = b"x" * 100_000
    assert client.post(f"/analytics/{TENANT}", data=data, content_type="text/plain"
                       ).status_code == 200
    (entry,) = _report(client, "invalid_json")
    assert entry["payload"]["truncated"] is True and entry["payload"]["bytes"] == 100_000
    assert len(entry["payload"]["body"]) == 64 * 1024 - 1024  # --payload-bytes less 1 KB


def test_json_under_another_content_type_is_applied(api, company):
    """Browsers' navigator.sendBeacon posts JSON as text/plain."""
    api.post("/endusers", json={"externalId": "u1", "companyId": "extid-acme"})
    r = api.client.post(f"/analytics/{TENANT}", data='{"externalId": "u1", "action": "x"}',
                        content_type="text/plain;charset=UTF-8")
    assert r.status_code == 200 and r.get_json()["processed"] == 1
    assert len(api.state()["activities"]) == 1 and api.state()["report"] == []


def test_a_body_of_the_wrong_shape_is_answered_200_and_reported(client):
    r = client.post(f"/analytics/bulk/{TENANT}", json={"not": "an array"})
    assert r.status_code == 200 and r.get_json()["notApplied"][0]["reason"] == "invalid_body"
    r = client.post(f"/analytics/{TENANT}", json=[{"externalId": "u1"}])
    assert r.status_code == 200
    r = client.post(f"/dimensiondata/{TENANT}", json="logins")
    assert r.status_code == 200 and r.get_json()["errors"][0]["field"] == "body"
    assert [e["payload"]["body"] for e in _report(client, "invalid_body")] == [
        '{"not": "an array"}', '[{"externalId": "u1"}]', '"logins"']


def test_rest_paths_keep_their_4xx(api):
    r = api.client.put("/endusers", data="{nope", content_type="application/json",
                       headers={"Authorization": "Bearer mock-api-token"})
    assert r.status_code == 400
    r = api.client.put("/endusers", data="[]", content_type="text/plain",
                       headers={"Authorization": "Bearer mock-api-token"})
    assert r.status_code == 415


def test_a_bad_body_for_an_unknown_tenant_is_reported_as_unknown_tenant(client):
    assert client.post("/analytics/nobody", data=b"{nope").status_code == 200
    entry = _report(client, "unknown_tenant")[-1]
    assert entry["tenant"] == "nobody" and entry["payload"]["body"] == "{nope"


def test_activity_for_an_unknown_user_naming_a_company_creates_the_end_user(api, company):
    """Planhat: "A call that matches no end user: with a company reference a new end user
    is created"."""
    r = api.client.post(f"/analytics/{TENANT}", json={
        "externalId": "u-new", "email": "new@elsewhere.org", "companyExternalId": "acme",
        "action": "Signed Up", "source": "Segment"})
    assert r.status_code == 200 and r.get_json() == {"processed": 1, "notApplied": []}
    state = api.state()
    (user,) = state["endusers"]
    assert (user["externalId"], user["email"], user["companyId"], user["source"]) == (
        "u-new", "new@elsewhere.org", company["_id"], "Segment")
    (activity,) = state["activities"]
    assert activity["enduserId"] == user["_id"] and activity["source"] == "Segment"
    assert state["report"] == []


@pytest.mark.parametrize("row", [{"companyId": "extid-acme"}, {"email": "x@ACME.com"}],
                         ids=["companyId", "email-domain"])
def test_other_company_references_create_the_end_user_too(api, company, row):
    r = api.client.post(f"/analytics/{TENANT}", json={"externalId": "u-new", "action": "x",
                                                      **row})
    assert r.get_json()["processed"] == 1
    assert [u["companyId"] for u in api.state()["endusers"]] == [company["_id"]]


@pytest.mark.parametrize("row", [{}, {"companyExternalId": "ghost"},
                                 {"email": "someone@nowhere.org"}],
                         ids=["no-company", "unknown-company", "email-without-company"])
def test_activity_for_an_unknown_user_without_a_company_is_unknown_user(make_api, row):
    """Not held even under 'hold': an activity is not a contact; the report keeps it."""
    api = make_api(unassigned="hold")
    api.post("/companies", json={"name": "Acme", "externalId": "acme", "domains": ["acme.com"]})
    r = api.client.post(f"/analytics/{TENANT}", json={"externalId": "u-new", "action": "x",
                                                      **row})
    assert r.get_json()["notApplied"][0]["reason"] == "unknown_user"
    state = api.state()
    assert state["endusers"] == state["pending"] == state["activities"] == []
    assert state["report"][0]["payload"]["externalId"] == "u-new"
    if "companyExternalId" in row:
        assert "'ghost' names no company" in state["report"][0]["message"]


def test_tracking_accepts_a_bearer_token_anyway(api, company):
    api.post("/endusers", json={"externalId": "u1", "companyId": "extid-acme"})
    r = api.post(f"/analytics/{TENANT}", json={"externalId": "u1", "action": "x"})
    assert r.status_code == 200 and len(api.state()["activities"]) == 1


def test_dimension_data(api):
    r = api.client.post(f"/dimensiondata/{TENANT}", json=[
        {"dimensionId": "logins", "value": 3, "externalId": "acme", "model": "Company"},
        {"dimensionId": "logins", "value": "three"}])
    assert r.status_code == 200
    body = r.get_json()
    assert body["processed"] == 1 and body["errors"][0]["field"] == "[1].value"
    assert api.state()["dimensiondata"][0]["value"] == 3
