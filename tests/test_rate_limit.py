"""Planhat's rate limits, on request: --rate-limit, the tenant option rateLimit, 429 with an
integer Retry-After and X-Rate-Limit-* headers on REST answers; tracking paths exempt; the
translator rides it out. The fake's clock is a ManualClock: nothing here sleeps."""

from __future__ import annotations

import base64

import pytest

from mock_planhat import Config, create_app
from mock_planhat.cli import main
from mock_planhat.ratelimit import ManualClock

TENANT, API = "mock-tenant-token", "mock-api-token"
BEARER = {"Authorization": f"Bearer {API}"}


def fake(rate_limit="planhat"):
    clock = ManualClock()
    return create_app(Config(rate_limit=rate_limit, clock=clock)).test_client(), clock


def burst(client, n, path="/companies", headers=BEARER):
    return [client.get(path, headers=headers) for _ in range(n)]


def test_planhat_allows_a_burst_of_50_then_answers_429_with_retry_after_in_seconds():
    client, clock = fake()
    answers = burst(client, 51)
    assert [r.status_code for r in answers[:50]] == [200] * 50
    assert answers[0].headers["X-Rate-Limit-Limit"] == "50"
    assert answers[0].headers["X-Rate-Limit-Remaining"] == "49"
    over = answers[50]
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "1"  # whole seconds, as HTTP says
    assert over.headers["X-Rate-Limit-Remaining"] == "0"
    assert over.get_json()["error"] == "rate_limited"
    assert "retry after 1 s" in over.get_json()["message"]
    clock.advance(1)
    assert client.get("/companies", headers=BEARER).status_code == 200


def test_planhat_soft_quota_is_200_calls_a_minute():
    client, clock = fake()
    passed = 0
    for _ in range(20):  # 20 s of bursts: the per-second bucket never binds after a pause
        passed += sum(r.status_code == 200 for r in burst(client, 50))
        clock.advance(1)
    # 200 at once, then 200/60 a second: 19 s after the first burst, about 263 in total
    assert 255 <= passed <= 270, passed
    over = client.get("/companies", headers=BEARER)
    while over.status_code == 200:
        over = client.get("/companies", headers=BEARER)
    assert over.headers["X-Rate-Limit-Limit"] == "200"
    assert over.headers["Retry-After"] == "1"
    clock.advance(60)
    assert sum(r.status_code == 200 for r in burst(client, 60)) == 50  # full again: a burst


def test_custom_form_per_second_and_per_minute():
    client, clock = fake("20/s")
    assert [r.status_code for r in burst(client, 21)] == [200] * 20 + [429]
    client, clock = fake("3/min")
    answers = burst(client, 4)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[3].headers["Retry-After"] == "20"  # 60 s / 3
    clock.advance(20)
    assert client.get("/companies", headers=BEARER).status_code == 200


def test_every_rest_answer_carries_the_headers_and_the_limit_counts_per_token():
    client, _ = fake("2/min")
    made = client.post("/__admin/tenants", json={}).get_json()
    other = {"Authorization": f"Bearer {made['apiToken']}"}
    assert made["rateLimit"] == "2/min"  # the server's --rate-limit is every tenant's default
    r = client.put("/endusers", json=[{"email": "a@b.co"}], headers=BEARER)
    assert r.status_code in (200, 206) and r.headers["X-Rate-Limit-Remaining"] == "1"
    assert client.get("/endusers/nope", headers=BEARER).status_code == 404  # counted too
    assert client.get("/leancompanies", headers=BEARER).status_code == 429
    assert client.get("/companies", headers=other).status_code == 200  # its own bucket


@pytest.mark.parametrize("path", ["/licenses", "/users", "/dimensiondata"])
def test_the_limit_covers_every_model_s_paths_and_the_dimension_data_read(path):
    """Planhat's limit applies to its whole API, not only to end users and companies."""
    client, clock = fake("2/min")
    answers = burst(client, 3, path)
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[0].headers["X-Rate-Limit-Remaining"] == "1"
    assert answers[2].headers["Retry-After"] == "30"  # 60 s / 2
    assert answers[2].get_json()["error"] == "rate_limited"
    # one budget per token across the API: another model's path is over the limit too
    assert client.post("/tasks", json={}, headers=BEARER).status_code == 429
    clock.advance(30)
    assert client.get(path, headers=BEARER).status_code == 200


def test_posting_dimension_data_is_tracking_and_exempt():
    client, _ = fake("1/min")
    for _ in range(3):
        r = client.post(f"/dimensiondata/{TENANT}", json={"dimensionId": "d", "value": 1,
                                                          "externalId": "c1"}, headers=BEARER)
        assert r.status_code < 400 and "X-Rate-Limit-Limit" not in r.headers


def test_tracking_paths_segment_api_and_admin_are_exempt():
    client, _ = fake("1/min")
    for _ in range(3):
        assert client.post(f"/analytics/{TENANT}", json={"email": "x@y.z", "action": "a"}
                           ).status_code == 200
        assert client.post(f"/analytics/bulk/{TENANT}", json=[]).status_code == 200
        assert client.get("/__admin/state").status_code == 200
    r = client.post(f"/analytics/{TENANT}", json={"email": "x@y.z", "action": "a"})
    assert "X-Rate-Limit-Limit" not in r.headers
    # /v1 is Segment's API, and the requests the fake makes to itself to apply the calls are
    # not counted: a batch of 30 calls lands in full although the API token has 1 call a minute.
    calls = [{"type": "group", "userId": f"u{i}", "groupId": f"g{i}", "traits": {"name": "G"}}
             for i in range(30)]
    assert client.post("/v1/batch", json={"writeKey": TENANT, "batch": calls}).status_code == 200
    assert len(client.get("/__admin/state").get_json()["companies"]) == 30


def test_dock_segment_counts_per_tenant_token():
    client, clock = fake("2/s")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{TENANT}:".encode()).decode()}
    call = {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "G"}}
    answers = [client.post("/dock/segment", json=call, headers=basic) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "1"
    assert client.get("/companies", headers=BEARER).status_code == 200  # the API token's own


def test_tenant_option_overrides_the_server_default_and_is_checked():
    client, _ = fake(None)
    assert client.get("/__admin/tenants").get_json()[0]["rateLimit"] is None
    made = client.post("/__admin/tenants", json={"rateLimit": "planhat"}).get_json()
    assert made["rateLimit"] == "planhat"
    headers = {"Authorization": f"Bearer {made['apiToken']}"}
    assert [r.status_code for r in burst(client, 51, headers=headers)][-1] == 429
    assert burst(client, 60)[-1].status_code == 200  # the default tenant: no limit
    off = client.post("/__admin/tenants", json={"rateLimit": "off"}).get_json()
    assert off["rateLimit"] is None
    for bad in ("fast", "0/s", "20/h", 20, "planhat,20/s"):
        r = client.post("/__admin/tenants", json={"rateLimit": bad})
        assert r.status_code == 400 and r.get_json()["field"] == "rateLimit", bad


def test_reset_fills_the_buckets_again():
    client, _ = fake("1/min")
    assert [r.status_code for r in burst(client, 2)] == [200, 429]
    client.post("/__admin/reset")
    assert client.get("/companies", headers=BEARER).status_code == 200


@pytest.mark.parametrize("value", ["planhat", "20/s", "600/min", "20/s,600/min", "off"])
def test_cli_accepts_the_forms(value):
    from mock_planhat.cli import build_parser

    assert build_parser(False).parse_args(["serve", "--rate-limit", value]).rate_limit == value


def test_cli_rejects_a_bad_rate_limit(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--rate-limit", "lots"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--rate-limit" in err and "20/s" in err


@pytest.mark.parametrize("planhat", [{"rate_limit": "planhat"}], indirect=True)
def test_the_destination_rides_out_the_limit_in_rest_mode(planhat):
    """200 identifies (one bulk upsert), 200 group calls (one company upsert and 200
    attaches, a request each): four bursts' worth. Every call lands; the waits advance the
    fake's clock instead of sleeping."""
    users = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@acme.com"}}
             for i in range(200)]
    planhat.clock(now="2024-01-01T00:00:00Z")  # a test clock: the waits advance it
    planhat.api("POST", "/companies", {"name": "Acme", "externalId": "acme",
                                       "domains": ["acme.com"]})
    groups = [{"type": "group", "userId": f"u{i}", "groupId": "acme", "traits": {"name": "Acme"}}
              for i in range(200)]
    with planhat.destination() as destination:
        result = destination.send_many(users + groups)
    assert (result.sent, result.failed, result.skipped) == (400, [], {})
    assert result.requests > 202  # some answers were 429 and were retried
    statuses = [e["status"] for e in planhat.journal()]
    assert statuses.count(429) == result.requests - 202
    assert planhat.clock()["now"] >= "2024-01-01T00:00:01"  # it waited, on the test clock


def test_the_served_fake_applies_the_flag_over_http():
    import re
    import subprocess
    import sys

    import requests

    proc = subprocess.Popen([sys.executable, "-m", "mock_planhat", "--port", "0", "--quiet",
                             "--rate-limit", "1/min"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline()).group(0)
        banner = "".join(proc.stdout.readline() for _ in range(4))
        assert "rate limit:   1/min per token" in banner
        first = requests.get(url + "/companies", headers=BEARER, timeout=5)
        second = requests.get(url + "/companies", headers=BEARER, timeout=5)
        assert first.status_code == 200 and first.headers["X-Rate-Limit-Remaining"] == "0"
        assert second.status_code == 429
        assert 55 <= int(second.headers["Retry-After"]) <= 60
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_scenario_s_given_records_wait_out_the_limit_too(tmp_path):
    from mock_planhat.scenario import load_scenario, run_scenario

    companies = "".join(f"    - {{name: C{i}, externalId: c{i}}}\n" for i in range(60))
    path = tmp_path / "given.yaml"
    path.write_text("name: given\ntenant: {rateLimit: 20/s}\ngiven:\n  companies:\n"
                    + companies + "steps:\n  - identify: {userId: u1, traits: {companyId: c59}}\n"
                    "expect:\n  count: {companies: 60, endusers: 1}\n"
                    "  journal: {status: {'429': {min: 1}}}\n")
    result = run_scenario(load_scenario(path))
    assert result.passed, result.render()
    assert result.state["rateLimit"] == "20/s"


def test_a_tenant_s_test_clock_is_what_its_limit_reads():
    client, _ = fake(None)
    made = client.post("/__admin/tenants", json={"rateLimit": "1/min"}).get_json()
    token = made["tenantToken"]
    headers = {"Authorization": f"Bearer {made['apiToken']}"}
    client.post(f"/__admin/clock?tenant={token}", json={"now": "2024-01-01T00:00:00Z"})
    assert [r.status_code for r in burst(client, 2, headers=headers)] == [200, 429]
    client.post(f"/__admin/clock?tenant={token}", json={"advance": 59})
    assert client.get("/companies", headers=headers).status_code == 429
    client.post(f"/__admin/clock?tenant={token}", json={"advance": 1})
    assert client.get("/companies", headers=headers).status_code == 200


@pytest.mark.parametrize("planhat", [{"rate_limit": "1/min"}], indirect=True)
def test_the_fixture_destination_sleeps_for_real_on_the_wall_clock(planhat, monkeypatch):
    waits = []
    monkeypatch.setattr("mock_planhat.scenario.run.time.sleep", waits.append)
    planhat.sleep(2)
    assert waits == [2] and planhat.clock()["real"] is True
    planhat.clock(now="2024-01-01T00:00:00Z")
    planhat.sleep(2)
    assert waits == [2] and planhat.clock()["now"].startswith("2024-01-01T00:00:02")


def test_the_runner_over_http_rides_out_the_limit_without_sleeping(planhat_server, capsys):
    """The library's 2,000-call burst against a live server: the runner's tenant has a manual
    clock, so the waits are admin requests, not ten minutes of Planhat's quota."""
    import time
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scenarios" / "rate_limit_identify_burst.yaml"
    started = time.monotonic()
    assert main(["run", "--url", planhat_server.url, str(path)]) == 0
    assert time.monotonic() - started < 120
    assert "1 passed, 0 failed" in capsys.readouterr().out
