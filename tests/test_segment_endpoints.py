"""Segment's endpoints on the fake: the HTTP Tracking API (/v1/*) and /dock/segment."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

TENANT = "mock-tenant-token"
API_TOKEN = "mock-api-token"


def basic(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}


def post(client, path, body, *, compress=False, headers=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    if compress:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return client.post(path, data=data, headers=headers)


def batch(client, calls, **kwargs):
    body = {"batch": calls, "writeKey": TENANT, **kwargs.pop("extra", {})}
    return post(client, "/v1/batch", body, **kwargs)


def state(client, tenant=None):
    query = f"?tenant={tenant}" if tenant else ""
    return client.get(f"/__admin/state{query}").get_json()


def report(client, reason=None, tenant=None):
    query = "&".join(f"{k}={v}" for k, v in (("reason", reason), ("tenant", tenant)) if v)
    return client.get(f"/__admin/report?{query}").get_json()["entries"]


def journal(client):
    return client.get("/__admin/requests").get_json()["requests"]


def inner(client, path_prefix):
    """Bodies of the in-process Planhat requests whose path starts with ``path_prefix``."""
    return [e for e in journal(client) if e["path"].startswith(path_prefix)]


GROUP = {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}}
IDENTIFY = {"type": "identify", "userId": "u1",
            "traits": {"email": "ann@acme.com", "name": "Ann", "plan": "pro",
                       "company": {"id": "g1"}}}


def ok(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"success": True}


# ----- each path -----------------------------------------------------------------------------
SINGLE = {
    "identify": ({"userId": "u1", "traits": {"email": "ann@acme.com"}}, "PUT", "/endusers"),
    "track": ({"userId": "u1", "event": "Clicked"}, "POST", f"/analytics/{TENANT}"),
    "page": ({"userId": "u1", "name": "Home"}, "POST", f"/analytics/{TENANT}"),
    "group": ({"userId": "u1", "groupId": "g1"}, "PUT", "/companies"),
    "alias": ({"userId": "u2", "previousId": "u1"}, "PUT", "/endusers/extid-u1"),
}


@pytest.mark.parametrize("kind", sorted(SINGLE))
def test_each_single_call_path_answers_success_and_sends_its_planhat_request(client, kind):
    body, method, path = SINGLE[kind]
    ok(post(client, f"/v1/{kind}", {**body, "writeKey": TENANT}))
    sent = [(e["method"], e["path"]) for e in journal(client)]
    assert (method, path) in sent
    assert sent[-1] == ("POST", f"/v1/{kind}")  # the inner requests came first


def test_screen_path_answers_success_and_reports_unsupported_call(client):
    ok(post(client, "/v1/screen", {"userId": "u1", "name": "Home", "writeKey": TENANT}))
    [entry] = report(client, "unsupported_call")
    assert entry["source"] == "/v1/screen"
    assert entry["payload"] == {"userId": "u1", "name": "Home", "type": "screen"}
    assert [e["path"] for e in journal(client)] == ["/v1/screen"]


def test_the_path_sets_the_call_type(client):
    ok(post(client, "/v1/track", {"type": "identify", "userId": "u1", "event": "Clicked",
                                  "writeKey": TENANT}))
    [activity] = inner(client, "/analytics/")
    assert activity["body"]["action"] == "Clicked"
    assert not inner(client, "/endusers")


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
def test_batch_and_import_deliver_every_call(client, path):
    ok(post(client, path, {"writeKey": TENANT, "batch": [GROUP, IDENTIFY]}))
    data = state(client)
    assert [c["externalId"] for c in data["companies"]] == ["g1"]
    assert [u["externalId"] for u in data["endusers"]] == ["u1"]


def test_unknown_v1_path_is_a_404(client):
    response = post(client, "/v1/nonsense", {"writeKey": TENANT})
    assert response.status_code == 404


# ----- batch merging -------------------------------------------------------------------------
def test_batch_context_and_integrations_merge_into_each_call_the_calls_own_keys_win(client):
    calls = [
        {"type": "track", "userId": "a", "event": "Plain"},
        {"type": "track", "userId": "b", "event": "Own group",
         "context": {"groupId": "g2", "traits": {"id": "b"}}, "integrations": {"Planhat": {}}},
        {"type": "track", "userId": "c", "event": "Own integrations",
         "integrations": {"Planhat": True}},
        {"type": "track", "userId": "d", "event": "Other tool only",
         "integrations": {"Mixpanel": True}},
    ]
    extra = {"context": {"groupId": "g1", "traits": {"email": "top@acme.com"}},
             "integrations": {"All": False}}
    ok(batch(client, calls, extra=extra))
    [bulk] = inner(client, "/analytics/bulk/")
    rows = {row["action"]: row for row in bulk["body"]}
    # "Plain" and "Other tool only" took the batch's {"All": false}: filtered.
    assert sorted(rows) == ["Own group", "Own integrations"]
    assert rows["Own integrations"]["companyExternalId"] == "g1"
    assert rows["Own integrations"]["email"] == "top@acme.com"
    # context is merged per key: the call's own traits replace the batch's traits object.
    assert rows["Own group"]["companyExternalId"] == "g2"
    assert "email" not in rows["Own group"]
    filtered = report(client, "filtered")
    assert [e["payload"]["event"] for e in filtered] == ["Plain", "Other tool only"]
    assert filtered[0]["payload"]["context"]["groupId"] == "g1"
    assert filtered[1]["payload"]["integrations"] == {"All": False, "Mixpanel": True}


# ----- gzip ----------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_gzip_bodies_are_accepted(client, compress):
    ok(batch(client, [GROUP, IDENTIFY], compress=compress))
    assert [u["email"] for u in state(client)["endusers"]] == ["ann@acme.com"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_journal_shows_the_call_as_json_gzip_or_not(client, compress):
    ok(post(client, "/v1/track", {"userId": "u1", "event": "Clicked", "writeKey": TENANT},
            compress=compress))
    (entry,) = [e for e in journal(client) if e["path"] == "/v1/track"]
    assert entry["body"]["event"] == "Clicked"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_single_call_gzip(client, compress):
    ok(post(client, "/v1/group", {**GROUP, "writeKey": TENANT}, compress=compress))
    assert [c["name"] for c in state(client)["companies"]] == ["Acme"]


@pytest.mark.parametrize("raw", [b"not gzip at all", gzip.compress(b'{"batch": []}')[:-6], b""],
                         ids=["garbage", "truncated", "empty"])
def test_bad_gzip_is_a_segment_400(client, raw):
    response = client.post("/v1/batch", data=raw, headers={"Content-Encoding": "gzip",
                                                           "Content-Type": "application/json",
                                                           **basic(TENANT)})
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False and body["code"] == "invalid_request"
    assert "gzip" in body["message"]


def test_a_gzip_body_inflating_past_the_batch_limit_is_a_400(client):
    payload = b'{"batch": [], "pad": "' + b" " * (20 * 1024 * 1024) + b'"}'
    response = post(client, "/v1/batch", None, raw=payload, compress=True, headers=basic(TENANT))
    assert response.status_code == 400
    assert "KB" in response.get_json()["message"]


# ----- write key -----------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["body", "basic"])
def test_write_key_in_body_or_as_basic_user(client, where):
    body = {"batch": [GROUP]}
    headers = {}
    if where == "body":
        body["writeKey"] = TENANT
    else:
        headers = basic(TENANT)
    ok(post(client, "/v1/batch", body, headers=headers))
    assert len(state(client)["companies"]) == 1


def test_write_key_selects_the_tenant_and_the_body_key_wins_over_basic(client):
    other = client.post("/__admin/tenants", json={}).get_json()["tenantToken"]
    ok(post(client, "/v1/group", {**GROUP, "writeKey": other}, headers=basic(TENANT)))
    assert len(state(client, other)["companies"]) == 1
    assert state(client)["companies"] == []


def test_unknown_write_key_answers_success_and_reports_unknown_tenant(client):
    ok(post(client, "/v1/identify", {**IDENTIFY, "writeKey": "nobody"}))
    entries = report(client, "unknown_tenant")
    assert [(e["tenant"], e["source"]) for e in entries] == [("nobody", "/v1/identify")]
    assert "writeKey" not in entries[0]["payload"]
    assert state(client)["endusers"] == [] and state(client)["pending"] == []


@pytest.mark.parametrize("body,status", [({"batch": [GROUP]}, 401),
                                         ({"batch": [GROUP], "writeKey": ""}, 400),
                                         ({"batch": [GROUP], "writeKey": 5}, 400)],
                         ids=["absent", "empty", "not-a-string"])
def test_missing_write_key_is_a_401_naming_write_key(client, body, status):
    """No write key at all is a 401 (no credentials); a malformed one a 400."""
    response = post(client, "/v1/batch", body)
    assert response.status_code == status
    answer = response.get_json()
    assert answer["success"] is False and answer["code"] == "missing_write_key"
    assert "writeKey" in answer["message"]
    assert state(client)["companies"] == []


def test_a_bearer_token_is_not_a_write_key(client):
    response = post(client, "/v1/batch", {"batch": [GROUP]},
                    headers={"Authorization": f"Bearer {TENANT}"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_write_key"


# ----- 400s ----------------------------------------------------------------------------------
def _assert_segment_400(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"success", "message", "code"}
    assert body["success"] is False and body["code"] == "invalid_request"
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'{"x": NaN}', b"\xff\xfe"],
                         ids=["broken", "empty", "array", "nan", "not-utf8"])
def test_bad_json_is_a_segment_400(client, raw):
    _assert_segment_400(post(client, "/v1/track", None, raw=raw, headers=basic(TENANT)))


def test_batch_must_be_an_array(client):
    message = _assert_segment_400(post(client, "/v1/batch", {"writeKey": TENANT,
                                                             "batch": {"type": "track"}}))
    assert "batch" in message


def _track(size: int, user="u1") -> dict:
    return {"type": "track", "userId": user, "event": "Big", "properties": {"blob": "x" * size}}


def test_a_call_over_32_kb_is_a_400_and_just_under_passes(client):
    _assert_segment_400(post(client, "/v1/track", {**_track(33 * 1024), "writeKey": TENANT}))
    ok(post(client, "/v1/track", {**_track(31 * 1024), "writeKey": TENANT}))


def test_a_batch_item_over_32_kb_is_a_400_and_nothing_is_applied(client):
    message = _assert_segment_400(batch(client, [GROUP, _track(33 * 1024)]))
    assert "batch[1]" in message
    assert state(client)["companies"] == []


def test_a_batch_over_500_kb_is_a_400_and_nothing_is_applied(client):
    calls = [GROUP] + [_track(30 * 1024, f"u{i}") for i in range(17)]  # ~510 KB
    _assert_segment_400(batch(client, calls))
    assert state(client)["companies"] == []
    ok(batch(client, calls[:15]))  # ~420 KB passes


def test_a_batch_over_2500_calls_is_a_400(client):
    calls = [{"type": "track", "userId": "u", "event": "e"}] * 2501
    assert "2501" in _assert_segment_400(batch(client, calls))
    ok(batch(client, calls[:2500]))


# ----- the report ----------------------------------------------------------------------------
def test_skips_are_reported_with_their_reason_and_the_call(client):
    calls = [
        GROUP, IDENTIFY,
        {"type": "identify", "userId": "u2", "traits": {"email": "bob@acme.com"},
         "context": {"groupId": "g1"}},
        {"type": "screen", "userId": "u1", "name": "Home"},
        {"type": "track", "userId": "u1", "event": "Hidden", "integrations": {"Planhat": False}},
        {"type": "track", "anonymousId": "anon-1", "event": "Anonymous"},
        {"type": "alias", "previousId": "u1", "userId": "u2"},
        {"type": "track", "userId": "u1"},
        {"type": "identify", "traits": {"email": "no-ids@acme.com"}},
    ]
    ok(batch(client, calls))
    entries = {e["reason"]: e for e in report(client) if e["source"] == "/v1/batch"}
    assert sorted(entries) == ["alias_conflict", "filtered", "invalid_call", "no_identifier",
                               "no_user_anon_id", "unknown_user", "unsupported_call"]
    assert entries["unknown_user"]["payload"] == GROUP  # the group came before the identify
    assert entries["unsupported_call"]["payload"] == calls[3]
    assert entries["filtered"]["payload"]["event"] == "Hidden"
    assert entries["no_identifier"]["payload"]["anonymousId"] == "anon-1"
    assert entries["alias_conflict"]["payload"] == calls[6]
    assert entries["invalid_call"]["message"].startswith("call.event")
    assert entries["no_user_anon_id"]["payload"] == calls[8]
    # Everything else was applied.
    data = state(client)
    assert sorted(u["externalId"] for u in data["endusers"]) == ["u1", "u2"]
    assert not any(e["path"] == "/v1/batch" and e["status"] != 200 for e in journal(client))


@pytest.mark.parametrize("path", ["/v1/track", "/dock/segment"])
def test_invalid_call_is_reported_but_answered_200(client, path):
    body = {"type": "track", "userId": "u1", "event": 42}
    if path == "/v1/track":
        response = post(client, path, {**body, "writeKey": TENANT})
    else:
        response = post(client, path, body, headers=basic(TENANT))
    assert response.status_code == 200
    [entry] = report(client, "invalid_call")
    assert "call.event" in entry["message"] and entry["source"] == path


def test_a_held_contact_is_pending_not_reported(client):
    ok(post(client, "/v1/identify", {"userId": "u9", "traits": {"email": "x@nowhere.test"},
                                     "writeKey": TENANT}))
    assert report(client) == []
    assert [p["externalId"] for p in state(client)["pending"]] == ["u9"]


def test_a_discarded_contact_is_reported_once(client):
    fresh = client.post("/__admin/tenants", json={"unassigned": "discard"}).get_json()
    ok(post(client, "/v1/identify", {"userId": "u9", "traits": {"email": "x@nowhere.test"},
                                     "writeKey": fresh["tenantToken"]}))
    entries = report(client, tenant=fresh["tenantToken"])
    assert [(e["reason"], e["payload"]["externalId"]) for e in entries] == [("no_company", "u9")]


# ----- faults on the inner requests ----------------------------------------------------------
def test_faults_apply_to_the_inner_requests_and_the_destination_retries(client):
    client.post("/__admin/faults", json={"method": "PUT", "path": "/companies", "status": 503,
                                         "retryAfter": 3600, "count": 2})
    ok(post(client, "/v1/group", {**GROUP, "writeKey": TENANT}))
    statuses = [e["status"] for e in inner(client, "/companies")]
    assert statuses == [503, 503, 200]
    assert len(state(client)["companies"]) == 1
    assert report(client, "delivery_failed") == []


def test_a_request_that_keeps_failing_is_reported_as_delivery_failed(client):
    client.post("/__admin/faults", json={"path": "/endusers", "status": 500, "count": 100})
    ok(post(client, "/v1/identify", {**IDENTIFY, "writeKey": TENANT}))
    [entry] = report(client, "delivery_failed")
    assert entry["source"] == "/v1/identify"
    assert entry["message"].startswith("PUT /endusers answered 500")
    assert entry["payload"]["userId"] == "u1"
    assert len(inner(client, "/endusers")) == 6  # the first try and five retries


# ----- /dock/segment -------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, basic("nobody"), basic(API_TOKEN),
                                     {"Authorization": "Basic !!notbase64"}],
                         ids=["missing", "unknown", "api-token", "garbled"])
def test_dock_needs_the_tenant_token_as_basic_user(client, headers):
    response = post(client, "/dock/segment", GROUP, headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert body["field"] == "Authorization" and "Authorization" in body["message"]
    assert state(client)["companies"] == []


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_dock_applies_one_call(client, compress):
    group = {**GROUP, "userId": None, "anonymousId": "anon-1"}
    response = post(client, "/dock/segment", group, headers=basic(TENANT), compress=compress)
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "outcome": "sent", "reason": None,
                                   "message": None}
    assert [c["externalId"] for c in state(client)["companies"]] == ["g1"]


def test_dock_says_when_a_call_was_skipped(client):
    response = post(client, "/dock/segment", {"type": "screen", "userId": "u1"},
                    headers=basic(TENANT))
    assert response.get_json() == {"success": True, "outcome": "skipped",
                                   "reason": "unsupported_call",
                                   "message": "screen calls are not sent to Planhat"}
    assert report(client, "unsupported_call")[0]["source"] == "/dock/segment"


@pytest.mark.parametrize("raw", [b"{broken", b"[]"], ids=["bad-json", "not-an-object"])
def test_dock_rejects_a_body_that_is_not_one_call(client, raw):
    response = post(client, "/dock/segment", None, raw=raw, headers=basic(TENANT))
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


# ----- the resulting state -------------------------------------------------------------------
def test_state_after_identify_group_track_page_alias(client):
    for kind, body in [
        ("identify", {"userId": "u1", "traits": {"email": "ann@acme.com", "firstName": "Ann",
                                                 "lastName": "Lee", "plan": "pro"}}),
        ("group", {"userId": "u1", "groupId": "g1", "traits": {"name": "Acme", "tier": 2}}),
        ("track", {"userId": "u1", "event": "Signed Up", "properties": {"via": "ads"}}),
        ("page", {"userId": "u1", "name": "Pricing", "properties": {"path": "/pricing"}}),
        ("alias", {"previousId": "u1", "userId": "user-1"}),
    ]:
        ok(post(client, f"/v1/{kind}", {**body, "writeKey": TENANT}))
    data = state(client)
    [company] = data["companies"]
    assert (company["externalId"], company["name"], company["custom"]) == ("g1", "Acme",
                                                                          {"tier": 2})
    assert data["pending"] == []
    [user] = data["endusers"]
    assert user["externalId"] == "user-1"
    assert user["email"] == "ann@acme.com" and user["name"] == "Ann Lee"
    assert user["companyId"] == company["_id"] and user["companyName"] == "Acme"
    assert user["custom"] == {"plan": "pro"}
    assert [(a["action"], a["enduserId"], a["companyId"], a["info"])
            for a in data["activities"]] == [
        ("Signed Up", user["_id"], company["_id"], {"via": "ads"}),
        ("Viewed Pricing Page", user["_id"], company["_id"], {"path": "/pricing"}),
    ]


def _audience(member: bool) -> dict:
    return {"type": "identify", "userId": "u1", "traits": {"first_time_shopper": member},
            "context": {"personas": {"computation_class": "audience",
                                     "computation_key": "first_time_shopper",
                                     "computation_id": "aud_1", "space_id": "spa_1"}},
            "integrations": {"All": False, "Planhat": True}}


def test_engage_identify_sets_the_audience_boolean_true_then_false(client):
    ok(batch(client, [GROUP, IDENTIFY]))
    ok(post(client, "/v1/identify", {**_audience(True), "writeKey": TENANT}))
    [user] = state(client)["endusers"]
    assert user["custom"]["first_time_shopper"] is True
    ok(batch(client, [_audience(False)]))
    [user] = state(client)["endusers"]
    assert user["custom"]["first_time_shopper"] is False
    assert user["custom"]["plan"] == "pro"


# ----- the journal ---------------------------------------------------------------------------
def test_the_inner_planhat_requests_appear_in_the_journal(client):
    ok(batch(client, [GROUP, IDENTIFY, {"type": "track", "userId": "u1", "event": "Clicked"}]))
    entries = journal(client)
    assert [(e["method"], e["path"], e["status"], e["tenant"]) for e in entries] == [
        ("PUT", "/companies", 200, TENANT),
        ("PUT", "/endusers/extid-u1", 404, TENANT),  # group before identify: nobody to attach
        ("PUT", "/endusers", 200, TENANT),
        ("POST", f"/analytics/bulk/{TENANT}", 200, TENANT),
        ("POST", "/v1/batch", 200, TENANT),  # the write key in the body names it
    ]
    assert entries[2]["body"][0]["externalId"] == "u1"
    assert entries[3]["body"][0]["action"] == "Clicked"


# ----- issue 8: identifiers, email attach, group before identify ------------------------------
def test_numeric_ids_over_v1_are_stringified_like_the_translator_does(client):
    ok(batch(client, [
        {"type": "group", "anonymousId": "a", "groupId": 9, "traits": {"name": "Nine"}},
        {"type": "identify", "userId": 42, "traits": {"email": "n@nine.io", "companyId": 9}},
        {"type": "track", "userId": "42", "event": "Logged In"},
        {"type": "track", "userId": 42.0, "event": "Logged Out"},
    ]))
    data = state(client)
    (user,) = data["endusers"]
    assert user["externalId"] == "42" and user["companyName"] == "Nine"
    assert [a["action"] for a in data["activities"]] == ["Logged In", "Logged Out"]
    assert {a["enduserId"] for a in data["activities"]} == {user["_id"]}
    assert data["report"] == []


def test_identify_over_v1_attaches_by_email_and_says_so(client):
    ok(post(client, "/v1/identify", {"writeKey": TENANT, "userId": "crm-1",
                                     "traits": {"email": "ann@acme.com", "companyId": "g1"}}))
    ok(batch(client, [GROUP]))
    ok(post(client, "/v1/identify", {"writeKey": TENANT, "userId": "u-ann",
                                     "traits": {"email": "ANN@acme.com"}}))
    data = state(client)
    assert [u["externalId"] for u in data["endusers"] + data["pending"]] == ["u-ann"]
    (entry,) = report(client, "matched_by_email")
    assert entry["decision"]["changed"] == {"externalId": {"from": "crm-1", "to": "u-ann"}}
    assert entry["source"] == "/endusers"  # the inner Planhat request reported it
