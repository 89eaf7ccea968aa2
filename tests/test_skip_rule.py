"""Under CI=true a skip that tests/allowed_skips.txt does not list fails the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

UNEXPECTED = """\
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="the feature is not present")
def test_guarded():
    pass

def test_skips_itself():
    pytest.skip("not on this server yet")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
"""
MODULE_SKIP = 'import pytest\npytest.skip("whole module", allow_module_level=True)\n'
ALLOWED = 'import pytest\n\ndef test_soak():\n    pytest.skip("set MOCK_PLANHAT_SOAK=1")\n'


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("conftest.py", "allowed_skips.txt"):
        shutil.copy(TESTS / name, tests / name)
    (tests / "test_guarded.py").write_text(UNEXPECTED)
    (tests / "test_module_skip.py").write_text(MODULE_SKIP)
    (tests / "test_soak.py").write_text(ALLOWED)
    return tmp_path


def _pytest(root: Path, ci: str | None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:randomly",
                           "--continue-on-collection-errors"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_an_unexpected_skip_fails_the_run_under_ci(tmp_path):
    done = _pytest(_project(tmp_path), "true")
    assert done.returncode == 1, done.stdout
    out = done.stdout
    # a skipif mark skips in setup (an ERROR once failed), pytest.skip() in the call (FAILED)
    assert "ERROR tests/test_guarded.py::test_guarded - " in out
    assert "FAILED tests/test_guarded.py::test_skips_itself - " in out
    assert "ERROR tests/test_module_skip.py - " in out
    assert "not on this server yet" in out and "allowed_skips.txt does not allow it" in out
    assert "PASSED tests/test_guarded.py::test_runs" in out
    assert "XFAIL tests/test_guarded.py::test_expected_failure" in out
    assert "SKIPPED [1] tests/test_soak.py" in out  # listed in allowed_skips.txt


def test_outside_ci_a_skip_is_only_a_skip(tmp_path):
    done = _pytest(_project(tmp_path), None)
    assert done.returncode == 0, done.stdout
    assert "3 passed" not in done.stdout and "4 skipped" in done.stdout


def test_the_allow_list_names_existing_tests_with_a_reason():
    from conftest import allowed_skip_patterns

    lines = [line for line in (TESTS / "allowed_skips.txt").read_text("utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(len(line.split(None, 1)) == 2 for line in lines)  # pattern + why
    assert "tests/test_soak.py::*" in allowed_skip_patterns()
