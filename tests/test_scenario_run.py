"""The runner: pass, fail with a diff, bad files, determinism, Engage deltas, --url."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests

from mock_planhat.cli import main
from mock_planhat.scenario import load_scenario, planned_calls, run_scenario
from mock_planhat.scenario.assertions import check

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"

PASSING = """\
name: identify creates
seed: 5
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - identify: {userId: u1, traits: {email: a@acme.com, title: CTO, companyId: acme}}
expect:
  count: {endusers: 1}
  endusers:
    - externalId: u1
      is: {position: CTO, companyName: Acme}
"""


def write(tmp_path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_run_prints_one_line_per_scenario_and_a_closing_count(tmp_path, capsys):
    path = write(tmp_path, PASSING)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"PASS  {path}: identify creates", "1 passed, 0 failed"]


def test_a_failing_expect_shows_the_step_location_and_a_diff(tmp_path, capsys):
    text = PASSING.replace("is: {position: CTO, companyName: Acme}",
                           "is: {position: CEO, companyName: Acme}")
    path = write(tmp_path, text)
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {path}: identify creates" in out
    assert f"at {path}:8: expect" in out
    assert "endusers[0] (externalId 'u1') fields" in out
    assert "--- expected" in out and "+++ found" in out
    assert '-  "position": "CEO"' in out and '+  "position": "CTO"' in out
    assert out.rstrip().endswith("0 passed, 1 failed")


def test_a_failing_count_names_expected_and_found(tmp_path, capsys):
    path = write(tmp_path, PASSING.replace("count: {endusers: 1}", "count: {endusers: 3}"))
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "count.endusers:" in out and "expected: 3" in out and "found:    1" in out


def test_every_expect_runs_and_every_failure_is_shown(tmp_path):
    path = write(tmp_path, """\
name: middle
steps:
  - identify: {userId: u1, traits: {email: a@nowhere.example}}
  - expect: {count: {pending: 2}}
  - identify: {userId: u2, traits: {email: b@nowhere.example}}
  - expect: {count: {pending: 2}}
  - expect: {count: {pending: 3}}
""")
    result = run_scenario(load_scenario(path))
    assert not result.passed
    assert [f.where for f in result.failures] == [f"{path}:4", f"{path}:7"]
    assert result.failure.where == f"{path}:4"
    assert result.calls == 2
    text = result.render()
    assert f"at {path}:4" in text and f"at {path}:7" in text


def test_a_failing_expect_shows_the_decisions_of_the_rows_that_touched_the_record(tmp_path):
    path = write(tmp_path, """\
name: why
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - identify: {userId: u3, traits: {email: u3@nowhere.example, companyId: acmee}}
  - identify: {userId: u4, traits: {email: u4@nowhere.example, companyId: acme}}
expect:
  endusers:
    - externalId: u3
    - externalId: u4
      is: {name: Someone}
""")
    text = run_scenario(load_scenario(path)).render()
    assert "endusers[0] (externalId 'u3')" in text
    assert "decisions (oldest first):" in text
    assert "PUT /endusers: held (no_company)" in text
    assert "near miss: companyId 'extid-acmee' names no company" in text
    assert "PUT /endusers: created" in text  # u4's story, under its fields' diff


def test_report_and_delivered_mismatches_say_what_was_found(tmp_path):
    path = write(tmp_path, """\
name: counts
tenant: {unassigned: discard}
steps:
  - identify: {userId: u1, traits: {email: a@nowhere.example}}
  - track: {userId: u1, event: Clicked}
  - expect:
      count: {report: 0}
      report: {ambiguous_email: 1}
      delivered: {calls: 3}
""")
    text = run_scenario(load_scenario(path)).render()
    assert "count.report:" in text and "found:    <2: no_company 1, unknown_user 1>" in text
    assert "report.ambiguous_email:" in text and "the report has" in text
    assert "calls since the previous expect: 2 (identify 1, track 1); sent" in text


def test_bad_files_fail_with_all_their_problems_and_others_still_run(tmp_path, capsys):
    write(tmp_path, PASSING, "a.yaml")
    bad = write(tmp_path, "name: bad\nsteps:\n  - track: {userId: [1]}\n  - fault: {}\n", "b.yaml")
    assert main(["run", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3:21: steps[0].track.userId: [1] is not of type 'string', 'number', 'null'" in out
    assert f"{bad}:4:" in out and "'status' is a required property" in out
    assert "Traceback" not in out
    assert out.rstrip().endswith("1 passed, 1 failed")


def test_run_without_scenarios_is_an_error(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "no scenario files" in capsys.readouterr().err


def test_short_calls_get_segment_library_defaults(tmp_path):
    path = write(tmp_path, """\
name: defaults
steps:
  - identify: {userId: u1, traits: {email: a@b.c}, context: {ip: 10.0.0.1}}
  - track: {userId: u1, event: E, timestamp: "2023-05-01T10:00:00Z"}
""")
    first, second = planned_calls(load_scenario(path))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        first["messageId"])
    assert first["timestamp"] == "2024-01-01T00:00:00.000Z"
    assert first["context"] == {"library": {"name": "analytics-python", "version": "2.3.3"},
                                "ip": "10.0.0.1"}
    assert first["integrations"] == {} and first["anonymousId"] is None
    assert second["timestamp"] == "2023-05-01T10:00:00Z"
    assert second["messageId"] != first["messageId"]


def test_same_file_and_seed_give_byte_identical_calls_and_another_seed_does_not(tmp_path):
    source = (LIBRARY / "engage_audience_three_syncs.yaml").read_text("utf-8")
    one = write(tmp_path, source, "one.yaml")
    two = write(tmp_path, source, "two.yaml")
    other = write(tmp_path, source.replace("seed: 42", "seed: 43"), "other.yaml")

    def dump(path):
        return json.dumps(planned_calls(load_scenario(path))).encode()

    assert dump(one) == dump(two) == dump(one)
    assert len(planned_calls(load_scenario(one))) > 1000
    assert dump(other) != dump(one)


def test_validate_calls_prints_the_same_bytes_every_time(capsys):
    path = str(LIBRARY / "computed_traits.yaml")
    assert main(["validate", "--calls", path]) == 0
    first = capsys.readouterr().out
    assert main(["validate", "--calls", path]) == 0
    assert capsys.readouterr().out == first
    calls = [json.loads(line) for line in first.splitlines()]
    assert [c["type"] for c in calls].count("identify") == 10 + 3 + 2 + 2


def test_generated_users_have_company_emails_and_can_be_referred_to(tmp_path):
    path = write(tmp_path, """\
name: generated
seed: 9
steps:
  - generate: {name: team, count: 30, companies: 3, track: 1, page: 1}
  - identify: {userId: "@team[4]", traits: {vip: true}}
""")
    calls = planned_calls(load_scenario(path))
    identifies = [c for c in calls if c["type"] == "identify"]
    groups = [c for c in calls if c["type"] == "group"]
    assert len(identifies) == 31 and len(groups) == 30
    assert len({c["userId"] for c in identifies[:30]}) == 30
    domains = {g["traits"]["website"].removeprefix("https://") for g in groups}
    assert len(domains) == 3
    for call in identifies[:30]:
        traits = call["traits"]
        assert traits["email"].split("@")[1] in domains
        assert traits["name"] and traits["title"] and traits["company"]["id"]
    assert identifies[30]["userId"] == identifies[4]["userId"] == "team-0004"
    assert {c["type"] for c in calls} == {"identify", "group", "track", "page"}


def test_audience_first_sync_is_full_then_only_changes(tmp_path):
    path = write(tmp_path, """\
name: engage
steps:
  - generate: {count: 6, track: 0, page: 0}
  - audience: {name: "Power Users!", members: ["@users[0:4]"]}
  - audience: {name: "Power Users!", members: {from: users, indexes: [2, 3, 4]}}
  - audience: {name: "Power Users!", members: {from: users, indexes: [2, 3, 4]}}
""")
    calls = planned_calls(load_scenario(path))
    engage = [c for c in calls if "personas" in c["context"]]
    first, second = engage[:4], engage[4:]
    assert [(c["userId"], c["traits"]) for c in first] == [
        (f"users-000{i}", {"power_users": True}) for i in range(4)]
    assert sorted((c["userId"], c["traits"]["power_users"]) for c in second) == [
        ("users-0000", False), ("users-0001", False), ("users-0004", True)]
    personas = first[0]["context"]["personas"]
    assert personas["computation_class"] == "audience"
    assert personas["computation_key"] == "power_users"
    assert personas["computation_id"].startswith("aud_")
    assert personas["space_id"].startswith("spa_")
    assert first[0]["integrations"] == {"All": False, "Planhat": True}


def test_an_audience_that_disagrees_with_the_fake_fails(tmp_path):
    path = write(tmp_path, """\
name: engage mismatch
given:
  companies: [{name: Acme, externalId: acme}]
  endusers: [{email: x@acme.com, externalId: x, companyExternalId: acme,
              custom: {buyers: true}}]
steps:
  - identify: {userId: u1, traits: {email: u1@acme.com, companyId: acme}}
  - audience: {name: Buyers, members: [u1]}
expect:
  audiences: [Buyers]
""")
    result = run_scenario(load_scenario(path))
    assert not result.passed
    text = result.render()
    assert "custom.buyers: 1 of 1 users differ" in text and '"x"' in text


def test_requests_failing_after_all_retries_fail_the_scenario_unless_expected(tmp_path):
    text = """\
name: outage
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - fault: {status: 500, count: 50, path: /endusers}
  - identify: {userId: u1, traits: {email: a@acme.com, companyId: acme}}
"""
    result = run_scenario(load_scenario(write(tmp_path, text)))
    assert not result.passed
    assert "requests failed after all retries" in result.render()
    assert "PUT /endusers -> 500" in result.render()
    expected = text + "expect:\n  delivered: {failed: 1}\n  count: {endusers: 0}\n"
    assert run_scenario(load_scenario(write(tmp_path, expected, "t.yaml"))).passed


def test_given_tenant_token_is_used(tmp_path):
    path = write(tmp_path, """\
name: token
settings: {tenant_token: my-tenant, api_token: my-api, subdomain: api-eu}
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - identify: {userId: u1, traits: {email: a@acme.com, companyId: acme}}
  - track: {userId: u1, event: Clicked}
expect:
  count: {activities: 1}
  journal: {paths: {/analytics/bulk/my-tenant: 1}}
""")
    assert run_scenario(load_scenario(path)).passed


def test_check_tells_booleans_from_numbers_and_null_means_absent():
    state = {"endusers": [{"_id": "1", "externalId": "u1", "custom": {"vip": True}}],
             "pending": [], "companies": [], "activities": [], "reportCounts": {}}
    ok = {"endusers": [{"externalId": "u1", "is": {"custom": {"vip": True}, "phone": None}}]}
    assert check(ok, state) == []
    wrong = {"endusers": [{"externalId": "u1", "is": {"custom": {"vip": 1}}}]}
    [mismatch] = check(wrong, state)
    assert mismatch.expected == {"custom": {"vip": 1}}
    assert mismatch.found == {"custom": {"vip": True}}
    assert check({"count": {"endusers": {"min": 2}}}, state)[0].found == 1


def _tenants(url) -> list[str]:
    return [t["tenantToken"] for t in requests.get(url + "/__admin/tenants", timeout=5).json()]


def test_run_against_a_live_server_with_url(planhat_server, capsys):
    before = _tenants(planhat_server.url)
    paths = [str(LIBRARY / "recovery_from_429.yaml"), str(LIBRARY / "alias_renames_and_conflicts.yaml")]
    assert main(["run", "--url", planhat_server.url, "--keep", *paths]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("2 passed, 0 failed")
    tenants = _tenants(planhat_server.url)
    made = [t for t in tenants if t not in before]
    assert len(made) == 2
    for token in made:  # each file says which tenant it used, and where to look
        assert (f"  tenant {token}: kept, see {planhat_server.url}/__admin/state?tenant={token}"
                in out)
    journal = requests.get(planhat_server.url + "/__admin/requests",
                           params={"tenant": made[-1]}, timeout=5).json()
    assert any(e["path"] == "/endusers" for e in journal["requests"])


def test_run_with_url_deletes_its_tenants_afterwards(planhat_server, capsys, tmp_path):
    before = _tenants(planhat_server.url)
    failing = write(tmp_path, PASSING.replace("endusers: 1", "endusers: 7"))
    paths = [str(LIBRARY / "recovery_from_429.yaml"), str(failing)]
    assert main(["run", "--url", planhat_server.url, "-q", *paths]) == 1
    out = capsys.readouterr().out
    used = re.findall(r"^  tenant (\S+): deleted \(--keep keeps it\)$", out, re.M)
    assert len(used) == 1 and "FAIL" in out  # -q: only the failure, with its tenant
    assert _tenants(planhat_server.url) == before
    assert requests.get(planhat_server.url + "/__admin/state", params={"tenant": used[0]},
                        timeout=5).status_code == 404


def test_run_with_an_unreachable_url_fails_cleanly(tmp_path, capsys):
    path = write(tmp_path, PASSING)
    # nothing answers: one line, exit 2 (as `record`), not a FAIL per file
    assert main(["run", "--url", "http://127.0.0.1:9", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("mock-planhat: error: cannot reach http://127.0.0.1:9: "
                            "Connection refused\n")
    assert "FAIL" not in captured.out


CLOCKED = """\
name: clock steps
clock: "2024-03-01T00:00:00Z"
steps:
  - generate: {count: 10, track: 2, page: 0, spread: P10D, identify: true, group: false}
  - clock: {advance: P3D}
  - identify: {userId: late, traits: {email: late@x.org}}
  - clock: {now: "2030-01-01T00:00:00Z"}
  - track: {userId: "@users[0]", event: Back}
"""


def test_clock_steps_move_call_timestamps_and_the_fakes_stamps(tmp_path):
    scenario = load_scenario(write(tmp_path, CLOCKED))
    calls = planned_calls(scenario)
    tracks = [c["timestamp"] for c in calls if c["type"] == "track"][:-1]
    assert len(tracks) == 20
    assert all("2024-02-20T00:00:10" <= t <= "2024-03-01T00:00:10" for t in tracks), tracks
    assert len(set(t[:10] for t in tracks)) > 3  # spread over the days
    late = next(c for c in calls if c.get("userId") == "late")
    assert late["timestamp"] == "2024-03-04T00:00:10.000Z"  # 10 identifies, then +3 days
    assert calls[-1]["timestamp"] == "2030-01-01T00:00:00.000Z"
    from mock_planhat.scenario import Target

    target = Target()
    try:
        result = run_scenario(scenario, target)
        assert result.passed, result.render()
        state = target.admin("GET", "/state", tenant=result.tenant)
        (held,) = [p for p in state["pending"] if p.get("email") == "late@x.org"]
        assert held["createDate"] == "2024-03-04T00:00:10.000Z"
        first = [p for p in state["pending"] if p.get("externalId") == "users-0000"][0]
        assert first["createDate"] == "2024-03-01T00:00:00.000Z"
        assert target.admin("GET", "/clock", tenant=result.tenant)["now"] == \
            "2030-01-01T00:00:00.000Z"
    finally:
        target.close()


def test_bad_clock_steps_are_refused_with_their_location(tmp_path, capsys):
    path = write(tmp_path, "name: bad clock\nsteps:\n  - clock: {advance: P1M}\n"
                           "  - clock: {advance: 1, now: '2024-01-01T00:00:00Z'}\n"
                           "  - generate: {count: 2, spread: soon}\n"
                           "  - audience: {name: A, members: {from: users, activeWithin: P1D,"
                           " fraction: 0.5}}\n")
    assert main(["validate", str(path)]) != 0
    err = capsys.readouterr()
    text = err.out + err.err
    for line in (":3:", ":4:", ":5:", ":6:"):
        assert f"s.yaml{line}" in text, text


MODELS_SCENARIO = """\
name: licenses
given:
  companies: [{name: Acme, externalId: acme}]
  licenses:
    - {companyId: extid-acme, _currency: EUR, fromDate: "2024-01-01", mrr: 10, externalId: l1}
    - {companyId: extid-acme, _currency: EUR, fromDate: "2024-02-01", mrr: 20, sourceId: s2}
expect:
  count: {licenses: 3}
  licenses:
    - externalId: l1
      is: {mrr: 99, companyName: Acme}
    - where: {mrr: 20}
      absent: true
steps: []
"""


def test_models_in_given_and_expect_fail_with_a_diff(tmp_path):
    result = run_scenario(load_scenario(write(tmp_path, MODELS_SCENARIO)))
    assert not result.passed
    text = result.render()
    assert "count.licenses" in text and "licenses[0] (externalId 'l1') fields" in text
    assert "licenses[1] (fields" in text and "should not exist" in text
    fixed = MODELS_SCENARIO.replace("licenses: 3", "licenses: 2").replace("mrr: 99", "mrr: 10")
    fixed = fixed.replace("where: {mrr: 20}\n      absent: true", "sourceId: s2")
    assert run_scenario(load_scenario(write(tmp_path, fixed))).passed


def test_a_given_model_record_the_fake_refuses_fails_at_that_record(tmp_path):
    text = "name: x\nsteps: []\ngiven:\n  tasks: [{mainType: task, companyId: extid-nobody}]\n"
    result = run_scenario(load_scenario(write(tmp_path, text)))
    assert not result.passed and "given.tasks[0]" in result.render()
    assert "companyId" in result.render()


def test_generated_users_are_referenced_after_their_calls_and_state_is_handed_over(tmp_path):
    # A generated user is kept as its ids once its calls are made, and an in-process run
    # reads its fake's records directly: references, expectations and result.state still
    # see everything (the same values GET /__admin/state answers).
    path = write(tmp_path, """\
name: refs after generate
seed: 5
steps:
  - generate: {count: 4, companies: 1, track: 1, page: 0}
  - track: {userId: "@users[3]", event: Came Back}
  - audience: {name: Late, members: {from: users, indexes: [1, 3]}}
expect:
  count: {endusers: 4, activities: 5}
  endusers:
    - {email: "@users[3]", activities: 2}
  audiences: [Late]
""")
    result = run_scenario(load_scenario(path))
    assert result.passed, result.render()
    state = result.state
    assert json.loads(json.dumps(state)) == state  # plain JSON values, like the admin API's
    assert len(state["endusers"]) == 4 and len(state["activities"]) == 5
    (late,) = [u for u in state["endusers"] if u["externalId"] == "users-0003"]
    assert [a["action"] for a in state["activities"] if a["enduserId"] == late["_id"]][-1] \
        == "Came Back"
    assert sorted(u["externalId"] for u in state["endusers"] if u["custom"].get("late")) == [
        "users-0001", "users-0003"]
