"""tox anywhere: with one Python of 3.10-3.13 on the machine the suite runs there and the others
are skipped with a line naming them; under CI=true all four are required (toxfile.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ["py310", "py311", "py312", "py313"]
HERE = f"py{sys.version_info.major}{sys.version_info.minor}"


def tox(tmp_path, envs, ci=None, **extra_env):
    """tox on this repo's tox.ini with no interpreter on PATH: only the running one is visible.
    The envs run a trivial command instead of the suite (no package build, no deps)."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOX_", "PYENV", "VIRTUAL_ENV")) and k != "CI"}
    env["PATH"] = str(tmp_path / "bin")
    if ci is not None:
        env["CI"] = ci
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "tox", "-c", str(ROOT / "tox.ini"), "--workdir",
         str(tmp_path / "work"), "-e", ",".join(envs), "--skip-pkg-install",
         "-x", "testenv.extras=", "-x", "testenv.deps=",
         "-x", "testenv.commands=python -c \"import sys; print('ran on', sys.version)\""],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_with_one_python_the_others_are_skipped_with_a_line_naming_them(tmp_path):
    done = tox(tmp_path, SUITE)
    assert done.returncode == 0, done.stdout + done.stderr
    others = ", ".join(e for e in SUITE if e != HERE)
    assert (f"tox: the suite runs on {HERE}; skipped, no interpreter: {others} "
            f"(CI=true requires all of {', '.join(SUITE)})") in done.stdout
    assert f"ran on {sys.version_info.major}.{sys.version_info.minor}" in done.stdout
    for other in SUITE:
        if other != HERE:
            assert f"{other}: SKIP" in done.stdout


def test_under_ci_every_python_is_required(tmp_path):
    done = tox(tmp_path, SUITE, ci="true")
    assert done.returncode != 0
    others = ", ".join(e for e in SUITE if e != HERE)
    assert (f"tox: CI=true requires every Python of the suite ({', '.join(SUITE)}); "
            f"no interpreter for {others}") in done.stdout + done.stderr
    assert "ran on" not in done.stdout


def test_at_least_one_python_must_run(tmp_path):
    done = tox(tmp_path, [e for e in SUITE if e != HERE])
    assert done.returncode != 0
    assert "tox: no interpreter for any suite env" in done.stdout + done.stderr
    assert "'tox -e py'" in done.stdout + done.stderr


def test_tox_skip_missing_false_requires_every_python_locally(tmp_path):
    done = tox(tmp_path, SUITE, TOX_SKIP_MISSING="false")
    assert done.returncode != 0
    assert "tox: TOX_SKIP_MISSING=false requires every Python of the suite" in (
        done.stdout + done.stderr)
