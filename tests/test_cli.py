"""The real process: python -m mock_planhat, its start line, its help, and a clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_planhat.cli import main


def start(*args, env=None):
    proc = subprocess.Popen([sys.executable, "-m", "mock_planhat", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    line = proc.stdout.readline()
    match = re.fullmatch(r"mock-planhat listening on (http://127\.0\.0\.1:(\d+))\n", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    proc.banner = line + "".join(proc.stdout.readline() for _ in range(3))
    return proc, match.group(1)


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_a_free_port_and_stops_cleanly(sig):
    proc, url = start("--port", "0")
    try:
        assert requests.get(url + "/__admin/health", timeout=5).json() == {"status": "ok"}
        r = requests.get(url + "/companies", headers={"Authorization": "Bearer mock-api-token"},
                         timeout=5)
        assert r.status_code == 200 and r.json() == []
    finally:
        code, out, err = stop(proc, sig)
    assert code == 0
    assert "Traceback" not in err
    assert "mock-tenant-token" in proc.banner and "mock-api-token" in proc.banner


def test_tokens_and_policy_from_flags_and_environment():
    proc, url = start("serve", "--port", "0", "--api-token", "flag-token", "--quiet",
                      "--email-match", "strict",
                      env={"MOCK_PLANHAT_TENANT_TOKEN": "env-tenant",
                           "MOCK_PLANHAT_UNASSIGNED": "discard"})
    try:
        assert requests.get(url + "/endusers", headers={"Authorization": "Bearer flag-token"},
                            timeout=5).status_code == 200
        state = requests.get(url + "/__admin/state", timeout=5).json()
        assert state["tenant"] == "env-tenant" and state["unassigned"] == "discard"
        assert state["emailMatch"] == "strict"
    finally:
        code, _, err = stop(proc)
    assert code == 0 and err == ""  # --quiet: no access log


def test_access_log_is_on_by_default():
    proc, url = start("--port", "0")
    requests.get(url + "/__admin/health", timeout=5)
    _, _, err = stop(proc)
    assert '"GET /__admin/health HTTP/1.1" 200' in err


def test_help_lists_commands_and_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "serve" in out and "run" in out and "validate" in out
    commands, server = out.split("server options", 1)  # the top level shows serve's options
    for flag in ("--host", "--port", "--tenant-token", "--api-token", "--unassigned", "--quiet",
                 "--journal-size", "--max-body", "MOCK_PLANHAT_PORT"):
        assert flag in server and flag not in commands
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--tenant-token", "--api-token", "--unassigned",
                 "--email-match", "--quiet"):
        assert flag in out


@pytest.mark.parametrize("args,text", [(["--port", "99999"], "not a port number"),
                                       (["--unassigned", "keep"], "invalid choice"),
                                       (["--email-match", "loose"], "invalid choice"),
                                       (["--busy-poll", "-1"], "must not be negative"),
                                       (["--busy-poll", "0.5"], "not a whole number"),
                                       (["--busy-poll", "100001"], "at most 100000")])
def test_bad_flags_exit_2_with_a_message(capsys, args, text):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and text in capsys.readouterr().err


def test_a_bad_email_match_in_the_environment_is_a_clear_error():
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0"],
                          capture_output=True, text=True, timeout=20,
                          env={**os.environ, "MOCK_PLANHAT_EMAIL_MATCH": "loose"})
    assert done.returncode == 2
    assert "MOCK_PLANHAT_EMAIL_MATCH" in done.stderr and "attach, strict" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error():
    proc, url = start("--port", "0")
    try:
        port = url.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", port],
                              capture_output=True, text=True, timeout=20)
    finally:
        stop(proc)
    assert done.returncode == 2
    # one line, the OS's reason once: not waitress's "(while attempting to bind on ...)"
    assert done.stderr == (f"mock-planhat: error: cannot listen on 127.0.0.1:{port}: "
                           "Address already in use\n")


@pytest.mark.parametrize("word,hint", [("runn", "Did you mean 'run'?"), ("frobnicate", "")])
def test_an_unknown_command_lists_the_valid_ones(capsys, word, hint):
    assert main([word, "scenarios"]) == 2
    err = capsys.readouterr().err
    assert f"unknown command '{word}' (choose from serve, run, validate, record, schema)." in err
    assert hint in err and "unrecognized arguments" not in err


@pytest.mark.parametrize("name,value,text", [
    ("MOCK_PLANHAT_PORT", "abc", "MOCK_PLANHAT_PORT='abc': 'abc' is not a port number"),
    ("MOCK_PLANHAT_PORT", "99999", "MOCK_PLANHAT_PORT='99999': 99999 is not a port number"),
    ("MOCK_PLANHAT_PORT", "-1", "MOCK_PLANHAT_PORT='-1': -1 is not a port number"),
    ("MOCK_PLANHAT_UNASSIGNED", "keep", "MOCK_PLANHAT_UNASSIGNED='keep': invalid choice"),
    ("MOCK_PLANHAT_RATE_LIMIT", "fast", "MOCK_PLANHAT_RATE_LIMIT='fast'"),
])
@pytest.mark.parametrize("command", [[], ["serve"], ["--quiet"]])
def test_a_bad_environment_value_gets_the_flags_clean_error(name, value, text, command):
    done = subprocess.run([sys.executable, "-m", "mock_planhat", *command], capture_output=True,
                          text=True, timeout=20, env={**os.environ, name: value})
    assert done.returncode == 2 and text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_every_environment_variable_is_checked_like_its_flag(monkeypatch, capsys):
    """Data-driven: every ENV_FLAGS entry names a serve flag, and a value the flag refuses is
    refused from the environment with the variable's name."""
    from mock_planhat.cli import apply_env, build_parser
    from mock_planhat.config import ENV_FLAGS

    parser = build_parser(scenario_commands=False)
    dests = {action.dest: action for action in parser.serve_parser._actions}
    assert set(ENV_FLAGS) <= set(dests)
    for dest, name in ENV_FLAGS.items():
        action = dests[dest]
        if action.type is None and action.choices is None:
            continue  # any string goes (tokens): nothing to refuse
        with pytest.raises(SystemExit) as exit_:
            apply_env(parser.serve_parser, {name: "not-a-valid-\x01-value"})
        assert exit_.value.code == 2 and f"{name}=" in capsys.readouterr().err


def test_every_server_flag_and_variable_is_in_its_help_and_the_readme_table():
    """Data-driven: each serve flag has a row in the README's options table, and the variable
    of ENV_FLAGS that sets it is named both in that row and in the flag's --help text."""
    import pathlib
    import re

    from mock_planhat.cli import build_parser
    from mock_planhat.config import ENV_FLAGS

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in
            re.finditer(r"^\| `(--[a-z-]+)[^|]*\|.*$", readme, re.MULTILINE)}
    parser = build_parser(scenario_commands=False)
    for action in parser.serve_parser._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag in (None, "--help"):
            continue
        assert flag in rows, f"{flag} has no row in the README's options table"
        variable = ENV_FLAGS.get(action.dest)
        if variable:
            assert variable in rows[flag], f"README row of {flag} does not name {variable}"
            assert variable in action.help, f"--help of {flag} does not name {variable}"
        else:
            assert "MOCK_PLANHAT_" not in rows[flag], f"{flag}: no variable sets it"


def test_every_environment_variable_of_a_config_field_is_read_by_from_env():
    """Config.from_env is derived from ENV_FLAGS: every variable that sets a Config field is
    read (MOCK_PLANHAT_RATE_LIMIT once was not); the rest are the server's own flags."""
    from dataclasses import fields

    from mock_planhat import Config
    from mock_planhat.config import ENV_FLAGS

    good = {"tenant_token": "tt-env", "api_token": "at-env", "unassigned": "discard",
            "email_match": "strict", "rate_limit": "20/s"}
    config_fields = {f.name for f in fields(Config)}
    assert set(ENV_FLAGS) - config_fields == {"port", "state", "autosave", "init", "server"}
    assert set(ENV_FLAGS) & config_fields == set(good)  # a new one needs a value here
    config = Config.from_env({ENV_FLAGS[name]: value for name, value in good.items()})
    assert {name: getattr(config, name) for name in good} == good
    assert Config.from_env({}, rate_limit="planhat").rate_limit == "planhat"  # an override
    assert Config.from_env({}) == Config()


def test_a_good_environment_value_is_used_and_a_flag_wins():
    proc, url = start("--quiet", env={"MOCK_PLANHAT_PORT": "0"})
    stop(proc)  # port 0 from the environment: a free port
    proc, url = start("--quiet", "--port", "0", env={"MOCK_PLANHAT_UNASSIGNED": "discard"})
    try:
        assert requests.get(url + "/__admin/state", timeout=5).json()["unassigned"] == "discard"
    finally:
        stop(proc)


def test_other_commands_ignore_the_servers_variables(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "validate", "scenarios"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MOCK_PLANHAT_PORT": "abc"},
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
