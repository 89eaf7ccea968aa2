"""Snapshots: GET/PUT /__admin/snapshot, the Python API, all-or-nothing restores, the clock."""

from __future__ import annotations

import copy
import re

import pytest

from mock_planhat import __version__
from mock_planhat.scenario import Target

HEX_ID = re.compile(r"[0-9a-f]{24}\Z")
CLOCK = "2024-06-01T12:00:00Z"


def _calls(prefix: str) -> list[dict]:
    """Segment calls that exercise matching: attach by email, create, group, hold, track."""
    return [
        {"type": "identify", "userId": f"{prefix}-ann", "traits": {"email": "ANN@acme.com",
                                                                   "plan": "pro"}},
        {"type": "identify", "userId": f"{prefix}-new", "traits": {"email": "new@acme.com"}},
        {"type": "group", "userId": f"{prefix}-new", "groupId": f"{prefix}-g",
         "traits": {"name": "Globex", "website": "globex.com"}},
        {"type": "identify", "userId": f"{prefix}-lost", "traits": {"email": "x@nowhere.org"}},
        {"type": "track", "userId": f"{prefix}-ann", "event": "Signed In"},
        {"type": "track", "userId": "nobody-at-all", "event": "Ghost"},
    ]


def _seed(tenant) -> None:
    tenant.clock(now=CLOCK)
    assert tenant.api("POST", "/companies", {"name": "Acme", "externalId": "acme",
                                             "domains": ["acme.com"]}).status == 200
    assert tenant.api("POST", "/endusers", {"email": "ann@acme.com", "companyExternalId": "acme",
                                            "externalId": "ann"}).status == 200
    tenant.destination().send_many(_calls("first"))


def _normal(state, known: set[str], seen: dict[str, str], tokens: tuple):
    """State with the ids the replay made (unknown to the snapshot) numbered in order of
    appearance and the tenant token replaced, so two servers' states compare equal when they
    differ only in those."""
    if isinstance(state, dict):
        return {k: _normal(v, known, seen, tokens) for k, v in state.items() if k != "tenant"}
    if isinstance(state, list):
        return [_normal(v, known, seen, tokens) for v in state]
    if isinstance(state, str) and HEX_ID.match(state) and state not in known:
        return seen.setdefault(state, f"<new {len(seen)}>")
    if isinstance(state, str):
        for token in tokens:
            state = state.replace(token, "<tenant>")
    return state


def test_snapshot_round_trip_then_same_calls_same_state(planhat):
    _seed(planhat)
    doc = planhat.snapshot()
    assert doc["format"] == "mock-planhat-snapshot" and doc["formatVersion"] == 1
    assert doc["packageVersion"] == __version__
    (item,) = doc["tenants"]
    assert item["tenantToken"] == planhat.tenant_token
    assert item["clock"] == {"now": "2024-06-01T12:00:00.000Z"}
    assert len(item["endusers"]) >= 2 and len(item["pending"]) == 1
    assert item["reportCounts"]  # the ghost track was reported

    fresh = Target()
    try:
        other = fresh.new_tenant()
        other.restore(doc)
        again = other.snapshot()["tenants"][0]
        for key in ("companies", "endusers", "pending", "activities", "report", "reportCounts",
                    "settings", "clock"):
            assert again[key] == item[key], key
        known = {r["_id"] for k in ("companies", "endusers", "pending") for r in item[k]}
        for tenant in (planhat, other):
            result = tenant.destination().send_many(_calls("first") + _calls("second"))
            assert result.failed == []
        mine, theirs = planhat.state(), other.state()
        assert len(mine["activities"]) > len(item["activities"])  # the replay did something
        tokens = (planhat.tenant_token, other.tenant_token)
        assert _normal(mine, known, {}, tokens) == _normal(theirs, known, {}, tokens)
    finally:
        fresh.close()


def test_restore_rebuilds_indexes(planhat):
    _seed(planhat)
    doc = planhat.snapshot()
    fresh = Target()
    try:
        other = fresh.new_tenant()
        other.restore(doc)
        # lookups by key go through the rebuilt indexes
        for user in doc["tenants"][0]["endusers"]:
            got = other.api("GET", "/endusers/extid-" + user["externalId"]).json()
            assert got["_id"] == user["_id"]
        assert other.api("GET", "/companies/extid-acme").json()["name"] == "Acme"
        found = other.api("GET", "/endusers?email=new@acme.com")
        assert found.status == 200 and [u["externalId"] for u in found.json()] == ["first-new"]
        held = other.state()["pending"]
        assert [p["email"] for p in held] == ["x@nowhere.org"]
    finally:
        fresh.close()


def test_whole_server_snapshot_restores_every_tenant(client):
    made = client.post("/__admin/tenants", json={"unassigned": "discard",
                                                  "emailMatch": "strict"}).get_json()
    headers = {"Authorization": f"Bearer {made['apiToken']}"}
    client.post("/companies", headers=headers, json={"name": "Theirs"})
    doc = client.get("/__admin/snapshot").get_json()
    assert len(doc["tenants"]) == 2
    from mock_planhat import create_app

    other = create_app().test_client()
    other.post("/__admin/tenants", json={"tenantToken": "gone-after-restore"})
    response = other.put("/__admin/snapshot", json=doc)
    assert response.status_code == 200, response.get_json()
    tenants = {t["tenantToken"]: t for t in other.get("/__admin/tenants").get_json()}
    assert set(tenants) == {"mock-tenant-token", made["tenantToken"]}
    assert tenants[made["tenantToken"]]["unassigned"] == "discard"
    assert tenants[made["tenantToken"]]["emailMatch"] == "strict"
    names = [c["name"] for c in other.get("/companies", headers=headers).get_json()]
    assert names == ["Theirs"]


def _bad(doc, path, value):
    bad = copy.deepcopy(doc)
    target = bad
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return bad


@pytest.mark.parametrize("path,value,field", [
    (("formatVersion",), 2, "formatVersion"),
    (("format",), "pickle", "format"),
    (("tenants", 0, "endusers", 0, "email"), 42, "tenants[0].endusers[0].email"),
    (("tenants", 0, "endusers", 0, "_id"), KeyError, "tenants[0].endusers[0]"),
    (("tenants", 0, "companies", 0, "domains"), "acme.com", "tenants[0].companies[0].domains"),
    (("tenants", 0, "settings", "unassigned"), "keep", "tenants[0].settings.unassigned"),
    (("tenants", 0, "settings", "colour"), "red", "tenants[0].settings"),
    (("tenants", 0, "clock", "now"), "yesterday", "tenants[0].clock.now"),
    (("tenants", 0, "endusers", 0, "companyId"), "0" * 24, "tenants[0].endusers[0].companyId"),
    (("tenants", 0, "report", 0), "text", "tenants[0].report[0]"),
    (("tenants", 0, "reportCounts", "x"), -1, "tenants[0].reportCounts.x"),
    (("tenants", 0, "surprise"), 1, "tenants[0]"),
])
def test_bad_snapshot_is_400_naming_the_field_and_changes_nothing(planhat, path, value, field):
    _seed(planhat)
    doc = planhat.snapshot()
    before = planhat.state()
    response = planhat.target.request("PUT", f"/__admin/snapshot?tenant={planhat.tenant_token}",
                                      _bad(doc, path, value))
    assert response.status == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_snapshot" and body["field"] == field, body
    assert body["message"].startswith(field)
    assert planhat.state() == before


def test_unknown_version_names_both_versions(planhat):
    doc = planhat.snapshot()
    doc["formatVersion"], doc["packageVersion"] = 7, "9.9.9"
    response = planhat.target.request("PUT", "/__admin/snapshot", doc)
    assert response.status == 400
    message = response.json()["message"]
    assert "7" in message and "9.9.9" in message and __version__ in message


def test_duplicate_ids_and_keys_are_refused(planhat):
    _seed(planhat)
    doc = planhat.snapshot()
    users = doc["tenants"][0]["endusers"]
    twice = _bad(doc, ("tenants", 0, "endusers", 1, "externalId"), users[0]["externalId"])
    response = planhat.target.request("PUT", f"/__admin/snapshot?tenant={planhat.tenant_token}",
                                      twice)
    assert response.json()["field"] == "tenants[0].endusers[1].externalId"
    same = _bad(doc, ("tenants", 0, "endusers", 1, "_id"), users[0]["_id"])
    response = planhat.target.request("PUT", f"/__admin/snapshot?tenant={planhat.tenant_token}",
                                      same)
    assert response.json()["field"] == "tenants[0].endusers[1]._id"


def test_whole_server_restore_refuses_a_token_twice_and_changes_nothing(client):
    made = client.post("/__admin/tenants", json={}).get_json()
    doc = client.get("/__admin/snapshot").get_json()
    doc["tenants"][1]["apiToken"] = doc["tenants"][0]["tenantToken"]
    response = client.put("/__admin/snapshot", json=doc)
    assert response.status_code == 400
    assert response.get_json()["field"] == "tenants[1].apiToken"
    assert len(client.get("/__admin/tenants").get_json()) == 2
    assert made["tenantToken"] in {t["tenantToken"] for t in
                                   client.get("/__admin/tenants").get_json()}


def test_one_tenant_restore_needs_one_tenant(client):
    client.post("/__admin/tenants", json={})
    doc = client.get("/__admin/snapshot").get_json()
    response = client.put("/__admin/snapshot?tenant=mock-tenant-token", json=doc)
    assert response.status_code == 400 and response.get_json()["field"] == "tenants"


# ----- the clock ------------------------------------------------------------------------------
def test_clock_stamps_records_report_and_journal(planhat):
    planhat.clock(now="2024-06-01T00:00:00Z")
    planhat.api("POST", "/companies", {"name": "Acme", "externalId": "acme"})
    planhat.clock(advance="P30D")
    planhat.api("PUT", "/companies/extid-acme", {"name": "Acme Inc"})
    planhat.clock(advance=3600)
    planhat.destination().send({"type": "identify", "userId": "u1",
                                "traits": {"email": "u1@acme.com"}})
    planhat.api("POST", "/analytics/" + planhat.tenant_token, {"externalId": "nobody",
                                                             "action": "x"})
    state = planhat.state()
    (company,) = state["companies"]
    assert company["createDate"] == "2024-06-01T00:00:00.000Z"
    assert company["updatedAt"] == "2024-07-01T00:00:00.000Z"
    assert state["pending"][0]["createDate"] == "2024-07-01T01:00:00.000Z"
    assert {e["time"] for e in state["report"]} == {"2024-07-01T01:00:00.000Z"}
    times = {e["time"] for e in planhat.journal()}
    assert times == {"2024-06-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z",
                     "2024-07-01T01:00:00.000Z"}, times
    assert planhat.clock() == {"real": False, "now": "2024-07-01T01:00:00.000Z"}
    back = planhat.clock(real=True)
    assert back["real"] is True and back["now"] > "2025"


def test_activity_default_date_follows_the_clock(planhat):
    planhat.clock(now="2023-03-03T03:03:03.5Z")
    planhat.api("POST", "/companies", {"name": "Acme", "externalId": "acme"})
    planhat.api("POST", "/endusers", {"externalId": "ann", "companyExternalId": "acme"})
    planhat.destination().send({"type": "track", "userId": "ann", "event": "Opened"})
    (activity,) = planhat.state()["activities"]
    assert activity["date"] == "2023-03-03T03:03:03.500Z"


@pytest.mark.parametrize("body,field", [
    ({}, "now"), ({"now": "tomorrow"}, "now"), ({"advance": "P1M"}, "advance"),
    ({"advance": "P1Y"}, "advance"), ({"advance": -5}, "advance"), ({"advance": True}, "advance"),
    ({"advance": "PT"}, "advance"), ({"real": False}, "real"), ({"speed": 2}, "speed"),
    ({"now": "2024-01-01T00:00:00Z", "advance": 1}, "now"), ({"now": 5}, "now"),
])
def test_bad_clock_requests_are_400(client, body, field):
    before = client.get("/__admin/clock").get_json()
    response = client.post("/__admin/clock", json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field
    assert client.get("/__admin/clock").get_json()["real"] is before["real"] is True


def test_reset_returns_the_clock_to_wall_time(client):
    client.post("/__admin/clock", json={"now": "2020-01-01T00:00:00Z"})
    client.post("/__admin/reset")
    assert client.get("/__admin/clock").get_json()["real"] is True


def test_a_tenant_may_not_take_the_default_tenants_tokens_in_another_role(client):
    doc = client.get("/__admin/snapshot").get_json()
    item = dict(doc["tenants"][0], tenantToken="mock-api-token", apiToken="other-api")
    doc["tenants"] = [item]
    response = client.put("/__admin/snapshot", json=doc)
    assert response.status_code == 400 and response.get_json()["field"] == "tenants[0].apiToken"
    doc["tenants"] = [dict(item, tenantToken="bad/token")]
    response = client.put("/__admin/snapshot", json=doc)
    assert response.status_code == 400
    assert response.get_json()["field"] == "tenants[0].tenantToken"


def test_a_whole_server_restore_drops_the_deleted_tenants_fault_rules(client):
    made = client.post("/__admin/tenants", json={}).get_json()
    doc = client.get("/__admin/snapshot?tenant=mock-tenant-token").get_json()
    client.post("/__admin/faults", json={"status": 503, "tenant": made["tenantToken"]})
    client.post("/__admin/faults", json={"status": 503, "tenant": "mock-tenant-token",
                                         "path": "/nowhere"})
    assert client.put("/__admin/snapshot", json=doc).status_code == 200
    tenants = [t["tenantToken"] for t in client.get("/__admin/tenants").get_json()]
    assert tenants == ["mock-tenant-token"]
    assert [r["tenant"] for r in client.get("/__admin/faults").get_json()] == \
        ["mock-tenant-token"]


def test_the_tables_models_round_trip_and_are_checked(planhat):
    """Licenses, tasks and NPS responses (any model of the table) are in the snapshot, come back
    with their indexes, and a record whose company is not in the snapshot is refused."""
    _seed(planhat)
    assert planhat.api("POST", "/licenses", {"companyId": "extid-acme", "_currency": "EUR",
                                             "fromDate": "2024-01-01",
                                             "externalId": "l1"}).status == 200
    assert planhat.api("POST", "/tasks", {"companyId": "extid-acme", "mainType": "task",
                                          "sourceId": "t1"}).status == 200
    assert planhat.api("POST", "/nps", {"email": "ann@acme.com", "score": 9}).status == 200
    doc = planhat.snapshot()
    item = doc["tenants"][0]
    assert [r["externalId"] for r in item["licenses"]] == ["l1"] and len(item["nps"]) == 1
    fresh = Target()
    try:
        other = fresh.new_tenant()
        other.restore(doc)
        assert other.api("GET", "/licenses/extid-l1").json()["companyName"] == "Acme"
        assert other.api("GET", "/tasks/srcid-t1").status == 200
        assert other.state()["nps"] == item["nps"]
        for path, field in ((("tenants", 0, "licenses", 0, "companyId"),
                             "tenants[0].licenses[0].companyId"),
                            (("tenants", 0, "tasks", 0, "_id"), "tenants[0].tasks[0]._id")):
            bad = _bad(doc, path, "0" * 24 if path[-1] == "companyId"
                       else item["licenses"][0]["_id"])
            response = fresh.request("PUT", f"/__admin/snapshot?tenant={other.tenant_token}",
                                     bad)
            assert response.status == 400 and response.json()["field"] == field, response.text
    finally:
        fresh.close()


def test_restored_links_must_name_records_in_the_snapshot(planhat):
    """An Issue's companyIds/enduserIds and a conversation's endusers in a snapshot are _ids of
    records in it: an unknown one is a 400 naming the item, and nothing is restored."""
    _seed(planhat)
    ann = planhat.api("GET", "/endusers?email=ann@acme.com").json()[0]
    assert planhat.api("POST", "/issues", {"title": "t", "enduserIds": [ann["_id"]],
                                           "companyIds": ["extid-acme"]}).status == 200
    assert planhat.api("POST", "/conversations", {"companyId": "extid-acme",
                                                  "endusers": [ann["_id"]]}).status == 200
    doc = planhat.snapshot()
    before = planhat.state()
    for path, field in ((("issues", 0, "companyIds", 0), "issues[0].companyIds[0]"),
                        (("issues", 0, "enduserIds", 0), "issues[0].enduserIds[0]"),
                        (("conversations", 0, "endusers", 0), "conversations[0].endusers[0]")):
        response = planhat.target.request(
            "PUT", f"/__admin/snapshot?tenant={planhat.tenant_token}",
            _bad(doc, ("tenants", 0, *path), "0" * 24))
        assert response.status == 400, response.text
        assert response.json()["field"] == f"tenants[0].{field}", response.json()
        assert "not the _id of" in response.json()["message"]
        assert planhat.state() == before
    restored = planhat.target.request(
        "PUT", f"/__admin/snapshot?tenant={planhat.tenant_token}", doc)
    assert restored.status == 200, restored.text
    assert planhat.state() == before


def _limits(client) -> dict:
    return {t["tenantToken"]: t["rateLimit"] for t in client.get("/__admin/tenants").get_json()}


def test_restored_tenants_keep_their_own_rate_limit(client):
    """A snapshot carries each tenant's rate limit: a fresh server with another default gives
    the restored tenants theirs back (and the limit answers 429 as before)."""
    from mock_planhat import create_app

    made = client.post("/__admin/tenants", json={"rateLimit": "2/s"}).get_json()
    doc = client.get("/__admin/snapshot").get_json()
    settings = {t["tenantToken"]: t["settings"] for t in doc["tenants"]}
    assert settings[made["tenantToken"]]["rateLimit"] == "2/s"
    assert settings["mock-tenant-token"]["rateLimit"] == "off"

    other = create_app(rate_limit="planhat").test_client()
    assert other.put("/__admin/snapshot", json=doc).status_code == 200
    assert _limits(other) == {"mock-tenant-token": None, made["tenantToken"]: "2/s"}
    headers = {"Authorization": f"Bearer {made['apiToken']}"}
    answers = [other.get("/companies", headers=headers).status_code for _ in range(3)]
    assert answers == [200, 200, 429]

    # into one tenant: the snapshot's limit replaces the tenant's own
    one = client.get(f"/__admin/snapshot?tenant={made['tenantToken']}").get_json()
    into = other.post("/__admin/tenants", json={"rateLimit": "off"}).get_json()
    assert other.put(f"/__admin/snapshot?tenant={into['tenantToken']}",
                     json=one).status_code == 200
    assert _limits(other)[into["tenantToken"]] == "2/s"


def test_a_snapshot_without_rate_limits_still_loads(client):
    """Snapshots written before tenants' rate limits were kept: a tenant the restore creates
    gets the server's default; a tenant restored into keeps its own."""
    from mock_planhat import create_app

    made = client.post("/__admin/tenants", json={"rateLimit": "2/s"}).get_json()
    doc = client.get("/__admin/snapshot").get_json()
    for item in doc["tenants"]:
        del item["settings"]["rateLimit"]
    other = create_app(rate_limit="5/s").test_client()
    keeps = other.post("/__admin/tenants", json={"rateLimit": "7/min"}).get_json()
    one = {**doc, "tenants": [doc["tenants"][1]]}
    assert other.put(f"/__admin/snapshot?tenant={keeps['tenantToken']}",
                     json=one).status_code == 200
    assert _limits(other)[keeps["tenantToken"]] == "7/min"
    assert other.put("/__admin/snapshot", json=doc).status_code == 200
    assert _limits(other) == {"mock-tenant-token": "5/s", made["tenantToken"]: "5/s"}


def test_a_bad_rate_limit_in_a_snapshot_is_400_naming_it(client):
    doc = client.get("/__admin/snapshot").get_json()
    doc["tenants"][0]["settings"]["rateLimit"] = "fast"
    response = client.put("/__admin/snapshot", json=doc)
    assert response.status_code == 400
    assert response.get_json()["field"] == "tenants[0].settings.rateLimit"


def _unknown_report(client) -> dict:
    """The report of the default tenant plus the unknown-tenant one, minus the default's."""
    both = client.get("/__admin/report").get_json()
    return {"counts": both["counts"], "entries": [
        e for e in both["entries"] if e["reason"] == "unknown_tenant"]}


def test_the_unknown_tenant_report_is_part_of_a_whole_server_snapshot(client, tmp_path):
    from mock_planhat import create_app

    client.post("/analytics/nobody-has-this", json={"action": "Ghost", "email": "g@x.org"})
    doc = client.get("/__admin/snapshot").get_json()
    assert doc["unknownTenant"]["reportCounts"] == {"unknown_tenant": 1}
    assert doc["unknownTenant"]["report"][0]["tenant"] == "nobody-has-this"
    one = client.get("/__admin/snapshot?tenant=mock-tenant-token").get_json()
    assert "unknownTenant" not in one  # it belongs to no tenant

    other = create_app().test_client()
    assert other.put("/__admin/snapshot", json=doc).status_code == 200
    restored = _unknown_report(other)
    assert restored["counts"] == {"unknown_tenant": 1}
    assert restored["entries"][0]["payload"] == [{"action": "Ghost", "email": "g@x.org"}]

    # a whole-server snapshot without one (written before it was kept) empties it
    del doc["unknownTenant"]
    assert other.put("/__admin/snapshot", json=doc).status_code == 200
    assert _unknown_report(other) == {"counts": {}, "entries": []}


def test_restored_report_counts_stay_consistent_with_the_entries(client):
    """Regression: a snapshot whose report held more entries than the report keeps lost the
    difference silently (dropped stayed 0, so counts != kept + dropped); counts fewer than the
    entries, or past 2**53, were taken as given."""
    doc = client.get("/__admin/snapshot").get_json()
    entry = {"reason": "x", "message": "m", "at": "2024-01-01T00:00:00.000Z",
             "source": "/companies", "payload": {"a": 1}}
    tenant = doc["tenants"][0]
    tenant["report"], tenant["reportCounts"] = [entry] * 10_050, {"x": 10_060}
    assert client.put("/__admin/snapshot", json=doc).status_code == 200
    report = client.get("/__admin/report").get_json()
    assert (report["counts"], report["dropped"], report["kept"]) == \
        ({"x": 10_060}, {"x": 60}, 10_000)
    for counts, field in (({"x": 3}, "tenants[0].reportCounts.x"),
                          ({"x": 2 ** 60}, "tenants[0].reportCounts.x")):
        tenant["report"], tenant["reportCounts"] = [entry] * 5, counts
        answer = client.put("/__admin/snapshot", json=doc)
        assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.data
    assert client.get("/__admin/report").get_json()["counts"] == {"x": 10_060}  # unchanged
    doc["unknownTenant"] = {"report": [dict(entry, reason="unknown_tenant")] * 2,
                            "reportCounts": {"unknown_tenant": 1}}
    tenant["reportCounts"] = {"x": 5}
    answer = client.put("/__admin/snapshot", json=doc)
    assert answer.status_code == 400
    assert answer.get_json()["field"] == "unknownTenant.reportCounts.unknown_tenant"
