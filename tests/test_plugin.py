"""The pytest plugin: scenario files collected as tests, and the fixtures."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

GOOD = """\
name: identify creates
given:
  companies: [{name: Acme, externalId: acme}]
steps:
  - identify: {userId: u1, traits: {email: a@acme.com, companyId: acme}}
expect:
  count: {endusers: 1}
"""


@pytest.fixture
def project(pytester):
    """A project that asks for its scenarios/ folder, as this one does in pyproject.toml."""
    pytester.makeini("[pytest]\nmock_planhat_scenarios = scenarios\n")
    (pytester.path / "scenarios").mkdir()
    return pytester


def test_a_project_that_does_not_ask_gets_no_scenario_tests(pytester):
    """Installing the package must not turn another project's data files into tests."""
    pytester.makeini("[pytest]\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "seed_data.json").write_text('{"rows": [1, 2]}')
    (pytester.path / "scenarios" / "good.yaml").write_text(GOOD)
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "seed_data" not in result.stdout.str() and "good.yaml" not in result.stdout.str()
    asked = pytester.runpytest("-p", "no:cacheprovider", "--mock-planhat-scenarios", "scenarios",
                               "scenarios/good.yaml")
    asked.assert_outcomes(passed=1)


def test_fixtures_are_documented_and_show_where_they_point(pytester):
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--fixtures")
    out = result.stdout.str()
    for name in ("planhat", "planhat_server", "planhat_live", "planhat_destination"):
        assert re.search(rf"^{name}( \[session scope\])? -- .*pytest_plugin.py", out, re.M), name
    assert "TenantHandle" in out and "tenant" in out
    pytester.makepyfile(test_repr="""
        def test_reprs(planhat, planhat_destination, planhat_server, planhat_live):
            assert repr(planhat) == (f"<TenantHandle http://mock-planhat.local (in process) "
                                     f"tenant_token={planhat.tenant_token!r}>")
            assert planhat.tenant_token in repr(planhat_destination)
            assert repr(planhat_server) == f"<Server {planhat_server.url}>"
            assert repr(planhat_live) == (f"<TenantHandle {planhat_server.url} "
                                          f"tenant_token={planhat_live.tenant_token!r}>")
            assert planhat.api_token not in repr(planhat) + repr(planhat_destination)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_live_tenants_are_deleted_after_the_test(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_live="""
        import requests
        seen = []

        def test_one(planhat_live):
            seen.append(planhat_live.tenant_token)

        def test_two(planhat_server):
            tokens = [t["tenantToken"] for t in
                      requests.get(planhat_server.url + "/__admin/tenants", timeout=5).json()]
            assert seen and seen[0] not in tokens
    """)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(passed=2)


def test_scenarios_are_collected_and_run(project):
    (project.path / "scenarios" / "good.yaml").write_text(GOOD)
    (project.path / "scenarios" / "bad.yml").write_text(
        GOOD.replace("count: {endusers: 1}", "count: {endusers: 2}"))
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*count.endusers:*", "*expected: 2*", "*found:    1*"])


def test_json_and_yaml_outside_the_scenario_folders_are_not_collected(project):
    (project.path / "data.yaml").write_text("just: data\n")
    (project.path / "other").mkdir()
    (project.path / "other" / "x.json").write_text('{"name": "x", "steps": []}')
    (project.path / "scenarios" / "good.json").write_text(
        '{"name": "json scenario", "steps": [], "expect": {"count": {"endusers": 0}}}')
    result = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["scenarios/good.json::json scenario"])
    assert "data.yaml" not in result.stdout.str() and "x.json" not in result.stdout.str()


def test_the_folders_are_configurable(project):
    project.makeini("[pytest]\nmock_planhat_scenarios =\n    regressions\n")
    (project.path / "regressions").mkdir()
    (project.path / "regressions" / "good.yaml").write_text(GOOD)
    (project.path / "scenarios" / "ignored.yaml").write_text(GOOD)
    result = project.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*regressions/good.yaml::identify creates PASSED*"])
    other = project.runpytest("-p", "no:cacheprovider", "--mock-planhat-scenarios", "scenarios")
    other.assert_outcomes(passed=1)


def test_a_broken_file_is_a_failed_test_listing_its_problems(project):
    (project.path / "scenarios" / "broken.yaml").write_text(
        "name: broken\nsteps:\n  - identify: {userId: [5]}\n  - fault: {status: 418}\n")
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scenarios/broken.yaml:3:24: steps?0?.identify.userId: ?5? is not*",
                                 "scenarios/broken.yaml:4:21: steps?1?.fault.status*"])
    assert "Traceback" not in result.stdout.str()


def test_fixtures_in_a_users_own_tests(project):
    project.makepyfile(test_mine="""
        def test_in_process(planhat, planhat_destination):
            assert planhat.api("POST", "/companies",
                               {"name": "Acme", "externalId": "acme"}).status == 200
            result = planhat_destination.send({"type": "identify", "userId": "u1",
                "traits": {"email": "a@acme.com", "companyId": "acme"}})
            assert result.sent == 1
            assert [u["externalId"] for u in planhat.state()["endusers"]] == ["u1"]

        def test_fresh_tenant_each_time(planhat):
            assert planhat.state()["endusers"] == []

        def test_live(planhat_live, planhat_server):
            assert planhat_live.url == planhat_server.url
            planhat_live.fault(503, count=1, path="/companies")
            with planhat_live.destination() as destination:
                result = destination.send({"type": "group", "groupId": "g1",
                                           "traits": {"name": "G"}})
            assert result.sent == 1
            assert [e["status"] for e in planhat_live.journal()] == [503, 200]

        def test_live_tenants_are_apart(planhat_live):
            assert planhat_live.state()["companies"] == []
    """)
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_xdist_workers_run_scenarios_and_fixtures_apart(project):
    for i in range(4):
        (project.path / "scenarios" / f"s{i}.yaml").write_text(GOOD.replace(
            "identify creates", f"identify creates {i}"))
    project.makepyfile(test_live="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_live(planhat_live, n):
            assert planhat_live.api("POST", "/companies", {"name": f"C{n}"}).status == 200
            assert len(planhat_live.state()["companies"]) == 1
    """)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=8)


@pytest.mark.parametrize("env, name", [(None, "waitress"), ("werkzeug", "werkzeug"),
                                       ("nginx", None)])
def test_planhat_server_runs_on_the_default_server_or_the_one_the_variable_names(
        project, monkeypatch, env, name):
    if env is None:
        monkeypatch.delenv("MOCK_PLANHAT_SERVER", raising=False)
    else:
        monkeypatch.setenv("MOCK_PLANHAT_SERVER", env)
    project.makepyfile(test_server=f"""
        import requests

        def test_server(planhat_server):
            assert planhat_server.name == {name!r}
            assert requests.get(planhat_server.url + "/__admin/health", timeout=5).ok
    """)
    result = project.runpytest("-p", "no:cacheprovider")
    if name is None:  # not a server: the fixture fails, naming the variable
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*MOCK_PLANHAT_SERVER*'nginx' is not one of*"])
    else:
        result.assert_outcomes(passed=1)
