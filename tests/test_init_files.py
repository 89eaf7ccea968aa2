"""--init PATH: scenario files' given (and steps) seed the default tenant at start; broken
files stop the start with file:line:column; given.snapshot in scenarios and init files."""

from __future__ import annotations

import json
import subprocess
import sys

import requests
from test_cli import start, stop

from mock_planhat.cli import main
from mock_planhat.scenario import Target, load_scenario, run_scenario

API = {"Authorization": "Bearer mock-api-token"}

SEED_A = """\
name: seed companies
given:
  companies:
    - {name: Acme, externalId: acme, domains: [acme.com]}
steps:
  - identify: {userId: from-steps, traits: {email: steps@acme.com}}
"""
SEED_B = """\
name: seed users
given:
  endusers:
    - {externalId: ann, email: ann@acme.com, companyExternalId: acme}
steps: []
"""


def _seed_folder(tmp_path):
    folder = tmp_path / "init"
    folder.mkdir()
    (folder / "20-users.yaml").write_text(SEED_B)  # applied after 10-: file-name order
    (folder / "10-companies.yaml").write_text(SEED_A)
    return folder


def _state(url):
    return requests.get(url + "/__admin/state", timeout=5).json()


def test_init_folder_applies_given_in_file_name_order(tmp_path):
    proc, url = start("--port", "0", "--quiet", "--init", str(_seed_folder(tmp_path)))
    try:
        state = _state(url)
        assert [c["name"] for c in state["companies"]] == ["Acme"]
        assert [(u["externalId"], u["companyName"]) for u in state["endusers"]] == \
            [("ann", "Acme")]
        clock = requests.get(url + "/__admin/clock", timeout=5).json()
        assert clock["real"] is True  # no clock in the files: wall time
        # the seed is where a recording starts from, not part of it
        scenario = requests.get(url + "/__admin/scenario", timeout=5)
        assert scenario.status_code == 409, scenario.text
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "applied 2 init file(s)" in err


def test_init_steps_runs_the_steps_too(tmp_path):
    folder = _seed_folder(tmp_path)
    proc, url = start("--port", "0", "--quiet", "--init", str(folder / "10-companies.yaml"),
                      "--init", str(folder / "20-users.yaml"), "--init-steps")
    try:
        emails = sorted(u["email"] for u in _state(url)["endusers"])
        assert emails == ["ann@acme.com", "steps@acme.com"]
    finally:
        stop(proc)


def test_a_broken_init_file_stops_the_start_with_its_locations(tmp_path):
    folder = _seed_folder(tmp_path)
    (folder / "30-broken.yaml").write_text("name: broken\ngiven:\n  companies:\n"
                                           "    - {externalId: x}\nsteps:\n  - florp: {}\n")
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", "--init",
                           str(folder)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("mock-planhat: error: ") and "30-broken.yaml:4:" in lines[0]
    assert any("30-broken.yaml:6:" in line for line in lines), lines
    assert not any("20-users" in line for line in lines)


def test_a_failing_init_step_stops_the_start(tmp_path):
    path = tmp_path / "seed.yaml"
    path.write_text("name: wrong\nsteps:\n  - identify: {userId: u, traits: {email: u@x.org}}\n"
                    "expect:\n  count: {endusers: 5}\n")
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", "--init",
                           str(path), "--init-steps"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "seed.yaml:5" in done.stderr and "Traceback" not in \
        done.stderr


def test_init_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["--port", "0", "--init", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["--port", "0", "--init-steps"]) == 2
    assert "--init-steps needs --init" in capsys.readouterr().err


def test_init_is_skipped_when_the_state_file_exists(tmp_path):
    folder = _seed_folder(tmp_path)
    state = tmp_path / "state.json"
    proc, url = start("--port", "0", "--quiet", "--init", str(folder), "--state", str(state))
    stop(proc)
    proc, url = start("--port", "0", "--quiet", "--init", str(folder), "--state", str(state))
    try:
        assert len(_state(url)["companies"]) == 1  # not seeded twice
    finally:
        _, _, err = stop(proc)
    assert "--init skipped" in err


def _saved_tenant() -> dict:
    target = Target()
    try:
        tenant = target.new_tenant()
        tenant.api("POST", "/companies", {"name": "Globex", "externalId": "globex"})
        tenant.api("POST", "/endusers", {"externalId": "u9", "companyExternalId": "globex"})
        return tenant.snapshot()
    finally:
        target.close()


def test_given_snapshot_file_is_relative_to_the_scenario(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "saved.json").write_text(json.dumps(_saved_tenant()))
    path = tmp_path / "s.yaml"
    path.write_text("name: from a snapshot\ngiven:\n  snapshot: data/saved.json\n"
                    "  companies: [{name: Acme, externalId: acme}]\nsteps:\n"
                    "  - identify: {userId: u9, traits: {plan: pro}}\n"
                    "expect:\n  count: {companies: 2, endusers: 1}\n  endusers:\n"
                    "    - {externalId: u9, is: {custom: {plan: pro}, companyName: Globex}}\n")
    result = run_scenario(load_scenario(path))
    assert result.passed, result.render()


def test_a_bad_given_snapshot_is_a_problem_of_the_file(tmp_path, capsys):
    doc = _saved_tenant()
    doc["formatVersion"] = 3
    (tmp_path / "old.json").write_text(json.dumps(doc))
    path = tmp_path / "s.yaml"
    path.write_text("name: bad\ngiven:\n  snapshot: old.json\nsteps: []\n")
    missing = tmp_path / "m.yaml"
    missing.write_text("name: missing\ngiven:\n  snapshot: nowhere.json\nsteps: []\n")
    assert main(["validate", str(path), str(missing)]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "s.yaml:3:13: given.snapshot:" in text and "formatVersion: 3" in text, text
    assert "m.yaml:3:13: given.snapshot:" in text and "cannot be read" in text, text


OTHER_TENANT = """\
name: seed another tenant
settings: {tenant_token: acme-dev, api_token: acme-dev-api}
tenant: {unassigned: discard, rateLimit: 5/s}
given:
  companies:
    - {name: Initech, externalId: initech}
steps: []
"""
OTHER_TENANT_AGAIN = """\
name: more for that tenant
settings: {tenant_token: acme-dev}
given:
  companies:
    - {name: Hooli, externalId: hooli}
steps: []
"""


def test_init_from_the_environment_and_each_file_seeds_its_own_tenant(tmp_path):
    """MOCK_PLANHAT_INIT holds paths separated by os.pathsep; a file whose settings name a
    tenant token seeds that tenant (made with the file's api_token and tenant options)."""
    import os

    other = tmp_path / "other"
    other.mkdir()
    (other / "1.yaml").write_text(OTHER_TENANT)
    (other / "2.yaml").write_text(OTHER_TENANT_AGAIN)
    paths = os.pathsep.join([str(_seed_folder(tmp_path)), str(other)])
    proc, url = start("--port", "0", "--quiet", env={"MOCK_PLANHAT_INIT": paths})
    try:
        assert [c["name"] for c in _state(url)["companies"]] == ["Acme"]  # the default
        tenants = {t["tenantToken"]: t for t in
                   requests.get(url + "/__admin/tenants", timeout=5).json()}
        made = tenants["acme-dev"]
        assert (made["apiToken"], made["unassigned"], made["rateLimit"]) == \
            ("acme-dev-api", "discard", "5/s")
        theirs = requests.get(url + "/companies", timeout=5,
                              headers={"Authorization": "Bearer acme-dev-api"}).json()
        assert sorted(c["name"] for c in theirs) == ["Hooli", "Initech"]
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "applied 4 init file(s)" in err


def test_an_init_flag_wins_over_the_environment(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED_A)
    proc, url = start("--port", "0", "--quiet", "--init", str(seed),
                      env={"MOCK_PLANHAT_INIT": str(tmp_path / "not-there")})
    try:
        assert [c["name"] for c in _state(url)["companies"]] == ["Acme"]
    finally:
        code, _, err = stop(proc)
    assert code == 0 and "applied 1 init file(s)" in err


def test_init_environment_and_tenant_mistakes_are_one_line_errors(tmp_path, monkeypatch,
                                                                    capsys):
    import os

    import pytest

    monkeypatch.setenv("MOCK_PLANHAT_INIT", os.pathsep * 2)
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0"])
    assert exited.value.code == 2
    assert "MOCK_PLANHAT_INIT='" in capsys.readouterr().err
    monkeypatch.setenv("MOCK_PLANHAT_INIT", str(tmp_path / "nope"))
    assert main(["--port", "0"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    clash = tmp_path / "clash.yaml"  # the default tenant's token, another API token
    clash.write_text("name: clash\nsettings:\n  tenant_token: mock-tenant-token\n"
                     "  api_token: not-the-default\nsteps: []\n")
    monkeypatch.delenv("MOCK_PLANHAT_INIT")
    assert main(["--port", "0", "--init", str(clash)]) == 2
    err = capsys.readouterr().err
    assert f"{clash}:4" in err and "another API token" in err and "Traceback" not in err


def test_odd_init_paths_are_one_line_errors(tmp_path, monkeypatch, capsys):
    """Regression: MOCK_PLANHAT_INIT (or `validate`) naming a path too long for the file
    system raised an OSError traceback; a path with a newline made a two-line error."""
    for value in ("a" * 5000, f"{tmp_path}/x\ny.yaml"):
        monkeypatch.setenv("MOCK_PLANHAT_INIT", value)
        assert main(["--port", "0"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "no such file or folder" in lines[0], lines
        assert len(lines[0]) < 400, lines
    monkeypatch.delenv("MOCK_PLANHAT_INIT")
    assert main(["validate", "b" * 5000]) == 2
    out = capsys.readouterr()
    assert "no such file or folder" in out.out + out.err
