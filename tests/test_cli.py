"""The real process: python -m mock_planhat, its start line, its help, and a clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

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
                      env={"MOCK_PLANHAT_TENANT_TOKEN": "env-tenant",
                           "MOCK_PLANHAT_UNASSIGNED": "discard"})
    try:
        assert requests.get(url + "/endusers", headers={"Authorization": "Bearer flag-token"},
                            timeout=5).status_code == 200
        state = requests.get(url + "/__admin/state", timeout=5).json()
        assert state["tenant"] == "env-tenant" and state["unassigned"] == "discard"
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
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--tenant-token", "--api-token", "--unassigned", "--quiet"):
        assert flag in out


@pytest.mark.parametrize("args,text", [(["--port", "99999"], "not a port number"),
                                       (["--unassigned", "keep"], "invalid choice")])
def test_bad_flags_exit_2_with_a_message(capsys, args, text):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and text in capsys.readouterr().err


def test_port_in_use_is_a_clear_error():
    proc, url = start("--port", "0")
    try:
        port = url.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", port],
                              capture_output=True, text=True, timeout=20)
    finally:
        stop(proc)
    assert done.returncode == 2
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr
