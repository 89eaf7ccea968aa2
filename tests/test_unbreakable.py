"""Regressions of issue 9 ("Unbreakable"): each test is named after the defect it pins.

Deep JSON, client-chosen ids, byte-bounded retention, chunked bodies, server-owned activity
fields, dimension-data types, the ``.strip`` 500 and the report's counts.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from urllib.parse import urlsplit

import pytest
from conftest import API, TENANT, Api, exchange
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_planhat import Config, create_app
from mock_planhat.app import fake_of
from mock_planhat.cli import build_parser
from mock_planhat.server import Server

BASIC = {"Authorization": "Basic " + base64.b64encode(f"{TENANT}:".encode()).decode()}
ADMIN_READS = ("/__admin/state", "/__admin/requests", "/__admin/report", "/__admin/pending",
               "/__admin/tenants", "/__admin/faults", "/__admin/health")


def nested(depth: int, leaf=1, key="n"):
    """``depth`` objects, one inside the other (``{"n": {"n": … leaf}}``)."""
    value = leaf
    for _ in range(depth):
        value = {key: value}
    return value


def deep_text(depth: int) -> bytes:
    """``{"info": [[[…]]]}`` with ``depth`` levels in all: the shape of the adversarial run."""
    return b'{"info":' + b"[" * (depth - 1) + b"1" + b"]" * (depth - 1) + b"}"


def assert_admin_reads_answer(client):
    for path in ADMIN_READS:
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data()[:300])
        json.loads(response.get_data())  # valid JSON, whole


def seeded(client) -> Api:
    api = Api(client)
    assert api.post("/companies", json={"name": "Acme", "externalId": "acme",
                                        "domains": ["acme.com"]}).status_code == 200
    assert api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}
                    ).status_code == 200
    return api


# ----- 1. deep JSON that parses but cannot be written back ---------------------------------
DEEP_TARGETS = [
    ("PUT", "/endusers", API, lambda raw: b"[" + raw + b"]"),
    ("PUT", "/companies", API, lambda raw: b"[" + raw + b"]"),
    ("POST", "/endusers", API, lambda raw: raw),
    ("PUT", "/endusers/extid-u-1", API, lambda raw: raw),
    ("POST", f"/analytics/{TENANT}", {}, lambda raw: raw),
    ("POST", f"/analytics/bulk/{TENANT}", {}, lambda raw: b"[" + raw + b"]"),
    ("POST", "/analytics/bulk/no-such-tenant", {}, lambda raw: b"[" + raw + b"]"),
    ("POST", f"/dimensiondata/{TENANT}", {}, lambda raw: raw),
    ("POST", "/v1/track", BASIC, lambda raw: raw),
    ("POST", "/v1/batch", BASIC, lambda raw: b'{"batch":[' + raw + b"]}"),
    ("POST", "/dock/segment", BASIC, lambda raw: raw),
    ("POST", "/nowhere", {}, lambda raw: raw),
]


@pytest.mark.parametrize(("method", "path", "headers", "wrap"), DEEP_TARGETS,
                         ids=[f"{m} {p}" for m, p, _, _ in DEEP_TARGETS])
def test_deep_json_that_parses_is_refused_at_the_door(client, method, path, headers, wrap):
    """Every depth from just past the limit to past the parser's own: where a body parses but
    could not be written back depends on the stack, so all of them are sent."""
    seeded(client)
    for depth in (41, 42, 100, 500, *range(900, 1001)):
        body = wrap(deep_text(depth))
        response = client.open(path, method=method, data=body,
                               headers={**headers, "Content-Type": "application/json"})
        assert response.status_code < 500, (depth, response.get_data()[:300])
        if response.status_code >= 400:
            error = response.get_json()
            if error.get("success") is not False:  # Segment's /v1 has its own error shape
                assert error["field"], (depth, error)
                assert response.status_code == 404 or error["field"] in error["message"]
        if depth in (41, 500, 969, 1000):
            assert_admin_reads_answer(client)
    assert_admin_reads_answer(client)


def test_deep_json_error_names_the_branch(api):
    row = {"email": "x@acme.com", "custom": nested(60)}
    response = api.put("/endusers", json=[{"email": "a@acme.com"}, row])
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_json" and body["field"] == "[1].custom", body
    assert "40 levels" in body["message"] and "32" in body["message"]
    # Nothing of the bulk was written (the door refused the whole body).
    assert api.state()["endusers"] == []


def test_deep_json_bulk_echo_at_973_levels(api, company):
    response = api.client.put("/endusers", data=b"[" + deep_text(973) + b"]",
                              headers={**API, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_json"


def test_deep_json_within_the_field_limit_is_kept_and_readable(api, company):
    row = {"email": "deep@acme.com", "custom": nested(32)}
    assert api.put("/endusers", json=[row]).status_code == 200
    assert api.state()["endusers"][0]["custom"] == nested(32)
    too_deep = {"email": "deeper@acme.com", "custom": nested(33)}
    result = api.put("/endusers", json=[too_deep]).get_json()
    assert result["createdErrors"][0]["field"] == "custom"  # a field error, echoed whole
    assert_admin_reads_answer(api.client)


def test_deep_json_in_the_journal_is_kept_as_bounded_text(client):
    client.post("/nowhere", data=deep_text(500), headers={"Content-Type": "application/json"})
    entry = client.get("/__admin/requests").get_json()["requests"][-1]
    assert isinstance(entry["body"], str) and entry["body"].startswith('{"info":[[[')


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False,
                                                                      allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12)
_FIELDS = ["email", "externalId", "sourceId", "_id", "name", "custom", "info", "companyId",
           "enduserId", "userId", "traits", "properties", "event", "dimensionId", "value",
           "model", "date", "domains", "tags", "zz_unknown"]


@st.composite
def _payloads(draw):
    row = draw(st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=5))
    if draw(st.booleans()):
        key = draw(st.sampled_from(_FIELDS))
        row[key] = nested(draw(st.integers(30, 980)), draw(_JSON), draw(st.sampled_from("na")))
    return row


_ACCEPT_TARGETS = [
    ("PUT", "/endusers", API, True), ("PUT", "/companies", API, True),
    ("POST", "/endusers", API, False), ("PUT", "/endusers/extid-u-1", API, False),
    ("POST", "/companies", API, False), ("PUT", "/companies/extid-acme", API, False),
    ("POST", f"/analytics/{TENANT}", {}, False), ("POST", f"/analytics/bulk/{TENANT}", {}, True),
    ("POST", "/analytics/bulk/unknown", {}, True), ("POST", f"/dimensiondata/{TENANT}", {}, True),
    ("POST", "/v1/identify", BASIC, False), ("POST", "/v1/track", BASIC, False),
    ("POST", "/dock/segment", BASIC, False), ("PUT", "/nowhere", {}, False),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(_ACCEPT_TARGETS), rows=st.lists(_payloads(), min_size=1,
                                                              max_size=3))
def test_deep_json_any_accepted_input_leaves_every_admin_read_answering(target, rows):
    """The property: whatever a client sends and the fake accepts (or refuses), every admin
    read answers 200 with valid JSON afterwards — never a 5xx."""
    client = _property_app().test_client()
    method, path, headers, bulk = target
    body = rows if bulk else rows[0]
    if "/v1/" in path or "/dock/" in path:
        body = {"userId": "u-1", "type": path.rsplit("/", 1)[-1], "event": "e", **rows[0]}
    response = client.open(path, method=method, data=json.dumps(body),
                           headers={**headers, "Content-Type": "application/json"})
    assert response.status_code < 500, response.get_data()[:300]
    assert_admin_reads_answer(client)


_PROPERTY_APP = []


def _property_app():
    if not _PROPERTY_APP:
        app = create_app(Config())
        seeded(app.test_client())
        _PROPERTY_APP.append(app)
    return _PROPERTY_APP[0]


# ----- 2. client-chosen _id -----------------------------------------------------------------
def test_client_chosen_id_in_a_bulk_row_is_unknown_id(api, company):
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"})
    claimed = "a" * 24
    result = api.put("/endusers", json=[{"_id": claimed, "email": "ada@acme.com",
                                         "externalId": "g2"}]).get_json()
    assert result["created"] == 0
    assert result["createdErrors"][0]["reason"] == "unknown_id"
    assert result["createdErrors"][0]["field"] == "_id"
    assert all(p["_id"] != claimed for p in api.state()["endusers"] + api.state()["pending"])


def test_client_chosen_id_never_becomes_a_company_id(api):
    result = api.put("/companies", json=[{"_id": "b" * 24, "name": "B"}]).get_json()
    assert result["createdErrors"][0]["reason"] == "unknown_id"
    assert api.state()["companies"] == []


def test_client_chosen_id_with_a_matching_key_is_still_unknown_id(api, company):
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"})
    result = api.put("/endusers", json=[{"_id": "c" * 24, "externalId": "u-1",
                                         "firstName": "X"}]).get_json()
    assert result["updated"] == 0 and result["createdErrors"][0]["reason"] == "unknown_id"


def test_client_chosen_id_on_single_create_is_refused(api, company):
    response = api.post("/endusers", json={"_id": "d" * 24, "email": "x@acme.com"})
    assert response.status_code == 400 and response.get_json()["field"] == "_id"
    response = api.post("/companies", json={"_id": "d" * 24, "name": "D"})
    assert response.status_code == 400 and response.get_json()["field"] == "_id"


def test_client_chosen_id_ids_are_unpredictable():
    from mock_planhat.store import new_id

    ids = [new_id() for _ in range(2_000)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    # No shared prefix (the old ids shared time + a process prefix) and no counter.
    assert len({i[:10] for i in ids}) > 1_900
    assert len({i[-6:] for i in ids}) > 1_900


def test_client_chosen_id_a_create_never_replaces_a_record(api, company, monkeypatch):
    """Even if an id repeated, the store refuses to overwrite: the row fails alone."""
    first = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}).get_json()
    monkeypatch.setattr("mock_planhat.matching.new_id", lambda: first["_id"])
    result = api.put("/endusers", json=[{"email": "bob@acme.com", "externalId": "u-2"}])
    assert result.status_code == 206
    error = result.get_json()["createdErrors"][0]
    assert error["reason"] == "internal_error" and "already" in error["message"]
    people = api.state()["endusers"]
    assert [(p["_id"], p["externalId"]) for p in people] == [(first["_id"], "u-1")]
    assert api.get("/endusers/extid-u-1").get_json()["email"] == "ada@acme.com"


# ----- 3. retention bounded in bytes --------------------------------------------------------
def test_retention_unknown_tenant_report_is_bounded_in_bytes():
    app = create_app(Config(report_bytes=200_000, payload_bytes=10_000))
    client = app.test_client()
    row = {"externalId": "x", "action": "a", "info": {"note": "y" * 5_000}}
    for i in range(20):
        assert client.post(f"/analytics/bulk/nobody-{i}", json=[row] * 20).status_code == 200
    report = client.get("/__admin/report").get_json()
    assert report["counts"] == {"unknown_tenant": 20}
    assert report["kept"] == len(report["entries"]) < 20
    assert report["dropped"]["unknown_tenant"] == 20 - report["kept"]
    payload = report["entries"][-1]["payload"]
    assert payload["truncated"] is True and payload["bytes"] > 100_000
    assert len(payload["text"]) == 10_000
    assert fake_of(app).registry.unknown_tenant_report.bytes <= 200_000


def test_retention_tenant_report_is_bounded_in_bytes():
    api = Api(create_app(Config(report_bytes=50_000, report_size=1_000)).test_client())
    for i in range(200):
        api.client.post(f"/analytics/{TENANT}", json={"externalId": f"ghost-{i}",
                                                      "info": {"note": "z" * 1_000}})
    report = api.client.get(f"/__admin/report?tenant={TENANT}").get_json()
    assert report["counts"] == {"unknown_user": 200}
    assert 0 < report["kept"] < 200 and report["kept"] + report["dropped"]["unknown_user"] == 200
    assert len(json.dumps(report["entries"])) < 60_000
    assert api.state()["reportCounts"] == {"unknown_user": 200}


def test_retention_journal_is_bounded_in_bytes():
    app = create_app(Config(journal_bytes=300_000, payload_bytes=20_000))
    client = app.test_client()
    for i in range(100):
        client.post(f"/nowhere/{i}", data=b"x" * 65_000)
    journal = client.get("/__admin/requests").get_json()
    assert journal["total"] == 100 and journal["kept"] == len(journal["requests"]) < 100
    assert journal["dropped"] == 100 - journal["kept"]
    assert journal["bytes"] <= journal["maxBytes"] == 300_000
    body = journal["requests"][-1]["body"]
    assert body == {"truncated": True, "bytes": 65_000, "text": "x" * 20_000}
    assert journal["requests"][-1]["path"] == "/nowhere/99"


def test_retention_report_message_is_bounded(api):
    api.put("/companies", json=[{"name": "A", "status": "s" * 100_000}])
    entry = api.client.get("/__admin/report").get_json()["entries"][-1]
    assert len(entry["message"]) < 3_000 and entry["message"].startswith("status:")


def test_retention_dimension_rows_are_capped(client):
    rows = [{"dimensionId": "d", "value": 1}] * 5_001
    response = client.post(f"/dimensiondata/{TENANT}", json=rows)
    assert response.status_code == 400 and response.get_json()["field"] == "body"
    assert "5001" in response.get_json()["message"]
    assert client.post(f"/dimensiondata/{TENANT}", json=rows[:5_000]).get_json()[
        "processed"] == 5_000


def test_retention_report_and_journal_page_with_limit_and_offset(client):
    for i in range(10):
        client.post(f"/analytics/{TENANT}", json={"externalId": f"ghost-{i}", "action": "a"})
    page = client.get("/__admin/report?offset=3&limit=4").get_json()
    assert [e["payload"]["externalId"] for e in page["entries"]] == [
        f"ghost-{i}" for i in range(3, 7)]
    assert page["kept"] == 10 and page["counts"] == {"unknown_user": 10}
    assert (page["offset"], page["limit"]) == (3, 4)
    journal = client.get("/__admin/requests?offset=8&limit=5").get_json()
    assert [r["body"]["externalId"] for r in journal["requests"]] == ["ghost-8", "ghost-9"]
    assert journal["kept"] == 10
    for bad in ("limit=-1", "offset=x", "limit=1.5", "limit=", "offset=1&offset=2"):
        for path in ("/__admin/report", "/__admin/requests"):
            response = client.get(f"{path}?{bad}")
            assert response.status_code == 400, (path, bad)
            assert response.get_json()["field"] == bad.split("=")[0]


def test_retention_bounds_are_cli_flags():
    args = build_parser(scenario_commands=False).parse_args(
        ["serve", "--journal-bytes", "1000", "--report-size", "7", "--report-bytes", "2000",
         "--payload-bytes", "300"])
    assert (args.journal_bytes, args.report_size, args.report_bytes, args.payload_bytes) == (
        1000, 7, 2000, 300)
    with pytest.raises(SystemExit):
        build_parser(scenario_commands=False).parse_args(["serve", "--report-bytes", "-1"])


# ----- 4. chunked bodies ---------------------------------------------------------------------
def _chunked(url: str, method: str, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for key, value in {**headers, "Content-Type": "application/json",
                           "Transfer-Encoding": "chunked"}.items():
            connection.putheader(key, value)
        connection.endheaders()
        try:
            for i in range(0, len(body), 4096):
                chunk = body[i:i + 4096]
                connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before the upload ended
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def small_server():
    server = Server(create_app(Config(max_body=1000)), "127.0.0.1", 0).start()
    yield server
    server.stop()


def test_chunked_body_over_the_limit_is_413(small_server):
    rows = json.dumps([{"externalId": f"u{i}", "email": f"u{i}@x.com"}
                       for i in range(1_500)]).encode()
    status, body = _chunked(small_server.url, "PUT", "/endusers", rows, API)
    assert status == 413, body
    assert body["error"] == "request_entity_too_large" and body["field"] == "body"
    assert "1000" in body["message"]
    app = small_server.app
    assert fake_of(app).registry.default.endusers == {}


def test_chunked_body_is_journaled_with_its_body(small_server):
    row = [{"externalId": "u1", "email": "u1@x.com"}]
    status, _ = _chunked(small_server.url, "PUT", "/endusers", json.dumps(row).encode(), API)
    assert status in (200, 206)
    client = small_server.app.test_client()
    entry = client.get("/__admin/requests").get_json()["requests"][-1]
    assert entry["status"] == status and entry["body"] == row


# ----- 5. tracking rows: server-owned fields, dimension-data types ---------------------------
def test_tracking_rows_cannot_set_server_owned_fields(api, company):
    ada = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}).get_json()
    other = api.post("/companies", json={"name": "Other", "externalId": "other"}).get_json()
    response = api.client.post(f"/analytics/{TENANT}", json={
        "externalId": "u-1", "action": "x", "_id": "e" * 24, "enduserId": "f" * 24,
        "companyId": other["_id"]})
    assert response.get_json()["processed"] == 1
    activity = api.state()["activities"][0]
    assert activity["_id"] != "e" * 24 and re.fullmatch(r"[0-9a-f]{24}", activity["_id"])
    assert activity["enduserId"] == ada["_id"] and activity["companyId"] == company["_id"]
    entry = api.client.get("/__admin/report?reason=ignored_field").get_json()["entries"][0]
    assert all(f in entry["message"] for f in ("_id", "enduserId", "companyId"))


def test_tracking_rows_ghost_external_id_is_not_kept(api, company):
    ada = api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}).get_json()
    api.client.post(f"/analytics/{TENANT}", json={"externalId": "ghost", "email": "ada@acme.com",
                                                  "action": "x"})
    activity = api.state()["activities"][0]
    assert activity["enduserId"] == ada["_id"] and activity["externalId"] == "u-1"
    entry = api.client.get("/__admin/report?reason=ignored_field").get_json()["entries"][0]
    assert "'ghost'" in entry["message"] and entry["payload"]["externalId"] == "ghost"


def test_tracking_rows_plain_activity_reports_nothing(api, company):
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"})
    api.client.post(f"/analytics/{TENANT}", json={"externalId": "u-1", "action": "x"})
    api.client.post(f"/analytics/{TENANT}", json={"email": "ada@acme.com", "action": "y"})
    assert api.client.get("/__admin/report").get_json()["counts"] == {}
    assert [a["externalId"] for a in api.state()["activities"]] == ["u-1", "u-1"]


@pytest.mark.parametrize(("row", "field"), [
    ({"dimensionId": "", "value": 1}, "dimensionId"),
    ({"dimensionId": 5, "value": 1}, "dimensionId"),
    ({"dimensionId": ["d"], "value": 1}, "dimensionId"),
    ({"dimensionId": "d", "value": "3"}, "value"),
    ({"dimensionId": "d", "value": True}, "value"),
    ({"dimensionId": "d", "value": 1, "model": "Planet"}, "model"),
    ({"dimensionId": "d", "value": 1, "model": 3}, "model"),
    ({"dimensionId": "d", "value": 1, "date": "yesterday"}, "date"),
    ({"dimensionId": "d", "value": 1, "date": "2024-02-30"}, "date"),
    ({"dimensionId": "d", "value": 1, "date": 20240101}, "date"),
    ({"dimensionId": "d", "value": 1, "externalId": {"a": 1}}, "externalId"),
    ({"value": 1}, "dimensionId"),
])
def test_tracking_rows_dimension_data_fields_are_type_checked(api, row, field):
    good = {"dimensionId": "logins", "value": 2.5, "model": "Company",
            "date": "2024-06-01T12:00:00Z", "externalId": "acme"}
    response = api.client.post(f"/dimensiondata/{TENANT}", json=[good, row])
    body = response.get_json()
    assert response.status_code == 200 and body["processed"] == 1
    [error] = body["errors"]
    assert error["index"] == 1 and error["field"] == f"[1].{field}", error
    assert error["reason"] == "invalid_metric" and field in error["message"]
    entry = api.client.get("/__admin/report?reason=invalid_metric").get_json()["entries"][0]
    assert entry["message"] == error["message"] and entry["payload"] == row
    assert [d["dimensionId"] for d in api.state()["dimensiondata"]] == ["logins"]


def test_tracking_rows_dimension_data_id_is_the_servers(api):
    api.client.post(f"/dimensiondata/{TENANT}", json=[{"dimensionId": "d", "value": 1,
                                                      "_id": "9" * 24}])
    assert api.state()["dimensiondata"][0]["_id"] != "9" * 24


# ----- 10. the .strip 500, and bulks that fail half-way -------------------------------------
@pytest.mark.parametrize("email", [["a@acme.com"], {"a": 1}, 5, True])
@pytest.mark.parametrize(("method", "path", "bulk"), [
    ("PUT", "/companies", True), ("POST", "/companies", False),
    ("PUT", "/companies/extid-acme", False), ("PUT", "/endusers", True),
    ("POST", "/endusers", False), ("PUT", "/endusers/extid-u-1", False)])
def test_strip_500_email_of_any_type_on_every_path(api, company, method, path, bulk, email):
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"})
    row = {"name": "Acme 2", "externalId": "acme-2", "email": email} if "compan" in path \
        else {"externalId": "u-2", "email": email}
    response = api.client.open(path, method=method, json=[row] if bulk else row, headers=API)
    assert response.status_code < 500, response.get_data()[:300]
    if "compan" in path:  # companies declare no email: kept as sent
        assert response.status_code == 200
        record = (response.get_json()["insertsKeys"][0] if bulk else response.get_json())
        stored = next(c for c in api.state()["companies"] if c["_id"] == record["_id"])
        assert stored["email"] == email
    else:
        assert response.status_code in (206, 400)


def test_strip_500_bulk_rows_before_a_bad_one_and_after_it(api, company):
    rows = [{"name": "One", "externalId": "one"}, {"name": "Two", "email": ["x"]},
            {"name": "Three", "externalId": "three"}]
    response = api.put("/companies", json=rows)
    assert response.status_code == 200 and response.get_json()["created"] == 3


# ----- issue 8 §7: the report's counts and entries agree -----------------------------------
def test_report_counts_agree_with_entries_without_a_tenant(client):
    client.post("/analytics/nobody", json={"externalId": "x", "action": "a"})
    client.post(f"/analytics/{TENANT}", json={"externalId": "ghost", "action": "a"})
    report = client.get("/__admin/report").get_json()
    reasons = sorted(e["reason"] for e in report["entries"])
    assert reasons == ["unknown_tenant", "unknown_user"]
    assert report["counts"] == {"unknown_tenant": 1, "unknown_user": 1}
    assert report["total"] == report["kept"] == 2 and report["dropped"] == {}
    one = client.get("/__admin/report?reason=unknown_tenant").get_json()
    assert one["counts"] == {"unknown_tenant": 1} and len(one["entries"]) == 1
    own = client.get(f"/__admin/report?tenant={TENANT}").get_json()
    assert own["counts"] == {"unknown_user": 1} and len(own["entries"]) == 1


def test_deep_json_over_a_live_server_at_965_to_975_levels(live_server):
    """As the adversarial run sent them: over a socket (a shallower stack than the test
    client's, so these depths parse), to the bulk echo, /v1/track and /dock/segment."""
    import requests

    url = live_server.url
    headers = {"Content-Type": "application/json"}
    requests.post(f"{url}/companies", json={"name": "Acme", "externalId": "acme",
                                            "domains": ["acme.com"]}, headers=API, timeout=10)
    for depth in range(965, 976):
        inner = deep_text(depth)[:-1] + b',"userId":"u-1","event":"e","email":"a@acme.com"}'
        for path, auth, body in (("/endusers", API, b"[" + inner + b"]"),
                                 ("/v1/track", BASIC, inner), ("/dock/segment", BASIC, inner)):
            method = "PUT" if path == "/endusers" else "POST"
            response = requests.request(method, url + path, data=body,
                                        headers={**auth, **headers}, timeout=10)
            assert response.status_code == 400, (depth, path, response.text[:200])
        for path in ADMIN_READS:
            assert requests.get(url + path, timeout=10).status_code == 200, (depth, path)


def test_chunked_body_with_a_broken_chunk_header_is_400(live_server):
    answer = exchange(live_server,
                      b"PUT /endusers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      b"mock-api-token\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n", timeout=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    error = json.loads(body)
    assert error["error"] == "invalid_body" and error["field"] == "Transfer-Encoding"


def test_strip_500_an_activity_row_that_fails_unforeseen_fails_alone(api, company, monkeypatch):
    """Should a row ever hit a bug, it fails alone: the rows around it are applied and the
    answer is still 200 with the row in notApplied."""
    api.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"})
    import mock_planhat.matching as matching

    real = matching.record_activity

    def flaky(tenant, row, source=None):
        if row.get("action") == "boom":
            raise KeyError("boom")
        return real(tenant, row, source)

    monkeypatch.setattr("mock_planhat.routes.analytics.record_activity", flaky)
    rows = [{"externalId": "u-1", "action": a} for a in ("one", "boom", "three")]
    body = api.client.post(f"/analytics/bulk/{TENANT}", json=rows).get_json()
    assert body["processed"] == 2
    assert body["notApplied"] == [{"index": 1, "reason": "internal_error",
                                   "message": body["notApplied"][0]["message"]}]
    assert [a["action"] for a in api.state()["activities"]] == ["one", "three"]


def test_chunked_body_that_stalls_is_408_like_a_sized_one():
    server = Server(create_app(Config()), "127.0.0.1", 0, read_timeout=0.5).start()
    try:
        answer = exchange(server, b"PUT /endusers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                  b"mock-api-token\r\nContent-Type: application/json\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n5\r\n[{\"a\"", timeout=10)
    finally:
        server.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(body)["error"] == "request_timeout"
