"""Every skip reaches the tenant's report once, whatever the path (issue 8 §7): /v1, /dock,
the scenario runner in both modes and the pytest fixtures; an alias conflict is one entry with
a one-line message; a single REST write's refusal is its 4xx answer, not a report entry."""

from __future__ import annotations

import pytest

from mock_planhat.scenario import load_scenario, run_scenario

TENANT = "mock-tenant-token"
BEARER = {"Authorization": "Bearer mock-api-token"}
ALIAS_CONFLICT = [
    {"type": "identify", "userId": "kim", "traits": {"email": "kim@acme.com",
                                                     "companyId": "acme"}},
    {"type": "identify", "userId": "lee", "traits": {"email": "lee@acme.com",
                                                     "companyId": "acme"}},
    {"type": "alias", "previousId": "kim", "userId": "lee"},
]


def test_an_alias_conflict_through_v1_is_one_report_entry_with_a_one_line_message(client):
    client.post("/companies", json={"name": "Acme", "externalId": "acme"}, headers=BEARER)
    r = client.post("/v1/batch", json={"writeKey": TENANT, "batch": ALIAS_CONFLICT})
    assert r.status_code == 200
    report = client.get("/__admin/report").get_json()
    assert report["counts"] == {"alias_conflict": 1}
    [entry] = report["entries"]
    assert entry["source"] == "/v1/batch" and entry["payload"] == ALIAS_CONFLICT[2]
    message = entry["message"]
    assert "\n" not in message and "{" not in message, message
    assert message.startswith("alias: 'lee' belongs to another end user; extid-kim keeps")


def test_an_alias_of_an_unknown_user_says_so_in_one_line(client):
    r = client.post("/v1/alias", json={"writeKey": TENANT, "previousId": "ghost",
                                       "userId": "u9"})
    assert r.status_code == 200
    [entry] = client.get("/__admin/report").get_json()["entries"]
    assert entry["reason"] == "unknown_user"
    assert entry["message"].startswith("alias: no end user has extid-ghost")
    assert "\n" not in entry["message"]


def test_a_single_write_refused_with_a_4xx_is_not_a_report_entry(client):
    body = {"name": "Acme", "externalId": "acme"}
    assert client.post("/companies", json=body, headers=BEARER).status_code == 200
    r = client.post("/companies", json=body, headers=BEARER)
    assert r.status_code == 409 and r.get_json()["error"] == "duplicate_external_id"
    assert client.get("/__admin/report").get_json()["entries"] == []
    # a bulk row is answered 2xx with its error, and reported
    r = client.put("/companies", json=[{"externalId": "x"}], headers=BEARER)
    assert r.status_code == 206
    assert client.get("/__admin/report").get_json()["counts"] == {"missing_field": 1}


SKIPS = """\
name: skips reach the report
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - identify: {userId: kim, traits: {email: kim@acme.com, companyId: acme}}
  - identify: {userId: lee, traits: {email: lee@acme.com, companyId: acme}}
  - alias: {previousId: kim, userId: lee}
  - alias: {previousId: ghost, userId: g2}
  - identify: {userId: f, traits: {companyId: acme}, integrations: {Planhat: false}}
  - screen: {userId: kim, name: Home}
  - track: {anonymousId: a1, event: Clicked}
expect:
  delivered:
    calls: 7
    sent: 2
    skipped: {alias_conflict: 1, unknown_user: 1, filtered: 1, unsupported_call: 1,
              no_identifier: 1}
  report: {alias_conflict: 1, unknown_user: 1, filtered: 1, unsupported_call: 1,
           no_identifier: 1}
  count: {report: 5}
"""


@pytest.mark.parametrize("delivery", ["rest", "dock"])
def test_the_runner_s_report_and_delivered_agree_in_both_modes(tmp_path, delivery):
    path = tmp_path / "skips.yaml"
    path.write_text(SKIPS)
    result = run_scenario(load_scenario(path), delivery=delivery)
    assert result.passed, result.render()
    entries = result.state["report"]
    assert all("\n" not in e["message"] for e in entries)
    assert {e["reason"]: e["payload"]["type"] for e in entries} == {
        "alias_conflict": "alias", "unknown_user": "alias", "filtered": "identify",
        "unsupported_call": "screen", "no_identifier": "track"}


@pytest.mark.parametrize("planhat", ["rest", "dock"], indirect=True)
def test_the_fixture_destination_reports_its_skips(planhat, planhat_destination):
    result = planhat_destination.send({"type": "screen", "userId": "u1"})
    assert result.skipped == {"unsupported_call": 1}
    [entry] = planhat.report()["entries"]
    assert (entry["reason"], entry["source"]) == ("unsupported_call", "destination")
    assert entry["payload"] == {"type": "screen", "userId": "u1"}


def test_a_missing_pending_contact_is_named_in_plain_words(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsteps: []\nexpect:\n  pending: [{externalId: nobody}]\n"
                    "  companies: [{externalId: nothing}]\n")
    text = run_scenario(load_scenario(path)).render()
    assert "<no pending contact with externalId 'nobody'>" in text
    assert "<no company with externalId 'nothing'>" in text
    assert "pendin " not in text and "companie " not in text


@pytest.mark.parametrize("body,field", [
    ({}, "entries"), ({"entries": []}, "entries"), ({"entries": [5]}, "entries[0]"),
    ({"entries": [{"reason": "Bad Reason"}]}, "entries[0].reason"),
    ({"entries": [{"reason": "x", "message": 5}]}, "entries[0].message"),
    ({"entries": [{"reason": "x", "what": 1}]}, "entries[0].what"),
    ({"entries": [{"reason": "x"}], "more": 1}, "more")])
def test_adding_report_entries_checks_each_field(client, body, field):
    r = client.post("/__admin/report", json=body)
    assert r.status_code == 400 and r.get_json()["field"] == field, r.get_json()
    assert client.get("/__admin/report").get_json()["entries"] == []


def test_adding_report_entries_counts_them(client):
    r = client.post("/__admin/report", json={"entries": [
        {"reason": "filtered", "payload": {"type": "identify"}, "source": "destination"}]})
    assert r.status_code == 201 and r.get_json()["added"] == 1
    report = client.get("/__admin/report").get_json()
    assert report["counts"] == {"filtered": 1}
    assert report["entries"][0]["message"] == "filtered"
