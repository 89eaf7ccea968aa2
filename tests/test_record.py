"""Record → scenario: the real Segment SDK sends traffic to a live fake, `record` writes a
scenario, `run` replays it (passes); one changed expectation fails with a diff."""

from __future__ import annotations

import socket

import requests
import yaml
from segment.analytics import Client

from mock_planhat.cli import main
from mock_planhat.scenario import run_scenario

PERSONAS = {"computation_class": "audience", "computation_key": "power_users",
            "computation_id": "aud_9", "namespace": "spa_1", "space_id": "spa_1"}


def _traffic(url: str, tenant: str, api: str) -> None:
    headers = {"Authorization": f"Bearer {api}"}
    # REST before the first Segment call: it starts the recording (the first request step)
    assert requests.post(url + "/companies", headers=headers, timeout=5,
                         json={"name": "Acme", "externalId": "acme",
                               "domains": ["acme.com"]}).status_code == 200
    errors = []
    client = Client(write_key=tenant, host=url, sync_mode=True, max_retries=1,
                    on_error=lambda error, batch: errors.append(error))
    client.identify("u1", {"email": "ann@acme.com", "firstName": "Ann", "plan": "pro"})
    client.group("u2", "g2", {"name": "Globex", "website": "https://globex.com"})
    client.identify("u2", {"email": "bob@globex.com", "company": {"id": "g2"}})
    client.track("u1", "Order Completed", {"revenue": 42.5})
    # REST between Segment calls, by another client: replayed as request steps
    rest = [("PUT", "/companies/extid-acme", {"name": "Acme Inc", "custom": {"tier": "gold"}}),
            ("POST", "/endusers", {"externalId": "u9", "email": "dan@acme.com",
                                   "companyExternalId": "acme"}),
            ("PUT", "/endusers", [{"externalId": "u9", "lastName": "Lee"},
                                  {"_id": "f" * 24, "email": "eve@acme.com"}]),  # a row error
            ("DELETE", "/companies/extid-nobody", None),  # 404: replayed, and expected
            ("POST", "/companies", {"name": "Slash", "externalId": "a/b c"}),
            ("PUT", "/companies/extid-a%2Fb%20c", {"name": "Slash Inc"})]  # kept escaped
    for method, path, body in rest:
        requests.request(method, url + path, headers=headers, json=body, timeout=5)
    assert requests.post(f"{url}/analytics/{tenant}", timeout=5, json={
        "action": "Exported", "externalId": "u9"}).status_code == 200
    assert requests.get(url + "/endusers", headers=headers, timeout=5).status_code == 200
    client.page("u2", "Docs", "Pricing", {"path": "/pricing"})
    client.identify("u3", {"email": "cat@nowhere.org"})  # held: no company
    client.track("ghost", "Opened")  # unknown user: the report
    client.identify("u1", {"power_users": True}, context={"personas": PERSONAS})
    client.alias("u2", "u2-new")
    client.screen("u1", "App", "Home")
    client.flush()
    assert errors == []
    # a call without ids is reported, not recorded: the recording's report does not count it
    assert requests.post(url + "/v1/track", json={"writeKey": tenant, "event": "x"},
                         timeout=5).status_code == 200


def _run_changed(data: dict, tmp_path, capsys) -> str:
    """Write ``data`` as a scenario file, run it, expect a failure; its output."""
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["run", str(changed)]) == 1
    return capsys.readouterr().out


def test_record_then_run_passes_and_a_changed_expectation_fails(planhat_server, tmp_path,
                                                                 capsys):
    url = planhat_server.url
    made = requests.post(url + "/__admin/tenants", json={}, timeout=5).json()
    try:
        _traffic(url, made["tenantToken"], made["apiToken"])
        out = tmp_path / "regression.yaml"
        assert main(["record", "--url", url, "--tenant", made["tenantToken"], "-o",
                     str(out)]) == 0
        data = yaml.safe_load(out.read_text())
        assert data["given"]["snapshot"]["tenants"][0]["companies"] == []
        kinds = [next(iter(step)) for step in data["steps"]]
        assert kinds == ["request", "identify", "group", "identify", "track", *["request"] * 7,
                         "page", "identify", "track", "identify", "alias", "screen"]  # no GET
        sent = [step["request"] for step in data["steps"] if "request" in step]
        assert (sent[0]["method"], sent[0]["path"], sent[0]["status"]) == (
            "POST", "/companies", 200)
        sent = sent[1:]
        assert [(r["method"], r["path"], r["status"]) for r in sent] == [
            ("PUT", "/companies/extid-acme", 200), ("POST", "/endusers", 200),
            ("PUT", "/endusers", 206), ("DELETE", "/companies/extid-nobody", 404),
            ("POST", "/companies", 200), ("PUT", "/companies/extid-a%2Fb%20c", 200),
            ("POST", "/analytics/{tenantToken}", 200)]
        assert sent[2]["body"][1]["_id"] == "f" * 24
        expect = data["expect"]
        assert expect["count"]["endusers"] == 3 and expect["count"]["pending"] == 1
        # exact: group's and ghost's skips, the screen, the row error; not the track
        # without ids (reported, not recorded: a replay cannot make it)
        assert expect["report"] == {"unknown_user": 2, "unsupported_call": 1,
                                    "unknown_id": 1}, expect["report"]
        assert expect["count"]["report"] == sum(expect["report"].values())
        ann = next(e for e in expect["endusers"] if e["externalId"] == "u1")
        assert ann["is"]["custom"]["power_users"] is True and ann["actions"] == [
            "Order Completed"]
        dan = next(e for e in expect["endusers"] if e["externalId"] == "u9")
        assert dan["is"]["lastName"] == "Lee" and dan["actions"] == ["Exported"]
        assert next(c for c in expect["companies"] if c["externalId"] == "acme") == {
            "externalId": "acme", "is": {"name": "Acme Inc"}}
        assert {"externalId": "a/b c", "is": {"name": "Slash Inc"}} in expect["companies"]
        assert main(["run", str(out)]) == 0, capsys.readouterr().out
        assert main(["run", "--url", url, str(out)]) == 0, capsys.readouterr().out
        capsys.readouterr()

        ann["is"]["custom"]["plan"] = "free"  # one expectation changed
        text = _run_changed(data, tmp_path, capsys)
        assert "FAIL" in text and "(externalId 'u1') fields" in text, text
        assert '-    "plan": "free"' in text and '+    "plan": "pro"' in text, text

        ann["is"]["custom"]["plan"] = "pro"
        data["expect"]["report"]["unknown_user"] = 3  # exact: one more is a failure
        text = _run_changed(data, tmp_path, capsys)
        assert "report.unknown_user" in text and "expected: 3" in text, text
    finally:
        requests.delete(url + "/__admin/tenants/" + made["tenantToken"], timeout=5)


def test_rest_only_traffic_is_a_recording_that_replays(planhat_server, tmp_path, capsys):
    """A tenant that received only Planhat requests (a REST client, no Segment call) is
    recordable: the recording starts at its first write (the state before it is given), the
    writes are request steps; run passes, and one changed expectation fails with a diff."""
    url = planhat_server.url
    made = requests.post(url + "/__admin/tenants", json={}, timeout=5).json()
    headers = {"Authorization": f"Bearer {made['apiToken']}"}
    try:
        assert requests.get(url + "/companies", headers=headers, timeout=5).status_code == 200
        query = "?tenant=" + made["tenantToken"]
        nothing = requests.get(url + "/__admin/scenario" + query, timeout=5)
        assert nothing.status_code == 409 and "nothing to record" in nothing.json()["message"]
        # a refused write (no token) starts nothing either
        assert requests.post(url + "/companies", json={"name": "X"}, timeout=5).status_code \
            == 401
        for method, path, body in [
                ("POST", "/companies", {"name": "Acme", "externalId": "acme"}),
                ("PUT", "/endusers", [{"externalId": "u1", "email": "ann@acme.com",
                                       "companyExternalId": "acme", "custom": {"plan": "pro"}},
                                      {"externalId": "u2", "email": "bob@nowhere.org"}]),
                ("PUT", "/companies/extid-acme", {"custom": {"tier": "gold"}})]:
            assert requests.request(method, url + path, headers=headers, json=body,
                                    timeout=5).status_code in (200, 206)
        out = tmp_path / "rest.yaml"
        assert main(["record", "--url", url, "--tenant", made["tenantToken"], "-o",
                     str(out)]) == 0
        data = yaml.safe_load(out.read_text())
        assert data["given"]["snapshot"]["tenants"][0]["companies"] == []
        assert [s["request"]["method"] for s in data["steps"]] == ["POST", "PUT", "PUT"]
        assert "0 Segment call(s) and 3 Planhat request(s)" in data["description"]
        ann = next(e for e in data["expect"]["endusers"] if e["externalId"] == "u1")
        assert ann["is"]["custom"] == {"plan": "pro"} and ann["is"]["companyName"] == "Acme"
        assert data["expect"]["count"]["pending"] == 1
        assert main(["run", str(out)]) == 0, capsys.readouterr().out
        capsys.readouterr()
        ann["is"]["custom"]["plan"] = "free"
        text = _run_changed(data, tmp_path, capsys)
        assert '-    "plan": "free"' in text and '+    "plan": "pro"' in text, text
    finally:
        requests.delete(url + "/__admin/tenants/" + made["tenantToken"], timeout=5)


def test_the_destinations_rest_requests_alone_are_a_recording(planhat_live):
    """The destination's REST requests (no /v1 call) are Planhat requests: recorded as
    request steps, and the recording replays."""
    from mock_planhat.scenario.load import load_text

    planhat_live.destination().send({"type": "identify", "userId": "x1",
                                     "traits": {"email": "x1@x.org"}})
    response = planhat_live.target.request("GET", "/__admin/scenario?tenant="
                                           + planhat_live.tenant_token)
    assert response.status == 200
    scenario = load_text(response.text, "recorded.yaml")
    assert [next(iter(step)) for step in scenario.data["steps"]] == ["request"]
    assert scenario.data["expect"]["pending"][0]["externalId"] == "x1"
    assert run_scenario(scenario).passed


def test_segment_traffic_through_v1_is_recorded_and_reset_forgets_it(planhat_server):
    url = planhat_server.url
    made = requests.post(url + "/__admin/tenants", json={}, timeout=5).json()
    try:
        query = "?tenant=" + made["tenantToken"]
        nothing = requests.get(url + "/__admin/scenario" + query, timeout=5)
        assert nothing.status_code == 409 and nothing.json()["field"] == "tenant"
        calls = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@x.org"}}
                 for i in range(300)] + [{"type": "track", "event": "no ids"}]
        r = requests.post(url + "/v1/batch", json={"batch": calls,
                                                   "writeKey": made["tenantToken"]}, timeout=30)
        assert r.status_code == 200
        text = requests.get(url + "/__admin/scenario" + query, timeout=30).text
        from mock_planhat.scenario.load import load_text

        scenario = load_text(text, "recorded.yaml")
        assert len(scenario.data["steps"]) == 300
        assert scenario.data["expect"]["count"]["pending"] == 300
        assert run_scenario(scenario).passed
        requests.post(url + "/__admin/reset" + query, timeout=5)
        assert requests.get(url + "/__admin/scenario" + query, timeout=5).status_code == 409
    finally:
        requests.delete(url + "/__admin/tenants/" + made["tenantToken"], timeout=5)


def test_record_errors_are_one_line(tmp_path, capsys):
    assert main(["record", "--url", "http://127.0.0.1:9", "-o", str(tmp_path / "x.yaml")]) == 2
    # the OS's reason, not urllib3's retry story (HTTPConnectionPool, Max retries ...)
    assert capsys.readouterr().err == ("mock-planhat: error: cannot reach http://127.0.0.1:9: "
                                       "Connection refused\n")
    assert not (tmp_path / "x.yaml").exists()


def test_record_of_an_unknown_tenant_says_so(planhat_server, capsys):
    assert main(["record", "--url", planhat_server.url, "--tenant", "nope"]) == 2
    assert "404" in capsys.readouterr().err


def test_a_recording_of_10000_calls_is_a_valid_scenario(tmp_path):
    """Big recordings are written step by step and stay valid against the scenario schema."""
    from mock_planhat import create_app
    from mock_planhat.scenario.load import load_scenario

    client = create_app().test_client()
    calls = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@x.org"}}
             for i in range(10_000)]
    for start in range(0, len(calls), 2_000):
        assert client.post("/v1/batch", json={"batch": calls[start:start + 2_000],
                                              "writeKey": "mock-tenant-token"}).status_code == 200
    response = client.get("/__admin/scenario")
    assert response.status_code == 200 and response.is_streamed
    path = tmp_path / "big.yaml"
    with path.open("w", encoding="utf-8") as handle:
        for piece in response.response:
            handle.write(piece if isinstance(piece, str) else piece.decode())
    scenario = load_scenario(path)
    assert len(scenario.data["steps"]) == 10_000
    assert scenario.data["expect"]["count"]["pending"] == 10_000


def test_a_request_that_names_a_recorded_id_is_flagged_and_its_replay_fails_clearly(client):
    """An _id a Segment call made during the recording (no answer gave it) differs on
    replay: the file's description says so,
    and the replayed request's other answer is a failure naming the step and both statuses."""
    from mock_planhat.scenario.load import load_text

    api = {"Authorization": "Bearer mock-api-token"}
    assert client.post("/v1/identify", json={"writeKey": "mock-tenant-token", "userId": "u1",
                                             "traits": {"email": "u1@x.org"}}).status_code == 200
    held = client.get("/__admin/state").get_json()["pending"][0]
    company = client.post("/companies", headers=api, json={"name": "Acme"}).get_json()
    assert client.put(f"/endusers/{held['_id']}", headers=api,
                      json={"companyId": company["_id"]}).status_code == 200
    answer = client.get("/__admin/scenario")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    scenario = load_text(text, "recorded.yaml")
    description = scenario.data["description"]
    assert "1 Segment call(s) and 2 Planhat request(s)" in description
    assert "1 request(s) name an _id made during the recording that no recorded answer " \
        "gave" in description
    sent = scenario.data["steps"][1:]  # the company's _id came in an answer: saved, referred to
    assert sent[0]["request"]["save"] == {"id1": "_id"}
    assert sent[1]["request"]["body"] == {"companyId": "{saved.id1}"}
    result = run_scenario(scenario)
    assert not result.passed
    failure = result.failures[0]
    assert failure.label.startswith("steps[2] request PUT /endusers/"), failure.label
    assert "answered 404, expected 200" in failure.message


def test_ids_a_rest_client_made_while_recording_are_saved_and_replayed(live_server, tmp_path,
                                                                       capsys):
    """A REST client (pyplanhat) creates a company and an end user, then PUTs
    /endusers/<_id> and moves the user by companyId: the recording saves each _id from the
    answer that gave it and the later requests refer to it, so the replay (other ids) passes."""
    from pyplanhat import Company, EndUser, PyPlanhat

    with PyPlanhat(api_key="mock-api-token", base_url=live_server.url) as client:
        acme = client.companies.create(Company(name="Acme", external_id="acme"))
        globex = client.companies.create(Company(name="Globex"))
        ada = client.endusers.create(EndUser(email="ada@acme.com", company_id=acme.id,
                                             first_name="Ada"))
        client.endusers.update(ada.id, EndUser(last_name="Lovelace"))
        client.endusers.update(ada.id, EndUser(company_id=globex.id))
    out = tmp_path / "ids.yaml"
    assert main(["record", "--url", live_server.url, "-o", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    sent = [step["request"] for step in data["steps"]]
    assert [r.get("save") for r in sent] == [{"id1": "_id"}, {"id2": "_id"}, {"id3": "_id"},
                                             None, None]
    assert sent[2]["body"]["companyId"] == "{saved.id1}"
    assert sent[3]["path"] == sent[4]["path"] == "/endusers/{saved.id3}"
    assert sent[4]["body"]["companyId"] == "{saved.id2}"
    assert "3 _id(s) made during the recording are saved" in data["description"]
    assert data["expect"]["endusers"][0]["is"]["companyName"] == "Globex"
    assert main(["run", str(out)]) == 0, capsys.readouterr().out
    capsys.readouterr()

    sent[1]["save"] = {"id2": "nothing.here"}  # the answer has no such value: a clear failure
    text = _run_changed(data, tmp_path, capsys)
    assert "save id2: the answer has no string or number at 'nothing.here'" in text, text
    assert "not sent: {saved.id2} has no value" in text, text


def test_an_unknown_saved_reference_is_a_file_line_error(tmp_path, capsys):
    path = tmp_path / "refs.yaml"
    path.write_text("""name: refs
steps:
  - request: {method: POST, path: /companies, body: {name: A}, save: {acme: _id}}
  - request: {method: PUT, path: "/companies/{saved.acme}", body: {name: B}}
  - request:
      method: PUT
      path: "/endusers/{saved.ada}"
      body: {companyId: "{saved.globex}"}
  - request: {method: POST, path: /companies, body: {name: C}, save: {acme: _id}}
  - request: {method: PUT, path: "/companies/{nope}", body: {name: D}}
""")
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(f"{path}:7:" in x and "{saved.ada}: no request step before this point saves "
               "'ada' (saved: acme)" in x for x in lines), lines
    assert any(f"{path}:8:" in x and "steps[2].request.body.companyId" in x
               and "'globex'" in x for x in lines), lines
    assert any(f"{path}:9:" in x and "'acme' was saved by an earlier request step" in x
               for x in lines), lines
    assert any(f"{path}:10:" in x and "the only placeholders are" in x for x in lines), lines


def test_a_recording_of_markup_odd_characters_and_raw_bytes_replays_as_sent():
    """Regression: a name holding U+0085, U+2028 or U+2029 came back from the recorded YAML as
    a space or a newline (PyYAML folds them outside double quotes), so the replay made other
    names and failed; a path sent with raw UTF-8 bytes was recorded as the server's WSGI
    string (non-ASCII), which a replay encodes to another path and record. Markup and control
    characters are kept as they are; a body that is not UTF-8 is left out and counted."""
    from mock_planhat import create_app
    from mock_planhat.server import Server

    # werkzeug's server hands a path's raw non-ASCII bytes to the app (waitress answers 400)
    server = Server(create_app(), server="werkzeug").start()
    try:
        _odd_traffic_replays(server.url)
    finally:
        server.stop()


def _odd_traffic_replays(url: str) -> None:
    from mock_planhat.scenario.load import load_text

    api = {"Authorization": "Bearer mock-api-token", "Content-Type": "application/json"}
    names = ["<script>alert(1)</script>", "a\x85b", "c\u2028d", "e\u2029f", "g\x1bh\x00",
             "*alias", "!tag x", "k: v", "\ufeffbom", "null", "é"]
    for index, name in enumerate(names):
        assert requests.post(url + "/companies", headers=api, timeout=5, json={
            "name": name, "externalId": f"c{index}-é"}).status_code == 200
    assert requests.post(url + "/companies", headers=api, data=b'{"name": "\xff\xfe"}',
                         timeout=5).status_code == 400  # not UTF-8: left out
    # the raw bytes of "é" in a path: a server reads them as UTF-8 ("é") or as two latin-1
    # characters ("Ã©", werkzeug's); either way they name a company, which the replay must too
    assert requests.post(url + "/companies", headers=api, timeout=5, json={
        "name": "latin-1", "externalId": "c10-\u00c3\u00a9"}).status_code == 200
    host, port = url.rsplit("/", 1)[1].split(":")
    body = b'{"name": "raw bytes"}'
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PUT /companies/extid-c10-\xc3\xa9 HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer mock-api-token\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        status = sock.recv(100).split(b" ")[1]
    answer = requests.get(url + "/__admin/scenario", timeout=5)
    assert answer.status_code == 200
    scenario = load_text(answer.content.decode("utf-8"), "recorded.yaml")
    steps = [step["request"] for step in scenario.data["steps"]]
    assert [s["body"]["name"] for s in steps[:len(names)]] == names
    assert status == b"200" and steps[-1]["status"] == 200
    assert steps[-1]["path"].isascii() and steps[-1]["path"].startswith("/companies/extid-c10-")
    assert "1 the scenario schema cannot hold were left out" in scenario.data["description"]
    expected = {c["externalId"]: c["is"]["name"] for c in scenario.data["expect"]["companies"]}
    assert expected["c1-é"] == "a\x85b" and expected["c2-é"] == "c\u2028d"
    result = run_scenario(scenario)
    assert result.passed, result.render_failures()


def test_the_readme_s_curl_walk_records_and_replays(tmp_path):
    """The README's "With curl" requests, then `record`, then `run`: the last curl (a form
    body, 415) changed nothing and cannot be replayed as sent, so it is not a step."""
    from mock_planhat import Config, create_app

    client = create_app(Config()).test_client()
    api = {"Authorization": "Bearer mock-api-token"}
    assert client.post("/companies", headers=api, json={
        "name": "Acme", "externalId": "acme", "domains": ["acme.com"]}).status_code == 200
    assert client.put("/endusers", headers=api, json=[
        {"externalId": "u1", "email": "ann@acme.com", "name": "Ann Lee"},
        {"externalId": "u2", "email": "bob@globex.com"}]).status_code == 206
    assert client.post("/companies", headers=api, data='{"name": "X"}',
                       content_type="application/x-www-form-urlencoded").status_code == 415
    text = client.get("/__admin/scenario").get_data(as_text=True)
    assert [s["request"]["status"] for s in yaml.safe_load(text)["steps"]] == [200, 206]
    path = tmp_path / "recorded.yaml"
    path.write_text(text)
    assert main(["run", str(path)]) == 0


def test_record_to_a_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["record", "--url", "http://127.0.0.1:9", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"mock-planhat: error: {tmp_path}: is a folder; -o names "
                                       "the file to write, e.g. -o regression.yaml\n")
    assert list(tmp_path.iterdir()) == []
