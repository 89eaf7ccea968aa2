"""docs/scenarios.md documents every key of the scenario schema, uses each in an example, and
every example is a valid scenario that runs and passes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mock_planhat.scenario import load_scenario, run_scenario, schema

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "scenarios.md"
TEXT = DOC.read_text("utf-8")
EXAMPLES = re.findall(r"^```yaml\n(.*?)^```", TEXT, re.M | re.S)


def _resolve(node: dict, root: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _key(grandparent, name: str, subschema) -> tuple:
    """One documented key: its name, its schema, and the object its parent hangs from — or the
    $def its parent is (so ``userId`` is one key for the six call types, and the keys of an
    ``expect`` step are those of the final ``expect``)."""
    return (id(grandparent), name, json.dumps(subschema, sort_keys=True))


def _deref(node, parent, root: dict):
    """A node with its $refs resolved, and the parent its keys hang from (the $def, if any)."""
    if isinstance(node, dict) and "$ref" in node:
        node = _resolve(node, root)
        return node, node
    return node, parent


def schema_keys(root: dict) -> dict[tuple, str]:
    """Every key the schema defines → a readable path."""
    keys: dict[tuple, str] = {}

    def walk(node, path: str, parent, seen: frozenset) -> None:
        node, parent = _deref(node, parent, root)
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen = seen | {id(node)}
        for sub in node.get("anyOf", []) + node.get("oneOf", []):
            walk(sub, path, parent, seen)
        for name, sub in node.get("properties", {}).items():
            keys.setdefault(_key(parent, name, sub), f"{path}.{name}".lstrip("."))
            walk(sub, f"{path}.{name}", node, seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", parent, seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*", node, seen)

    walk(root, "", None, frozenset())
    return keys


def used_keys(instance, root: dict) -> set[tuple]:
    """The schema keys an instance uses (every anyOf branch whose shape fits is followed)."""
    used: set[tuple] = set()

    def walk(value, node, parent) -> None:
        node, parent = _deref(node, parent, root)
        if not isinstance(node, dict):
            return
        for sub in node.get("anyOf", []) + node.get("oneOf", []):
            walk(value, sub, parent)
        if isinstance(value, dict):
            for name, item in value.items():
                if name in node.get("properties", {}):
                    sub = node["properties"][name]
                    used.add(_key(parent, name, sub))
                    walk(item, sub, node)
                elif isinstance(node.get("additionalProperties"), dict):
                    walk(item, node["additionalProperties"], node)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for item in value:
                walk(item, node["items"], parent)

    walk(instance, root, None)
    return used


def as_file(example: str) -> dict:
    data = yaml.safe_load(example)
    return {"name": "docs example", "steps": [], **data}


def test_every_key_of_the_schema_is_named_in_the_doc():
    missing = sorted({path for path in schema_keys(schema()).values()
                      if f"`{path.rsplit('.', 1)[-1]}`" not in TEXT})
    assert not missing, f"docs/scenarios.md does not name: {missing}"


def test_every_key_of_the_schema_is_used_by_an_example():
    root = schema()
    keys = schema_keys(root)
    used = set().union(*(used_keys(as_file(e), root) for e in EXAMPLES))
    unused = sorted(path for key, path in keys.items() if key not in used)
    assert not unused, f"no example in docs/scenarios.md uses: {unused}"


def test_the_walk_sees_the_whole_schema():
    """The coverage check is not vacuous: it finds the keys one expects, shared where shared."""
    paths = set(schema_keys(schema()).values())
    assert {"name", "clock", "settings.subdomain", "steps[].identify.traits",
            "steps[].track.event", "steps[].expect.journal.status",
            "steps[].note", "steps[].audience.members[].fraction"} <= paths
    assert "steps[].expect.count" in paths and "expect.count" not in paths  # one $def
    assert sum(p.endswith(".min") for p in paths) == 2  # a count's bounds, generate's per user
    assert sum(p.endswith(".messageId") for p in paths) == 1  # one key for the six calls
    assert len(paths) > 80


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_every_example_is_a_valid_scenario_that_passes(index, tmp_path):
    path = tmp_path / f"example{index}.yaml"
    path.write_text(yaml.safe_dump(as_file(EXAMPLES[index]), sort_keys=False), "utf-8")
    result = run_scenario(load_scenario(path))
    assert result.passed, result.render()


def test_the_doc_is_linked_from_the_readme():
    assert "docs/scenarios.md" in (ROOT / "README.md").read_text("utf-8")
