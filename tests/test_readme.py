"""The README's examples work as written."""

from __future__ import annotations

import re
from pathlib import Path

from mock_planhat.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_scenario_passes(tmp_path, capsys):
    text = README.read_text("utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    path = tmp_path / "example.yaml"
    path.write_text(block, "utf-8")
    assert main(["run", str(path)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_the_readme_commands_are_the_first_lines():
    lines = [line.strip() for line in README.read_text("utf-8").splitlines() if line.strip()]
    commands = [line for line in lines[:8] if line.startswith("python -m pip install")]
    assert commands == ["python -m pip install . && python -m mock_planhat",
                        "python -m pip install tox && python -m tox"]
    ci = (README.parent / ".ci" / "run").read_text("utf-8")
    assert commands[1] in ci
