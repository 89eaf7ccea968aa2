"""Scenario files: the schema, the loader's errors with file:line:column, references."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mock_planhat.cli import main
from mock_planhat.scenario import ScenarioError, load_scenario, schema
from mock_planhat.scenario.engage import audience_key

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"


def write(tmp_path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return [str(p) for p in info.value.problems]


def test_schema_command_prints_a_valid_draft_2020_12_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(printed)
    assert printed == schema()
    assert {"identify", "generate", "audience", "computed_trait", "fault", "expect"} <= set(
        printed["$defs"]["step"]["properties"])


def test_every_library_scenario_is_valid_and_there_are_at_least_15():
    files = sorted(LIBRARY.glob("*.yaml"))
    assert len(files) >= 15
    for path in files:
        scenario = load_scenario(path)
        assert scenario.name


def test_a_short_valid_file_loads(tmp_path):
    path = write(tmp_path, "name: x\nsteps:\n  - identify: {userId: u1, traits: {email: a@b.c}}\n")
    scenario = load_scenario(path)
    assert scenario.data["steps"][0]["identify"]["userId"] == "u1"
    assert scenario.where(("steps", 0, "identify")) == f"{path}:3"


def test_every_problem_is_reported_at_once_with_line_and_column(tmp_path):
    path = write(tmp_path, """\
name: broken
seed: one
steps:
  - identify:
      userId: [5]
      traits: {email: a@b.c}
  - track: {userId: u1}
  - identfy: {userId: u1}
  - audience:
      name: Buyers
      members: "@nobody[0:3]"
expect:
  count: {endusers: -1}
""")
    found = problems(path)
    assert f"{path}:2:7: seed: \"one\" is not of type 'integer'" in found or \
        f"{path}:2:7: seed: 'one' is not of type 'integer'" in found
    assert f"{path}:5:15: steps[0].identify.userId: [5] is not of type 'string', 'number', 'null'" in found
    assert any(p.startswith(f"{path}:7:") and "steps[1].track" in p and "'event'" in p
               for p in found)
    assert any(p.startswith(f"{path}:8:5: steps[2].identfy: unknown key 'identfy'")
               for p in found)
    assert any(p.startswith(f"{path}:11:16: steps[3].audience.members:") and "nobody" in p
               for p in found)
    assert any(p.startswith(f"{path}:13:21: expect.count.endusers:") for p in found)
    assert len(found) == 6, found


def test_yaml_syntax_error_has_a_location_and_no_traceback(tmp_path, capsys):
    path = write(tmp_path, "name: x\nsteps:\n  - identify: {userId: u1\n")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:") and "invalid YAML" in found[0]
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "invalid YAML" in out and "Traceback" not in out


def test_json_files_are_checked_with_locations(tmp_path):
    bad = write(tmp_path, '{"name": "x",\n "steps": [\n  {"page": {"userId": [7]}}\n ]}\n',
                "s.json")
    found = problems(bad)
    assert found == [f"{bad}:3:23: steps[0].page.userId: [7] is not of type 'string', 'number', 'null'"]
    broken = write(tmp_path, '{"name": "x",\n "steps": [}\n', "t.json")
    assert problems(broken)[0].startswith(f"{broken}:2:") and "invalid JSON" in \
        problems(broken)[0]


def test_duplicate_keys_and_two_actions_in_a_step_are_problems(tmp_path):
    path = write(tmp_path, """\
name: x
name: y
steps:
  - identify: {userId: u1}
    track: {userId: u1, event: E}
""")
    found = problems(path)
    assert any(p.startswith(f"{path}:2:1: name: duplicate key") for p in found)
    assert any(p.startswith(f"{path}:4:5: steps[0]: a step holds exactly one action") for p in found)


def test_references_must_name_an_earlier_generate_step_and_be_in_range(tmp_path):
    path = write(tmp_path, """\
name: refs
steps:
  - identify: {userId: "@users[0]"}
  - generate: {count: 3}
  - identify: {userId: "@users[3]"}
  - identify: {userId: "@users[-1]"}
  - expect:
      audiences: [Nope]
      endusers: [{externalId: "@users[2]", email: x@y.z}]
""")
    found = problems(path)
    assert any(":3:" in p and "no generate step named 'users'" in p for p in found)
    assert any(":5:" in p and "index out of range" in p for p in found)
    assert not any(":6:" in p for p in found)
    assert any(":8:" in p and "no audience step for 'Nope'" in p for p in found)
    assert any(":9:" in p and "exactly one of externalId, email" in p for p in found)


def test_empty_unreadable_and_non_utf8_files(tmp_path, capsys):
    assert "the file is empty" in problems(write(tmp_path, ""))[0]
    assert "cannot read" in problems(tmp_path / "missing.yaml")[0]
    raw = tmp_path / "latin.yaml"
    raw.write_bytes(b"name: caf\xe9\nsteps: []\n")
    assert "not UTF-8" in problems(raw)[0]
    assert "is not of type 'object'" in problems(write(tmp_path, "- a\n- b\n"))[0]


def test_validate_command_reports_all_files(tmp_path, capsys):
    write(tmp_path, "name: ok\nsteps: []\n", "a.yaml")
    write(tmp_path, "name: bad\nsteps: [{fault: {status: 418}}]\n", "b.yaml")
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"ok  {tmp_path / 'a.yaml'}: ok" in out
    assert f"{tmp_path / 'b.yaml'}:2:" in out and "steps[0].fault.status" in out
    assert out.rstrip().endswith("1 valid, 1 invalid")


def test_validate_missing_path_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("name, key", [
    ("Order Completed Last 30days", "order_completed_last_30days"),
    ("  VIP -- Customers!! ", "vip_customers"),
    ("already_snake", "already_snake"),
    ("Über Fans 2024", "ber_fans_2024"),
])
def test_audience_key_is_segments_snake_case(name, key):
    assert audience_key(name) == key


def test_model_finders_name_exactly_one_key(tmp_path):
    path = write(tmp_path, "name: x\nexpect:\n  tasks:\n    - {externalId: a, sourceId: b}\n"
                 "    - {where: {status: open}, absent: true, is: {status: open}}\n"
                 "  count: {tasks: 1, nope: 2}\n")
    found = "\n".join(problems(path))
    assert "expect.tasks[0]" in found and "exactly one of externalId, sourceId, where" in found
    assert "expect.tasks[1]" in found and "'absent: true' cannot be combined" in found
    assert "nope" in found


def test_request_steps_are_checked_with_locations(tmp_path):
    path = write(tmp_path, """\
name: requests
steps:
  - request: {method: PUT, path: /companies/extid-a, body: {name: A}}
  - request: {path: /companies}
  - request: {method: GET, path: /__admin/state}
  - request: {method: POST, path: "/analytics/{tenant}"}
  - request: {method: POST, path: /v1/identify, status: 999}
  - request: {method: BREW, path: companies}
""")
    found = problems(path)
    assert any(p.startswith(f"{path}:4:") and "'method' is a required property" in p
               for p in found), found
    assert any(p.startswith(f"{path}:5:") and "steps[2].request.path" in p
               and "admin API" in p for p in found), found
    assert any(p.startswith(f"{path}:6:") and "only placeholders are {tenantToken}" in p
               for p in found), found
    assert any(p.startswith(f"{path}:7:") and "steps[4].request.path" in p for p in found)
    assert any(p.startswith(f"{path}:7:") and "steps[4].request.status" in p for p in found)
    assert any(p.startswith(f"{path}:8:") and "steps[5].request.method" in p for p in found)
    assert any(p.startswith(f"{path}:8:") and "steps[5].request.path" in p for p in found)
    assert len(found) == 7, found


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path):
    """`mock-planhat validate --calls FILE | head -1`: the reader leaves early; the command
    stops without a traceback, with the exit code of a Unix tool killed by SIGPIPE (every
    scenario command is wrapped alike)."""
    import subprocess
    import sys

    many = write(tmp_path, "name: many\nsteps:\n  - generate: {count: 3000}\n")
    proc = subprocess.Popen([sys.executable, "-m", "mock_planhat", "validate", "--calls",
                             str(many)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_request_step_cannot_reach_the_admin_api_by_another_spelling(tmp_path):
    """Regression: '//__admin/reset' passed the check (it looked for '/__admin' at the start)
    and the server, which merges leading slashes, reset the tenant; '%5F%5Fadmin' is decoded
    by the server too; '..' is not resolved and never meant what it says."""
    spellings = ["//__admin/reset", "/%5F%5Fadmin/reset", "///v1/identify", "/%64ock/segment",
                 "/companies/../__admin/reset", "/./companies", "/", "//"]
    steps = "".join(f"  - request: {{method: POST, path: '{p}', body: {{}}}}\n"
                    for p in spellings)
    path = write(tmp_path, "name: sneaky\nsteps:\n" + steps)
    found = problems(path)
    for line, spelling in enumerate(spellings, start=3):
        assert any(p.startswith(f"{path}:{line}:") and f"steps[{line - 3}].request.path" in p
                   for p in found), (spelling, found)
    assert len(found) == len(spellings), found


def test_a_file_nested_too_deeply_is_a_problem_not_a_traceback(tmp_path):
    """Regression: a request body nested a few hundred levels deep made the YAML parser (and
    the JSON one, deeper) raise RecursionError: `validate` printed a traceback."""
    import subprocess
    import sys

    for depth in (500, 100_000):
        body = "[" * depth + "]" * depth
        yaml_file = write(tmp_path, "name: deep\nsteps:\n  - request:\n      method: POST\n"
                          "      path: /companies\n      body: " + body + "\n")
        json_file = tmp_path / "deep.json"
        json_file.write_text('{"name": "deep", "steps": [{"request": {"method": "POST", '
                             '"path": "/companies",\n "body": ' + body + "}}]}")
        for path, line in ((yaml_file, 6), (json_file, 2)):
            found = problems(path)
            assert len(found) == 1 and found[0].startswith(f"{path}:{line}:") \
                and "nested too deeply" in found[0], found
        done = subprocess.run([sys.executable, "-m", "mock_planhat", "validate",
                               str(yaml_file)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "nested too deeply" in done.stdout
