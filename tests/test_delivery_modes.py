"""Two ways to deliver: ``dock`` (the seed's settings alone: each call to /dock/segment, as
Segment's cloud does) and ``rest`` (the translator's own REST requests, with an API token).
Both give the same Planhat state for every scenario in scenarios/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mock_planhat.cli import main
from mock_planhat.scenario import load_scenario, run_scenario
from translator import Destination, Settings, SettingsError

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
SCENARIOS = sorted(LIBRARY.glob("*.yaml"))
# Server-made ids and stamps, and the token of the tenant each run made.
VOLATILE = {"_id", "enduserId", "companyId", "pendingId", "createDate", "updatedAt", "time",
            "tenant"}
OBJECT_ID = re.compile(r"\b[0-9a-f]{24}\b")  # an _id quoted in a report message


def comparable(value, in_report=False):
    """The state without ids and timestamps; lists sorted (the modes may create in another
    order: dock applies each call as it comes, rest batches companies before end users)."""
    if isinstance(value, dict):
        return {k: comparable(v, in_report or k == "report") for k, v in value.items()
                if k not in VOLATILE and not (in_report and k == "source")}
    if isinstance(value, list):
        items = [comparable(v, in_report) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str):
        return OBJECT_ID.sub("<id>", value)
    return value


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_ends_in_the_same_state_in_both_modes(path):
    scenario = load_scenario(path)
    runs = {mode: run_scenario(scenario, delivery=mode) for mode in ("rest", "dock")}
    own = (scenario.data.get("settings") or {}).get("delivery", "rest")
    assert runs[own].passed, runs[own].render()
    other = runs["dock" if own == "rest" else "rest"]
    if not other.passed:
        # Only what is about the delivery itself may differ: the requests made (journal) and
        # the per-call outcomes (delivered: dock applies calls in order, rest batches).
        assert other.failure.mismatches, other.render()
        assert all(m.what.startswith(("journal", "delivered")) for m in other.failure.mismatches), \
            other.render()
    assert comparable(runs["dock"].state) == comparable(runs["rest"].state)
    assert runs["dock"].state["endusers"] or runs["dock"].state["report"] \
        or runs["dock"].state["companies"], "the scenario left nothing to compare"


def test_the_seed_settings_alone_choose_dock_and_rest_needs_an_api_token():
    assert Settings.from_dict({"tenant_token": "t", "subdomain": "api-eu"}).delivery == "dock"
    assert Settings.from_dict({"tenant_token": "t", "api_token": "k"}).delivery == "rest"
    assert Settings.from_dict({"tenant_token": "t", "api_token": "k",
                               "delivery": "dock"}).delivery == "dock"
    with pytest.raises(SettingsError) as exc:
        Settings.from_dict({"tenant_token": "t", "delivery": "rest"})
    assert exc.value.field == "settings.api_token"
    with pytest.raises(SettingsError) as exc:
        Settings.from_dict({"tenant_token": "t", "delivery": "bulk"})
    assert exc.value.field == "settings.delivery"
    assert Settings.from_dict(Settings.from_dict({"tenant_token": "t"}).to_dict()).delivery \
        == "dock"


def test_dock_over_http_posts_each_call_once_on_one_keep_alive_session(planhat_live):
    """The seed's settings alone against a live fake: the calls land as Planhat applies them."""
    planhat_live.api("POST", "/companies", {"name": "Acme", "externalId": "acme"})
    settings = {"tenant_token": planhat_live.tenant_token, "analytics_url": planhat_live.url}
    calls = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@acme.com",
                                                                "companyId": "acme"}}
             for i in range(5)]
    calls.append({"type": "track", "userId": "u1", "event": "Signed Up"})
    with Destination(settings) as destination:
        result = destination.send_many(calls)
        connections = destination.transport.session.adapters["http://"].poolmanager.pools
        assert len(connections) == 1
    assert (result.calls, result.sent, result.requests, result.failed) == (6, 6, 6, [])
    dock = [e for e in planhat_live.journal() if e["path"] == "/dock/segment"]
    assert len(dock) == 6 and all(e["status"] == 200 for e in dock)
    state = planhat_live.state()
    assert sorted(u["externalId"] for u in state["endusers"]) == [f"u{i}" for i in range(5)]
    assert [a["action"] for a in state["activities"]] == ["Signed Up"]


@pytest.mark.parametrize("planhat", ["dock"], indirect=True)
def test_dock_retries_429_honouring_retry_after_and_5xx_then_counts_a_failure(planhat):
    waits = []
    planhat.api("POST", "/companies", {"name": "Acme", "externalId": "acme"})
    planhat.fault(429, count=2, path="/dock/segment", retry_after=3)
    planhat.fault(503, count=1, path="/dock/segment")
    call = {"type": "identify", "userId": "u1", "traits": {"companyId": "acme"}}
    with planhat.destination(sleep=waits.append, max_retries=5) as destination:
        result = destination.send(call)
    assert (result.sent, result.requests, waits[:2]) == (1, 4, [3, 3])
    planhat.fault(503, count=3, path="/dock/segment")
    with planhat.destination(sleep=waits.append, max_retries=2) as destination:
        result = destination.send_many([call])
    assert (result.sent, result.failed_calls, result.requests) == (0, 1, 3)
    assert result.failed[0]["status"] == 503 and result.failed[0]["call"] == call
    assert result.failed[0]["request"].path == "/dock/segment"


@pytest.mark.parametrize("planhat", ["dock"], indirect=True)
def test_dock_counts_planhat_s_skips_and_the_report_has_each_once(planhat):
    planhat.api("POST", "/companies", {"name": "Acme", "externalId": "acme"})
    calls = [{"type": "identify", "userId": u, "traits": {"companyId": "acme"}}
             for u in ("kim", "lee")]
    calls += [{"type": "alias", "previousId": "kim", "userId": "lee"},
              {"type": "alias", "previousId": "ghost", "userId": "x"},
              {"type": "screen", "userId": "kim"}]
    with planhat.destination() as destination:
        assert destination.settings.delivery == "dock"
        assert "api_token" not in planhat.settings()
        result = destination.send_many(calls)
    assert result.sent == 2
    assert result.skipped == {"alias_conflict": 1, "unknown_user": 1, "unsupported_call": 1}
    assert {skip.reason: skip.reported for _, skip in result.skips} == {
        "alias_conflict": True, "unknown_user": True, "unsupported_call": False}
    report = planhat.report()
    assert report["counts"] == {"alias_conflict": 1, "unknown_user": 1, "unsupported_call": 1}
    sources = {e["reason"]: e["source"] for e in report["entries"]}
    assert sources == {"alias_conflict": "/dock/segment", "unknown_user": "/dock/segment",
                       "unsupported_call": "destination"}


def test_runner_command_takes_a_delivery_mode(capsys):
    path = str(LIBRARY / "group_creates_company_and_attaches.yaml")
    assert main(["run", "--delivery", "dock", path]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 passed, 0 failed")
    with pytest.raises(SystemExit):
        main(["run", "--delivery", "bulk", path])


def test_a_scenario_chooses_its_mode_and_a_bad_mode_is_a_schema_error(tmp_path, capsys):
    good = tmp_path / "dock.yaml"
    good.write_text("name: dock\nsettings: {delivery: dock}\nsteps:\n"
                    "  - group: {userId: u1, groupId: g1, traits: {name: G}}\n"
                    "expect:\n  journal: {paths: {/dock/segment: 1}}\n  count: {companies: 1}\n")
    result = run_scenario(load_scenario(good))
    assert result.passed and result.delivery == "dock", result.render()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsettings: {delivery: bulk}\ntenant: {rateLimit: fast}\n"
                   "steps: []\n")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert "bad.yaml:2:" in text and "settings.delivery" in text
    assert "bad.yaml:3:" in text and "tenant.rateLimit" in text


def test_dock_with_a_wrong_tenant_token_fails_each_call_without_retrying(planhat):
    settings = {"tenant_token": "nobody", "api_url": planhat.url,
                "analytics_url": planhat.url}
    calls = [{"type": "identify", "userId": "u1"}, {"type": "screen", "userId": "u1"}]
    with Destination(settings, planhat.target.transport) as destination:
        result = destination.send_many(calls)
    assert (result.sent, result.failed_calls, result.requests) == (0, 1, 1)
    assert result.skipped == {"unsupported_call": 1}
    assert result.failed[0]["status"] == 401 and "Authorization" in result.failed[0]["body"]
