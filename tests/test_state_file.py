"""--state FILE and --autosave: load at start, save on a clean stop and periodically, atomic
writes (a kill while saving leaves the old file or the new one), bad files stop the start."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from test_cli import start, stop

API = {"Authorization": "Bearer mock-api-token"}


def _companies(url) -> list[str]:
    return [c["name"] for c in requests.get(url + "/companies", headers=API, timeout=5).json()]


@pytest.mark.parametrize("server", ["waitress", "werkzeug"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_state_survives_a_restart(tmp_path, sig, server):
    path = tmp_path / "state.json"
    proc, url = start("--port", "0", "--quiet", "--state", str(path), "--server", server)
    try:
        requests.post(url + "/companies", headers=API, json={"name": "Acme"}, timeout=5)
        requests.post(url + "/__admin/tenants", json={"tenantToken": "t2", "apiToken": "a2"},
                      timeout=5)
        requests.post(url + "/__admin/clock?tenant=t2", json={"now": "2024-01-01T00:00:00Z"},
                      timeout=5)
    finally:
        code, _, err = stop(proc, sig)
    assert code == 0 and "Traceback" not in err
    doc = json.loads(path.read_text())
    assert doc["format"] == "mock-planhat-snapshot" and len(doc["tenants"]) == 2
    proc, url = start("--port", "0", "--quiet", "--state", str(path))
    try:
        assert _companies(url) == ["Acme"]
        clock = requests.get(url + "/__admin/clock?tenant=a2", timeout=5).json()
        assert clock == {"real": False, "now": "2024-01-01T00:00:00.000Z"}
    finally:
        stop(proc)


def test_a_request_being_answered_at_the_stop_is_in_the_saved_state(tmp_path):
    """The default server's stop waits for the requests its threads are answering before the
    state is saved: a write delayed by a fault rule, still running at SIGTERM, is saved."""
    path = tmp_path / "state.json"
    proc, url = start("--port", "0", "--quiet", "--state", str(path), "--server", "waitress")
    try:
        rule = requests.post(url + "/__admin/faults", json={"method": "POST",
                             "path": "/companies", "delay": 1.5}, timeout=5)
        assert rule.status_code in (200, 201), rule.text
        late = threading.Thread(target=lambda: _post_quietly(url + "/companies", {"name": "Late"}),
                                daemon=True)
        late.start()
        time.sleep(0.5)  # the request is in the server, sleeping in its fault rule
    finally:
        code, _, err = stop(proc)
    late.join(timeout=10)
    assert code == 0 and "Traceback" not in err
    doc = json.loads(path.read_text())
    assert "Late" in json.dumps(doc)


def _post_quietly(url: str, body: dict) -> None:
    try:
        requests.post(url, headers=API, json=body, timeout=10)
    except requests.RequestException:
        pass  # the server stopped before answering: what matters is the saved state


def test_autosave_writes_while_running(tmp_path):
    path = tmp_path / "state.json"
    proc, url = start("--port", "0", "--quiet", "--state", str(path), "--autosave", "0.2")
    try:
        requests.post(url + "/companies", headers=API, json={"name": "Saved"}, timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if path.exists() and json.loads(path.read_text())["tenants"][0]["companies"]:
                break
            time.sleep(0.1)
        names = [c["name"] for c in json.loads(path.read_text())["tenants"][0]["companies"]]
        assert names == ["Saved"]
    finally:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("content,text", [
    ("{not json", "is not a JSON snapshot"),
    ('{"format": "mock-planhat-snapshot", "formatVersion": 99, "packageVersion": "9.0.0", '
     '"tenants": []}', "formatVersion: 99 is not a snapshot version"),
    ('{"format": "mock-planhat-snapshot", "formatVersion": 1, "tenants": [{"tenantToken": 1}]}',
     "tenants[0]"),
    ("[]", "snapshot: must be a JSON object"),
])
def test_a_bad_state_file_stops_the_start_and_is_kept(tmp_path, content, text):
    path = tmp_path / "state.json"
    path.write_text(content)
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", "--state",
                           str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and text in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert path.read_text() == content


@pytest.mark.parametrize("args,text", [
    (["--state", "/no/such/folder/state.json"], "the folder /no/such/folder does not exist"),
    (["--autosave", "5"], "--autosave needs --state FILE"),
    (["--state", "x.json", "--autosave", "0"], "must be more than 0 seconds"),
])
def test_state_flag_mistakes_are_one_line_errors(args, text):
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreadable_state_file_stops_the_start(tmp_path):
    path = tmp_path / "state.json"
    path.mkdir()
    done = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", "--state",
                           str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "is a folder" in done.stderr


def test_a_kill_while_saving_leaves_the_old_file_or_the_new_one(tmp_path):
    """Each round: start from the file, add a known batch of rows, let autosave run, kill -9 at
    a random moment (often mid-save: the state is a few MB). The file must always be a whole
    snapshot holding exactly the rows of some round (old or new), never a torn one."""
    path = tmp_path / "state.json"
    rng = random.Random(11)
    rows = [{"dimensionId": "load", "value": i, "model": "Company", "externalId": "x" * 200}
            for i in range(1_000)]
    before: set[int] = set()
    outcomes = []
    for round_ in range(10):
        proc, url = start("--port", "0", "--quiet", "--state", str(path), "--autosave", "0.01")
        try:
            r = requests.post(url + "/dimensiondata/mock-tenant-token",
                              json=[{**row, "round": round_} for row in rows], timeout=30)
            assert r.status_code == 200, r.text
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            proc.kill()
            proc.communicate(timeout=10)
        doc = json.loads(path.read_text())  # a torn file would not parse
        data = doc["tenants"][0]["dimensiondata"]
        rounds = {row["round"] for row in data}
        assert rounds in (before, before | {round_}), (round_, before, rounds)
        assert len(data) == len(rows) * len(rounds)  # every saved round whole
        outcomes.append(rounds != before)
        before = rounds
    assert any(outcomes)  # saves did happen between kills
