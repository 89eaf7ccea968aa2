"""The README's examples work as written: every fenced block is run (Python in a subprocess,
shell against a live server, the pytest example through pytest, the scenario through the
runner), Python blocks print what their comments say, and the `$ python -m mock_planhat ...`
command lines exit 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_planhat import Config, create_app
from mock_planhat.cli import main
from mock_planhat.server import Server

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text("utf-8")
BLOCKS = [(lang, code) for lang, code in re.findall(r"^```(\w*)\n(.*?)^```", TEXT, re.M | re.S)]
README_URL = "http://127.0.0.1:8765"  # where the README's examples expect `python -m mock_planhat`


def blocks(lang: str) -> list[str]:
    return [code for kind, code in BLOCKS if kind == lang]


@pytest.fixture(scope="module")
def server():
    server = Server(create_app(Config()), "127.0.0.1", 0).start()
    yield server
    server.stop()


@pytest.fixture
def url(server):
    """The live server, emptied: each example starts from a fresh fake, as after start-up."""
    requests.post(server.url + "/__admin/reset", timeout=5).raise_for_status()
    return server.url


def expected_output(code: str) -> list[str]:
    """The comment lines right after a print(...) line: what the block prints."""
    expected, last = [], ""
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and "print(" in last:
            expected.append(stripped[2:])
        elif stripped and not stripped.startswith("#"):
            last = stripped
    return expected


def test_every_fenced_block_is_of_a_kind_this_file_runs():
    assert {lang for lang, _ in BLOCKS} == {"python", "sh", "yaml", "toml"}


@pytest.mark.parametrize("code", [c for c in blocks("python") if not c.startswith("def test_")],
                         ids=lambda code: code.splitlines()[0])
def test_python_blocks_run_and_print_what_they_say(code, url, tmp_path):
    assert README_URL in code  # every example targets the fake, never real Planhat
    done = subprocess.run([sys.executable, "-c", code.replace(README_URL, url)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = [line.replace(README_URL, url) for line in expected_output(code)]
    assert expected and done.stdout.splitlines() == expected


def test_the_shell_block_runs_against_a_live_server(url):
    (code,) = blocks("sh")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", code.replace(README_URL, url)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count('"error"') == 1 and out.rstrip().endswith(
        '"field":"Content-Type"}')  # only the last command fails: 415 without the header
    assert "unsupported_media_type" in out
    state = requests.get(url + "/__admin/state", timeout=5).json()
    assert [c["externalId"] for c in state["companies"]] == ["acme"]
    assert [(u["externalId"], u["companyName"]) for u in state["endusers"]] == [("u1", "Acme")]
    assert [u["externalId"] for u in state["pending"]] == ["u2"]
    assert [a["action"] for a in state["activities"]] == ["Signed Up"]
    assert '"action":"Signed Up"' in out  # the state was printed


def test_the_pytest_example_runs_with_the_plugin_configured_as_shown(tmp_path):
    (example,) = [c for c in blocks("python") if c.startswith("def test_")]
    (toml,) = blocks("toml")
    (scenario,) = blocks("yaml")
    setting = toml.strip().splitlines()[-1]  # this project's own configuration says the same
    assert setting.startswith("mock_planhat_scenarios")
    assert setting in (ROOT / "pyproject.toml").read_text("utf-8").splitlines()
    (tmp_path / "pyproject.toml").write_text(toml, "utf-8")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "example.yaml").write_text(scenario, "utf-8")
    (tmp_path / "test_example.py").write_text(example, "utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                           "-p", "no:randomly"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "CI"})
    assert done.returncode == 0, done.stdout
    assert "test_example.py::test_signup_reaches_planhat PASSED" in done.stdout
    assert "scenarios/example.yaml::" in done.stdout and "2 passed" in done.stdout


def test_the_readme_scenario_passes(tmp_path, capsys):
    (block,) = blocks("yaml")
    path = tmp_path / "example.yaml"
    path.write_text(block, "utf-8")
    assert main(["run", str(path)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


COMMANDS = [line.split("$ ", 1)[1].split("  #")[0].strip()
            for line in TEXT.splitlines() if line.startswith("    $ python -m mock_planhat ")]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.split()[3:4] != ["--port"]])
def test_the_command_lines_run(command, url):
    args = shlex.split(command.replace(README_URL, url))
    assert args[:3] == ["python", "-m", "mock_planhat"]
    paths = [str(p.relative_to(ROOT)) for arg in args[3:] for p in sorted(ROOT.glob(arg))
             ] if any("*" in a for a in args) else []
    args = [a for a in args if "*" not in a] + paths
    done = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_commands_are_the_first_lines():
    lines = [line.strip() for line in TEXT.splitlines() if line.strip()]
    commands = [line for line in lines[:8] if line.startswith("python -m pip install")]
    assert commands == ["python -m pip install . && python -m mock_planhat",
                        "python -m pip install tox && python -m tox"]
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert commands[1] in ci
    assert "\n.ci/release-check" in ci and "pip install build twine" in ci  # the release check
    assert os.access(ROOT / ".ci" / "release-check", os.X_OK)
