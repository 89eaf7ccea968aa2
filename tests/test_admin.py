"""The admin API: health, state, reset, tenants, journal, report, faults."""

from __future__ import annotations

import time

import pytest

from mock_planhat.config import DEFAULT_TENANT_TOKEN as TENANT


def test_health(client):
    assert client.get("/__admin/health").get_json() == {"status": "ok"}


def test_state_shape(api):
    state = api.state()
    assert {"tenant", "companies", "endusers", "pending", "activities", "report"} <= set(state)
    assert state["tenant"] == TENANT


def test_tenants_are_isolated(client, api, company):
    fresh = client.post("/__admin/tenants", json={}).get_json()
    assert set(fresh) >= {"tenantToken", "apiToken"}
    other = {"Authorization": f"Bearer {fresh['apiToken']}"}
    assert client.get("/companies", headers=other).get_json() == []
    client.post("/companies", headers=other, json={"name": "Theirs", "externalId": "acme"})
    assert [c["name"] for c in api.get("/companies").get_json()] == ["Acme"]
    theirs = client.get(f"/__admin/state?tenant={fresh['tenantToken']}").get_json()
    assert [c["name"] for c in theirs["companies"]] == ["Theirs"]
    client.post(f"/analytics/{fresh['tenantToken']}", json={"externalId": "x", "action": "a"})
    assert api.state()["report"] == []
    assert theirs["tenant"] == fresh["tenantToken"]


def test_tenant_with_basic_auth_and_own_policy(client):
    fresh = client.post("/__admin/tenants", json={"unassigned": "discard"}).get_json()
    import base64
    basic = base64.b64encode(f"{fresh['apiToken']}:".encode()).decode()
    r = client.put("/endusers", headers={"Authorization": f"Basic {basic}"},
                   json=[{"externalId": "u1"}])
    assert r.get_json()["createdErrors"][0]["reason"] == "no_company"
    state = client.get(f"/__admin/state?tenant={fresh['tenantToken']}").get_json()
    assert state["pending"] == [] and state["unassigned"] == "discard"


def test_tenant_with_its_own_email_match_policy(client):
    fresh = client.post("/__admin/tenants", json={"emailMatch": "strict"}).get_json()
    assert fresh["emailMatch"] == "strict"
    auth = {"Authorization": f"Bearer {fresh['apiToken']}"}
    client.post("/companies", headers=auth, json={"name": "A", "externalId": "a"})
    rows = [{"externalId": "u1", "email": "x@a.com", "companyExternalId": "a"},
            {"externalId": "u2", "email": "x@a.com", "companyExternalId": "a"}]
    assert client.put("/endusers", headers=auth, json=rows).get_json()["created"] == 2
    listed = {t["tenantToken"]: t for t in client.get("/__admin/tenants").get_json()}
    assert listed[fresh["tenantToken"]]["emailMatch"] == "strict"
    assert listed[TENANT]["emailMatch"] == "attach"  # the default


def test_tenant_options_are_checked(client):
    r = client.post("/__admin/tenants", json={"unassigned": "keep"})
    assert r.status_code == 400 and r.get_json()["field"] == "unassigned"
    for bad in ("loose", 1, ["attach"]):
        r = client.post("/__admin/tenants", json={"emailMatch": bad})
        assert r.status_code == 400 and r.get_json()["field"] == "emailMatch", bad
        assert "attach, strict" in r.get_json()["message"]
    r = client.post("/__admin/tenants", json={"tenantToken": TENANT})
    assert r.status_code == 409
    assert client.get("/__admin/state?tenant=nope").status_code == 404


def test_reset_one_tenant_or_all(client, api, company):
    fresh = client.post("/__admin/tenants").get_json()
    client.post("/companies", headers={"Authorization": f"Bearer {fresh['apiToken']}"},
                json={"name": "B"})
    client.post(f"/__admin/reset?tenant={fresh['tenantToken']}")
    assert client.get(f"/__admin/state?tenant={fresh['tenantToken']}").get_json()[
        "companies"] == []
    assert len(api.state()["companies"]) == 1
    client.post("/__admin/reset")
    assert api.state()["companies"] == []


def test_journal_records_requests_newest_last(api, company):
    api.get("/companies")
    entries = api.client.get("/__admin/requests").get_json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/companies", 200), ("GET", "/companies", 200)]
    assert entries[0]["body"]["name"] == "Acme" and entries[0]["tenant"] == TENANT
    api.client.delete("/__admin/requests")
    assert api.client.get("/__admin/requests").get_json()["requests"] == []


def test_journal_is_bounded(make_api):
    api = make_api(journal_size=3)
    for i in range(5):
        api.get(f"/companies?limit={i}")
    body = api.client.get("/__admin/requests").get_json()
    assert body["size"] == 3 and body["total"] == 5
    assert [e["query"] for e in body["requests"]] == ["limit=2", "limit=3", "limit=4"]


def test_journal_filters_by_tenant(client, api):
    fresh = client.post("/__admin/tenants").get_json()
    client.get("/companies", headers={"Authorization": f"Bearer {fresh['apiToken']}"})
    api.get("/companies")
    mine = client.get(f"/__admin/requests?tenant={fresh['tenantToken']}").get_json()
    assert len(mine["requests"]) == 1 and mine["requests"][0]["tenant"] == fresh["tenantToken"]


def test_fault_429_with_retry_after_then_recovers(api):
    r = api.client.post("/__admin/faults", json={"method": "PUT", "path": "/endusers*",
                                                 "status": 429, "retryAfter": 2, "count": 2})
    assert r.status_code == 201
    for _ in range(2):
        hit = api.put("/endusers", json=[{"externalId": "u1"}])
        assert hit.status_code == 429 and hit.headers["Retry-After"] == "2"
        assert hit.get_json()["error"] == "injected_fault"
    assert api.state()["pending"] == []
    assert api.get("/endusers").status_code == 200  # other methods untouched
    assert api.put("/endusers", json=[{"externalId": "u1"}]).status_code == 206
    assert api.client.get("/__admin/faults").get_json() == []


def test_journal_keeps_the_answers_retry_after_and_allow(api):
    """The journal keeps a response's Content-Type, Retry-After, Location and Allow, in that
    order, and no other header."""
    api.client.post("/__admin/faults", json={"method": "PUT", "path": "/endusers",
                                             "status": 429, "retryAfter": 3, "count": 1})
    assert api.put("/endusers", json=[{"externalId": "u1"}]).status_code == 429
    assert api.client.patch("/endusers", headers={"Authorization": "Bearer mock-api-token"}
                            ).status_code == 405
    limited, wrong = api.client.get("/__admin/requests").get_json()["requests"][-2:]
    assert list(limited["response"]["headers"].items()) == [
        ("Content-Type", "application/json"), ("Retry-After", "3")]
    assert set(wrong["response"]["headers"]) == {"Content-Type", "Allow"}
    assert "PUT" in wrong["response"]["headers"]["Allow"]


@pytest.mark.parametrize("status", [500, 503])
def test_fault_5xx(api, status):
    api.client.post("/__admin/faults", json={"path": "/companies", "status": status})
    assert api.get("/companies").status_code == status
    assert api.get("/companies").status_code == 200


def test_fault_delay(api):
    api.client.post("/__admin/faults", json={"path": "/companies", "delay": 0.3})
    start = time.monotonic()
    assert api.get("/companies").status_code == 200
    assert time.monotonic() - start >= 0.3


def test_fault_only_for_its_tenant(client, api):
    fresh = client.post("/__admin/tenants").get_json()
    client.post("/__admin/faults", json={"path": "*", "status": 503,
                                         "tenant": fresh["tenantToken"]})
    assert api.get("/companies").status_code == 200
    other = {"Authorization": f"Bearer {fresh['apiToken']}"}
    assert client.get("/companies", headers=other).status_code == 503


def test_fault_rules_list_and_clear(client):
    client.post("/__admin/faults", json={"status": 500, "count": 3})
    assert client.get("/__admin/faults").get_json()[0]["remaining"] == 3
    client.delete("/__admin/faults")
    assert client.get("/__admin/faults").get_json() == []


@pytest.mark.parametrize("rule,field", [({"status": 418}, "status"), ({"count": 0}, "count"),
                                        ({"status": 500, "delay": -1}, "delay"),
                                        ({"status": 500, "nope": 1}, "nope"), ({}, "status")])
def test_bad_fault_rule_names_the_field(client, rule, field):
    r = client.post("/__admin/faults", json=rule)
    assert r.status_code == 400 and r.get_json()["field"] == field


def test_report_filters_by_reason(api):
    api.client.post(f"/analytics/{TENANT}", json={"externalId": "ghost", "action": "x"})
    api.put("/endusers", json=[5])
    report = api.client.get("/__admin/report?reason=unknown_user").get_json()
    assert [e["reason"] for e in report["entries"]] == ["unknown_user"]
    assert report["counts"] == {"unknown_user": 1}  # counts follow the filter (issue 8 §7)
    whole = api.client.get("/__admin/report").get_json()
    assert whole["counts"] == {"unknown_user": 1, "invalid_field": 1}


def test_admin_answers_loopback_only(client):
    r = client.get("/__admin/state", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert client.get("/__admin/health", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_assign_unknown_pending_is_404(client, company):
    r = client.post("/__admin/pending/0123456789abcdef01234567/assign",
                    json={"companyId": "extid-acme"})
    assert r.status_code == 404 and r.get_json()["field"] == "id"


def test_journal_keeps_a_body_it_cannot_parse_as_text(client):
    deep = "[" * 20_000 + "]" * 20_000
    assert client.post(f"/analytics/{TENANT}", data=deep,
                       content_type="application/json").status_code == 200  # a data sink
    client.post(f"/analytics/{TENANT}", data='{"weight": 1e400}', content_type="application/json")
    r = client.get("/__admin/requests")
    assert r.status_code == 200
    assert [e["body"][:8] for e in r.get_json()["requests"]] == ["[" * 8, '{"weight']


@pytest.mark.parametrize("which", ["tenantToken", "apiToken"])
def test_a_tenant_can_be_deleted_by_either_token(client, api, company, which):
    fresh = client.post("/__admin/tenants").get_json()
    bearer = {"Authorization": f"Bearer {fresh['apiToken']}"}
    assert client.post("/companies", headers=bearer, json={"name": "B"}).status_code == 200
    client.post("/__admin/faults", json={"status": 503, "tenant": fresh["tenantToken"]})
    r = client.delete(f"/__admin/tenants/{fresh[which]}")
    assert r.status_code == 200 and r.get_json() == {"deleted": fresh["tenantToken"]}
    listed = [t["tenantToken"] for t in client.get("/__admin/tenants").get_json()]
    assert fresh["tenantToken"] not in listed and TENANT in listed
    assert client.get(f"/__admin/state?tenant={fresh['tenantToken']}").status_code == 404
    assert client.get("/companies", headers=bearer).status_code == 401  # its token is gone
    assert client.get("/__admin/faults").get_json() == []  # and its fault rules
    assert [c["name"] for c in api.get("/companies").get_json()] == ["Acme"]  # others stay
    again = client.delete(f"/__admin/tenants/{fresh[which]}")
    assert again.status_code == 404 and again.get_json()["error"] == "unknown_tenant"
    # the token is free again
    assert client.post("/__admin/tenants", json={"tenantToken": fresh["tenantToken"]}
                       ).status_code == 201


def test_the_default_tenant_cannot_be_deleted(client, api, company):
    r = client.delete(f"/__admin/tenants/{TENANT}")
    assert r.status_code == 409 and r.get_json()["field"] == "token"
    assert "reset" in r.get_json()["message"]
    assert [c["name"] for c in api.get("/companies").get_json()] == ["Acme"]


@pytest.mark.parametrize("path", ["/__admin/state", "/__admin/snapshot", "/__admin/report",
                                  "/__admin/ui/explain?externalId=acme"])
def test_a_tenant_is_found_by_either_token_and_an_empty_one_names_none(client, api, path):
    """One rule for the admin API and the dashboard: either token finds the tenant, no
    ``?tenant=`` means the default tenant, and an empty one is an unknown token (404)."""
    api.post("/companies", json={"name": "Acme", "externalId": "acme"})
    client.post("/__admin/tenants", json={"tenantToken": "tt-other", "apiToken": "at-other"})
    join = "&" if "?" in path else "?"
    assert client.get(path).status_code == 200  # the default tenant
    for token in ("tt-other", "at-other"):
        found = client.get(f"{path}{join}tenant={token}")
        assert found.status_code == 200 and b"tt-other" in found.data
    empty = client.get(f"{path}{join}tenant=")
    assert empty.status_code == 404
    if "/ui/" not in path:
        assert (empty.get_json()["error"], empty.get_json()["field"]) == (
            "unknown_tenant", "tenant")
