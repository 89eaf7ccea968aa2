"""The tracking host: /analytics, /analytics/bulk and /dimensiondata, keyed by tenant token."""

from __future__ import annotations

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


def test_unparseable_body_is_400(client):
    r = client.post(f"/analytics/{TENANT}", data="{nope", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["field"] == "body"
    r = client.post(f"/analytics/bulk/{TENANT}", json={"not": "an array"})
    assert r.status_code == 400


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
