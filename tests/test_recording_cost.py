"""What recording costs: `--recording-bytes` (0 = off), the runner's own fake not recording,
and a tenant's base dumped at most once per recording (refused writes keep it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml
from conftest import API, TENANT
from test_cli import start, stop

import mock_planhat.snapshot
from mock_planhat import Config, create_app
from mock_planhat.scenario import run_file

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture
def dumps(monkeypatch):
    """How many times a tenant's whole state was dumped."""
    calls = []
    real = mock_planhat.snapshot.dump_tenant

    def counting(tenant):
        calls.append(tenant.tenant_token)
        return real(tenant)

    monkeypatch.setattr(mock_planhat.snapshot, "dump_tenant", counting)
    return calls


def test_recording_off_keeps_nothing_and_the_scenario_answer_says_how_to_turn_it_on(dumps):
    client = create_app(Config(recording_bytes=0)).test_client()
    assert client.post("/companies", headers=API, json={"name": "Acme"}).status_code == 200
    assert client.post("/v1/identify", json={"writeKey": TENANT, "userId": "u1"}
                       ).status_code == 200
    assert dumps == []
    answer = client.get("/__admin/scenario")
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["error"] == "recording_off"
    assert "recording is off" in body["message"] and "--recording-bytes" in body["message"]


def test_the_flag_turns_recording_off_and_a_negative_size_is_refused():
    proc, url = start("--port", "0", "--recording-bytes", "0")
    try:
        assert requests.post(url + "/companies", headers=API, json={"name": "A"},
                             timeout=5).status_code == 200
        answer = requests.get(url + "/__admin/scenario", timeout=5)
        assert answer.status_code == 409 and answer.json()["error"] == "recording_off"
    finally:
        stop(proc)
    proc, url = start("--port", "0", "--recording-bytes", "1000")
    try:
        assert requests.post(url + "/companies", headers=API, json={"name": "A"},
                             timeout=5).status_code == 200
        assert requests.get(url + "/__admin/scenario", timeout=5).status_code == 200
        # past the bound: the recording is incomplete
        requests.post(url + "/companies", headers=API, json={"name": "B" * 2000}, timeout=5)
        assert requests.get(url + "/__admin/scenario", timeout=5).status_code == 409
    finally:
        stop(proc)
    with pytest.raises(ValueError, match="recording_bytes"):
        Config(recording_bytes=-1)


def test_the_runner_s_own_fake_records_nothing(dumps):
    result = run_file(SCENARIOS / "company_by_email_domain.yaml")
    assert result.passed, result.problems
    assert dumps == []


def test_refused_writes_do_not_dump_the_tenant_again_and_again(dumps):
    client = create_app(Config(max_body=100)).test_client()
    client.post("/__admin/clock", json={"now": "2024-06-01T00:00:00Z"})
    for _ in range(5):  # the tenant's token where the API token belongs; a body too large
        assert client.post("/companies", json={"name": "X"},
                           headers={"Authorization": f"Bearer {TENANT}"}).status_code == 401
        assert client.post("/companies", headers=API,
                           json={"name": "X" * 200}).status_code == 413
    assert len(dumps) == 1
    assert client.get("/__admin/scenario").status_code == 409  # not started: nothing to record
    assert client.post("/companies", headers=API, json={"name": "Acme"}).status_code == 200
    assert len(dumps) == 1  # the base dumped before the refused writes is the given
    doc = yaml.safe_load(client.get("/__admin/scenario").get_data(as_text=True))
    assert doc["given"]["snapshot"]["tenants"][0]["companies"] == []
    assert [s["request"]["path"] for s in doc["steps"]] == ["/companies"]
    assert doc["expect"]["count"]["companies"] == 1


def test_an_admin_write_before_the_recording_starts_makes_a_fresh_base(dumps):
    client = create_app(Config()).test_client()
    assert client.post("/companies", json={"name": "X"},  # refused; the base is dumped
                       headers={"Authorization": f"Bearer {TENANT}"}).status_code == 401
    client.post("/__admin/clock", json={"now": "2024-06-01T00:00:00Z"})  # changes the tenant
    assert client.post("/companies", headers=API, json={"name": "Acme"}).status_code == 200
    assert len(dumps) == 2
    doc = yaml.safe_load(client.get("/__admin/scenario").get_data(as_text=True))
    assert doc["clock"] == "2024-06-01T00:00:00.000Z"
    assert doc["given"]["snapshot"]["tenants"][0]["clock"] == {"now": "2024-06-01T00:00:00.000Z"}


def test_a_5xx_before_the_recording_starts_makes_a_fresh_base(dumps, monkeypatch):
    import mock_planhat.engine

    client = create_app(Config()).test_client()
    assert client.post("/companies", json={"name": "X"},  # refused; the base is dumped
                       headers={"Authorization": f"Bearer {TENANT}"}).status_code == 401
    real = mock_planhat.engine.create

    def half_done(tenant, model, row):  # the record is stored, then the request fails
        real(tenant, model, row)
        raise RuntimeError("boom")

    monkeypatch.setattr(mock_planhat.engine, "create", half_done)
    assert client.post("/companies", headers=API, json={"name": "Half"}).status_code == 500
    monkeypatch.setattr(mock_planhat.engine, "create", real)
    assert client.post("/companies", headers=API, json={"name": "Acme"}).status_code == 200
    assert len(dumps) == 2
    doc = yaml.safe_load(client.get("/__admin/scenario").get_data(as_text=True))
    assert [c["name"] for c in doc["given"]["snapshot"]["tenants"][0]["companies"]] == ["Half"]
