"""The matching rule through PUT /endusers: order of keys, ambiguity, unassigned policy."""

from __future__ import annotations

import pytest


def upsert(api, *rows):
    return api.put("/endusers", json=list(rows)).get_json()


def people(api):
    state = api.state()
    return state["endusers"] + state["pending"]


def test_row_without_match_creates(api, company):
    body = upsert(api, {"externalId": "u1", "email": "a@acme.com"})
    assert body["created"] == 1 and len(people(api)) == 1


def test_matches_by_external_id(api, company):
    upsert(api, {"externalId": "u1", "email": "a@acme.com"})
    body = upsert(api, {"externalId": "u1", "position": "CTO"})
    assert body["updated"] == 1 and body["created"] == 0
    assert [p["position"] for p in people(api)] == ["CTO"]


def test_matches_by_email_trimmed_and_case_insensitive(api, company):
    upsert(api, {"externalId": "u1", "email": "Ann.Lee@Acme.com"})
    body = upsert(api, {"email": "  ann.lee@ACME.COM ", "phone": "123"})
    assert body["updated"] == 1
    (user,) = people(api)
    assert user["phone"] == "123" and user["externalId"] == "u1"


def test_matches_by_source_id_and_by_id(api, company):
    upsert(api, {"sourceId": "s1", "email": "a@acme.com"})
    (user,) = people(api)
    upsert(api, {"sourceId": "s1", "position": "A"})
    upsert(api, {"_id": user["_id"], "phone": "B"})
    (user,) = people(api)
    assert (user["position"], user["phone"]) == ("A", "B")


@pytest.fixture
def three(api, company):
    """e1 (one@), e2 with sourceId s2 (two@), e3 (three@); returns their _ids by externalId."""
    upsert(api, {"externalId": "e1", "email": "one@acme.com"},
           {"externalId": "e2", "sourceId": "s2", "email": "two@acme.com"},
           {"externalId": "e3", "email": "three@acme.com"})
    return {p["externalId"]: p["_id"] for p in people(api)}


def hit(api):
    return {p["_id"] for p in people(api) if p["custom"].get("hit")}


def test_id_wins_over_source_id_external_id_and_email(api, three):
    upsert(api, {"_id": three["e1"], "sourceId": "s2", "externalId": "e3",
                 "email": "two@acme.com", "custom": {"hit": 1}})
    assert hit(api) == set()  # matched e1, whose new keys belong to others: rejected
    upsert(api, {"_id": three["e1"], "email": "two@acme.com", "custom": {"hit": 1}})
    assert hit(api) == {three["e1"]}


def test_source_id_wins_over_external_id_and_email(api, three):
    upsert(api, {"sourceId": "s2", "email": "three@acme.com", "custom": {"hit": 1}})
    assert hit(api) == {three["e2"]}


def test_external_id_wins_over_email(api, three):
    upsert(api, {"externalId": "e3", "email": "one@acme.com", "custom": {"hit": 1}})
    assert hit(api) == {three["e3"]}


def test_unmatched_keys_fall_through_to_email(api, company):
    upsert(api, {"email": "ann@acme.com"})  # a contact made without an externalId
    (ann,) = people(api)
    upsert(api, {"externalId": "u-ann", "email": "ANN@acme.com", "custom": {"hit": 1}})
    assert hit(api) == {ann["_id"]}
    assert api.get("/endusers/extid-u-ann").get_json()["_id"] == ann["_id"]


def test_email_match_with_another_external_id_attaches_by_default(api, three):
    """The seeds: "If the userId or traits.email matches an existing Contact … the data will
    be associated with that contact" — the row's userId becomes its externalId."""
    before = api.get("/endusers/extid-e1").get_json()
    r = api.put("/endusers", json=[{"externalId": "e9", "email": "ONE@acme.com",
                                    "position": "CTO"}])
    assert r.status_code == 200
    body = r.get_json()
    assert body["created"] == 0 and body["updated"] == 1
    assert body["updatesKeys"] == [{
        "_id": before["_id"], "externalId": "e9", "email": "ONE@acme.com",
        "matchedBy": "email", "changed": {"externalId": {"from": "e1", "to": "e9"}}}]
    after = api.get("/endusers/extid-e9").get_json()
    assert after["_id"] == before["_id"] and after["position"] == "CTO"
    assert api.get("/endusers/extid-e1").status_code == 404
    assert len(api.get("/endusers?email=one@acme.com").get_json()) == 1
    report = api.client.get("/__admin/report").get_json()
    (entry,) = report["entries"]
    assert report["counts"] == {"matched_by_email": 1}
    assert entry["reason"] == "matched_by_email" and entry["source"] == "/endusers"
    assert entry["decision"] == {"matchedBy": "email", "enduserId": before["_id"],
                                 "changed": {"externalId": {"from": "e1", "to": "e9"}}}
    assert "'e1' to 'e9'" in entry["message"]


def test_email_match_that_only_adds_an_external_id_says_so_in_the_row(api, company):
    created = api.post("/endusers", json={"email": "new@acme.com"}).get_json()
    body = upsert(api, {"externalId": "u7", "email": "new@acme.com"})
    assert body["updatesKeys"][0]["matchedBy"] == "email"
    assert body["updatesKeys"][0]["changed"] == {"externalId": {"from": None, "to": "u7"}}
    assert body["updatesKeys"][0]["_id"] == created["_id"]
    assert api.client.get("/__admin/report").get_json()["entries"] == []  # nothing replaced


def test_email_match_strict_makes_another_person(make_api):
    api = make_api(email_match="strict")
    api.post("/companies", json={"name": "Acme", "externalId": "acme", "domains": ["acme.com"]})
    upsert(api, {"externalId": "e1", "email": "one@acme.com"})
    body = upsert(api, {"externalId": "e9", "email": "one@acme.com"})
    assert body["created"] == 1
    assert api.get("/endusers/extid-e1").get_json()["email"] == "one@acme.com"
    assert len(api.get("/endusers?email=one@acme.com").get_json()) == 2
    assert api.state()["emailMatch"] == "strict"


def test_email_attach_never_gives_a_second_record_an_external_id(api, company):
    """A key held by anyone matches before the email does, so an attach cannot duplicate it."""
    upsert(api, {"externalId": "u1", "email": "a@acme.com"},
           {"externalId": "u2", "email": "b@acme.com"})
    body = upsert(api, {"externalId": "u2", "email": "a@acme.com"})
    assert body["updated"] == 1 and "matchedBy" not in body["updatesKeys"][0]
    assert sorted(p["externalId"] for p in people(api)) == ["u1", "u2"]


def test_unknown_id_in_row_is_not_created(api, company):
    body = upsert(api, {"_id": "0123456789abcdef01234567", "email": "x@acme.com"})
    assert body["createdErrors"][0]["reason"] == "unknown_id"
    assert people(api) == []


@pytest.mark.parametrize("policy", ["attach", "strict"])
def test_email_shared_by_two_matches_neither(make_api, policy):
    api = make_api(email_match=policy)
    api.post("/companies", json={"name": "Acme", "externalId": "acme", "domains": ["acme.com"]})
    for ext, email in (("u1", "team@acme.com"), ("u2", "TEAM@acme.com")):
        assert api.post("/endusers", json={"externalId": ext, "email": email}).status_code == 200
    r = api.put("/endusers", json=[{"email": "team@acme.com", "position": "X"}])
    assert r.status_code == 206
    error = r.get_json()["createdErrors"][0]
    assert error["reason"] == "ambiguous_email" and error["field"] == "email"
    assert all("position" not in p for p in people(api))
    report = api.client.get("/__admin/report").get_json()
    assert report["counts"] == {"ambiguous_email": 1}
    assert report["entries"][0]["payload"] == {"email": "team@acme.com", "position": "X"}


def test_external_id_never_duplicated(api, company):
    upsert(api, {"externalId": "u1", "email": "a@acme.com"},
           {"externalId": "u2", "email": "b@acme.com"})
    r = api.put("/endusers/extid-u2", json={"externalId": "u1"})
    assert r.status_code == 409 and r.get_json()["field"] == "externalId"
    body = upsert(api, {"email": "b@acme.com", "externalId": "u1"})
    assert body["updated"] == 1  # matched u1 by externalId first: no second u1
    ext = [p["externalId"] for p in people(api)]
    assert sorted(ext) == ["u1", "u2"]


def test_company_from_email_domain(api, company):
    upsert(api, {"externalId": "u1", "email": "ann@ACME.com"})
    (user,) = api.state()["endusers"]
    assert user["companyId"] == company["_id"] and user["companyName"] == "Acme"


def test_hold_keeps_pending_contact_found_by_matching(api):
    body = upsert(api, {"externalId": "u1", "email": "a@nowhere.org"})
    assert body["createdErrors"][0]["held"] is True
    state = api.state()
    assert state["endusers"] == [] and len(state["pending"]) == 1
    assert api.get("/endusers").get_json() == []
    upsert(api, {"email": "A@nowhere.org", "position": "CEO"})  # matched while pending
    (pending,) = api.state()["pending"]
    assert pending["position"] == "CEO"
    assert api.client.get("/__admin/pending").get_json()[0]["_id"] == pending["_id"]


def test_pending_assigned_by_admin(api):
    upsert(api, {"externalId": "u1", "email": "a@nowhere.org"})
    pid = api.state()["pending"][0]["_id"]
    company = api.post("/companies", json={"name": "Later", "externalId": "later"}).get_json()
    r = api.client.post(f"/__admin/pending/{pid}/assign", json={"companyId": "extid-later"})
    assert r.status_code == 200 and r.get_json()["companyId"] == company["_id"]
    state = api.state()
    assert state["pending"] == [] and state["endusers"][0]["_id"] == pid
    assert state["endusers"][0]["companyName"] == "Later"


def test_pending_assigned_by_a_later_row_that_brings_a_company(api):
    upsert(api, {"externalId": "u1"})
    api.post("/companies", json={"name": "Later", "externalId": "later"})
    body = upsert(api, {"externalId": "u1", "companyId": "extid-later"})
    assert body["created"] == 1
    state = api.state()
    assert state["pending"] == [] and len(state["endusers"]) == 1


@pytest.mark.parametrize("ref", [{"companyId": "extid-nope"}, {"companyExternalId": "nope"},
                                 {"companyId": "0123456789abcdef01234567"}])
def test_unresolvable_company_reference_counts_as_no_company(api, company, ref):
    body = upsert(api, {"externalId": "u1", "email": "a@acme.com", **ref})
    assert body["createdErrors"][0]["reason"] == "no_company"
    assert len(api.state()["pending"]) == 1


def test_discard_drops_and_reports_no_company(make_api):
    api = make_api(unassigned="discard")
    r = api.put("/endusers", json=[{"externalId": "u1", "email": "a@nowhere.org"}])
    assert r.status_code == 206
    error = r.get_json()["createdErrors"][0]
    assert error["reason"] == "no_company" and "held" not in error
    state = api.state()
    assert state["endusers"] == [] and state["pending"] == []
    assert state["reportCounts"] == {"no_company": 1}


def test_post_without_company_is_held_with_202(api):
    r = api.post("/endusers", json={"externalId": "u1"})
    assert r.status_code == 202 and r.get_json()["pending"] is True


def test_new_end_user_needs_an_identifier(api, company):
    body = upsert(api, {"firstName": "Nobody", "companyId": "extid-acme"})
    assert body["createdErrors"][0]["reason"] == "missing_identifier"
    assert people(api) == []


def test_moving_an_end_user_to_another_company(api, company):
    upsert(api, {"externalId": "u1", "companyId": "extid-acme"})
    other = api.post("/companies", json={"name": "Beta", "externalId": "beta"}).get_json()
    upsert(api, {"externalId": "u1", "companyId": "extid-beta"})
    assert api.get(f"/endusers?companyId={company['_id']}").get_json() == []
    assert len(api.get(f"/endusers?companyId={other['_id']}").get_json()) == 1
