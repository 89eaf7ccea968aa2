"""Reading scenario files: YAML or JSON, validated, every problem with its file:line:column.

`load_scenario(path)` returns a :class:`Scenario` or raises :class:`ScenarioError` holding
*all* problems found (syntax, schema, then meaning), each a :class:`Problem` printed as
``file:line:column: path.in.document: message``. Nothing here raises anything else for a bad
file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import yaml

from translator.segment import CALL_TYPES

from ..models import MODELS

SUFFIXES = (".yaml", ".yml", ".json")
ACTIONS = ("identify", "track", "page", "screen", "group", "alias", "generate", "audience",
           "computed_trait", "fault", "clock", "request", "expect")
TENANT_TOKEN = "{tenantToken}"  # in a request step's path: the scenario tenant's token
SAVED_REF = re.compile(r"\{saved\.([A-Za-z_][A-Za-z0-9_]*)\}")  # a value a request step saved
REQUEST_REFUSED = ("__admin", "v1", "dock")  # not Planhat's API: a request step refuses
REF = re.compile(r"^@([A-Za-z_][A-Za-z0-9_]*)\[(-?\d*)(?:(:)(-?\d*))?\]$")

Path_ = tuple  # a path inside the document: ("steps", 3, "identify", "userId")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class ScenarioError(Exception):
    """A scenario file that cannot be run; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


@dataclass
class Scenario:
    file: str  # as given (relative paths stay relative, for readable messages)
    data: dict
    marks: dict = field(default_factory=dict, repr=False)  # path tuple -> (line, column)
    snapshot: dict | None = field(default=None, repr=False)  # given.snapshot, loaded

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def seed(self) -> int:
        return int(self.data.get("seed", 0))

    def position(self, path: Path_) -> tuple[int, int]:
        path = tuple(path)
        while path and path not in self.marks:
            path = path[:-1]
        return self.marks.get(path, (1, 1))

    def where(self, path: Path_) -> str:
        line, _ = self.position(path)
        return f"{self.file}:{line}"


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# ----- reading -----------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: dates stay strings, as in JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _walk(node, path: Path_, marks: dict, dupes: list) -> None:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                dupes.append((path + (key,), key_node))
            seen.add(key)
            _walk(value_node, path + (key,), marks, dupes)
            marks[("key",) + path + (key,)] = (key_node.start_mark.line + 1,
                                                key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), marks, dupes)


def parse_text(text: str, file: str) -> tuple[Any, dict, list[Problem]]:
    """(data, marks, problems) for a YAML or JSON text; data is None after a syntax error."""
    try:
        return _parse_text(text, file)
    except RecursionError:  # the parsers (and the position walk) recurse per level
        line, column = _deep_point(text)
        return None, {}, [Problem(file, line, column, "", "nested too deeply to read (keep "
                                  "lists and mappings under a few hundred levels)")]


def _deep_point(text: str, depth: int = 100) -> tuple[int, int]:
    """Where flow brackets first nest ``depth`` levels deep (roughly: quotes are not
    skipped), else (1, 1)."""
    level = 0
    line, start = 1, 0
    for index, char in enumerate(text):
        if char == "\n":
            line, start = line + 1, index + 1
        elif char in "[{":
            level += 1
            if level >= depth:
                return line, index - start + 1
        elif char in "]}":
            level -= 1
    return 1, 1


def _parse_text(text: str, file: str) -> tuple[Any, dict, list[Problem]]:
    problems: list[Problem] = []
    marks: dict = {}
    is_json = file.endswith(".json")
    data = None
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, marks, [Problem(file, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and not is_json:
                data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        if is_json:  # valid JSON that PyYAML cannot read: no positions, still usable
            return data, marks, problems
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        return None, marks, [Problem(file, line, column, "", f"invalid YAML: {message}")]
    except yaml.YAMLError as exc:
        return None, marks, [Problem(file, 1, 1, "", f"invalid YAML: {exc}")]
    if node is not None:
        dupes: list = []
        _walk(node, (), marks, dupes)
        for path, key_node in dupes:
            problems.append(Problem(file, key_node.start_mark.line + 1,
                                    key_node.start_mark.column + 1, format_path(path),
                                    "duplicate key (the later value would win)"))
    return data, marks, problems


# ----- the schema --------------------------------------------------------------------------
@lru_cache(maxsize=1)
def schema_text() -> str:
    return resources.files("mock_planhat.scenario").joinpath("schema.json").read_text("utf-8")


def schema() -> dict:
    return json.loads(schema_text())


@lru_cache(maxsize=1)
def _validator():
    return jsonschema.Draft202012Validator(schema())


def _describe(error) -> tuple[tuple, str]:
    """A readable (path, message) for one jsonschema error."""
    path = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        types = [e for e in error.context if e.validator == "type"]
        if len(types) == len(error.context):
            wanted = []
            for e in types:
                wanted += e.validator_value if isinstance(e.validator_value, list) \
                    else [e.validator_value]
            names = ", ".join(repr(t) for t in dict.fromkeys(wanted))
            return path, f"{_short(error.instance)} is not of type {names}"
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        return _describe(deepest)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return path + (extra[0],), f"unknown key {extra[0]!r}{hint}"
    if error.validator == "required":
        return path, error.message
    if error.validator == "minProperties" and error.validator_value == 1:
        return path, "must not be empty"
    return path, error.message


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# ----- meaning -----------------------------------------------------------------------------
class _Checker:
    """Checks the schema cannot express: one action per step, references, bounds."""

    def __init__(self, data: dict):
        self.data = data
        self.problems: list[tuple[tuple, str]] = []
        self.generated: dict[str, int] = {}
        self.audiences: set[str] = set()
        self.traits: set[str] = set()
        self.saved: set[str] = set()

    def add(self, path, message) -> None:
        self.problems.append((tuple(path), message))

    def run(self) -> list[tuple[tuple, str]]:
        steps = self.data.get("steps")
        if isinstance(steps, list):
            for index, step in enumerate(steps):
                if isinstance(step, dict):
                    self.step(("steps", index), step)
        if isinstance(self.data.get("expect"), dict):
            self.expect(("expect",), self.data["expect"])
        return self.problems

    def step(self, path, step: dict) -> None:
        actions = [k for k in step if k in ACTIONS]
        if len(actions) != 1:
            if actions:
                self.add(path, f"a step holds exactly one action; this one has {len(actions)}: "
                         f"{', '.join(actions)}")
            elif not [k for k in step if k != "note"]:
                self.add(path, f"a step needs an action: one of {', '.join(ACTIONS)}")
            return
        kind = actions[0]
        body = step[kind]
        if not isinstance(body, dict):
            return
        here = path + (kind,)
        if kind in CALL_TYPES:
            self.call(here, kind, body)
        elif kind == "generate":
            name = body.get("name", "users")
            if isinstance(name, str):
                if name in self.generated:
                    self.add(here + ("name",), f"users named {name!r} were generated already; "
                             "give this step another name")
                if isinstance(body.get("count"), int):
                    self.generated[name] = body["count"]
            for key in ("track", "page"):
                self.bounds(here + (key,), body.get(key))
        elif kind == "audience":
            self.members(here + ("members",), body.get("members"))
            if isinstance(body.get("name"), str):
                from .engage import audience_key

                key = body.get("key") or audience_key(body["name"])
                if not key:
                    self.add(here + ("name",), "the name has no letters or digits to make a key")
                self.audiences.update({body["name"], key})
        elif kind == "computed_trait":
            values = body.get("values")
            if isinstance(values, dict):
                for user in values:
                    self.user_ref(here + ("values", user), user, key=True)
            if isinstance(body.get("key"), str):
                self.traits.add(body["key"])
        elif kind == "request":
            self.request(here, body)
        elif kind == "expect":
            self.expect(here, body)

    def request(self, path, body: dict) -> None:
        where = body.get("path")
        if isinstance(where, str):
            route = where.split("?", 1)[0]
            # as the server reads it: %-escapes decoded, leading slashes merged
            parts = unquote(route).lstrip("/").split("/")
            if "." in parts or ".." in parts:
                self.add(path + ("path",), f"{route[:100]!r}: '.' and '..' segments are not "
                         "resolved by the server; write the path they mean")
            elif parts[0] in REQUEST_REFUSED or parts == [""]:
                self.add(path + ("path",), f"{route[:100]!r}: a request step sends a Planhat "
                         "request; Segment calls are call steps (identify, track, ...) and the "
                         "admin API and the dashboard are the runner's")
            rest = SAVED_REF.sub("", where.replace(TENANT_TOKEN, ""))
            if "{" in rest or "}" in rest:
                self.add(path + ("path",), f"{where[:100]!r}: the only placeholders are "
                         f"{TENANT_TOKEN} and {{saved.NAME}} (write a literal brace as %7B, "
                         "%7D)")
            for name in SAVED_REF.findall(where):
                self.saved_ref(path + ("path",), name)
        stack = [(path + ("body",), body.get("body"))] if "body" in body else []
        while stack:  # iterative: a body may be nested deeply
            here, value = stack.pop()
            if isinstance(value, dict):
                stack += [(here + (k,), v) for k, v in value.items()]
            elif isinstance(value, list):
                stack += [(here + (i,), v) for i, v in enumerate(value)]
            elif isinstance(value, str) and SAVED_REF.fullmatch(value):
                self.saved_ref(here, SAVED_REF.fullmatch(value).group(1))
        save = body.get("save")
        if isinstance(save, dict):
            for name in save:
                if name in self.saved:
                    self.add(("key",) + path + ("save", name), f"{name!r} was saved by an "
                             "earlier request step already; give this value another name")
            self.saved.update(save)

    def saved_ref(self, path, name: str) -> None:
        if name not in self.saved:
            known = ", ".join(sorted(self.saved)) or "none so far"
            self.add(path, f"{{saved.{name}}}: no request step before this point saves "
                     f"{name!r} (saved: {known})")

    def call(self, path, kind: str, body: dict) -> None:
        if kind in ("identify", "track", "page", "screen", "group"):
            if body.get("userId") is None and body.get("anonymousId") is None:
                self.add(path, "needs a userId or an anonymousId")
        for key in ("userId", "previousId"):
            if isinstance(body.get(key), str):
                self.user_ref(path + (key,), body[key])

    def user_ref(self, path, value: str, key: bool = False) -> None:
        if not isinstance(value, str) or not value.startswith("@"):
            return
        match = REF.match(value)
        if not match or match.group(3):
            self.add(path if not key else ("key",) + path,
                     f"{value!r} is not a reference to one user; write '@users[3]'")
            return
        self.ref(path if not key else ("key",) + path, match, value)

    def ref(self, path, match, value) -> None:
        name = match.group(1)
        if name not in self.generated:
            known = ", ".join(sorted(self.generated)) or "none so far"
            self.add(path, f"{value!r}: no generate step named {name!r} before this point "
                     f"(generated: {known})")
            return
        count = self.generated[name]
        if not match.group(3):
            digits = match.group(2)
            index = int(digits) if digits not in ("", "-") else None
            if index is None or not -count <= index < count:
                self.add(path, f"{value!r}: index out of range ({name!r} has {count} users)")

    def members(self, path, members) -> None:
        items = members if isinstance(members, list) else [members]
        for index, item in enumerate(items):
            here = path + (index,) if isinstance(members, list) else path
            if isinstance(item, str) and item.startswith("@"):
                match = REF.match(item)
                if not match:
                    self.add(here, f"{item!r} is not a reference; write '@users[3]' or "
                             "'@users[0:10]'")
                else:
                    self.ref(here, match, item)
            elif isinstance(item, dict) and isinstance(item.get("from"), str):
                name = item["from"]
                if name not in self.generated:
                    self.add(here + ("from",), f"no generate step named {name!r} before this "
                             "point")
                picks = [k for k in ("slice", "indexes", "fraction", "activeWithin")
                         if k in item]
                if len(picks) > 1:
                    self.add(here, f"choose one of slice, indexes, fraction, activeWithin (got "
                             f"{', '.join(picks)})")
                count = self.generated.get(name)
                for i, value in enumerate(item.get("indexes") or []):
                    if count is not None and isinstance(value, int) and value >= count:
                        self.add(here + ("indexes", i), f"index {value} out of range ({name!r} "
                                 f"has {count} users)")

    def bounds(self, path, value) -> None:
        if isinstance(value, dict) and isinstance(value.get("min"), int) \
                and isinstance(value.get("max"), int) and value["min"] > value["max"]:
            self.add(path, f"min {value['min']} is larger than max {value['max']}")

    def expect(self, path, body: dict) -> None:
        for key, counts in (("count", body.get("count")), ("report", body.get("report"))):
            if isinstance(counts, dict):
                for name, value in counts.items():
                    self.bounds(path + (key, name), value)
        for kind in ("endusers", "pending"):
            for index, finder in enumerate(body.get(kind) or []):
                if not isinstance(finder, dict):
                    continue
                here = path + (kind, index)
                keys = [k for k in ("externalId", "email") if k in finder]
                if len(keys) != 1:
                    self.add(here, "name the record by exactly one of externalId, email")
                for k in keys:
                    self.user_ref(here + (k,), finder[k])
                if finder.get("absent") and any(k in finder for k in ("is", "activities", "actions")):
                    self.add(here, "'absent: true' cannot be combined with 'is', 'activities' "
                             "or 'actions'")
        for index, finder in enumerate(body.get("companies") or []):
            if isinstance(finder, dict):
                keys = [k for k in ("externalId", "name", "domain") if k in finder]
                if len(keys) != 1:
                    self.add(path + ("companies", index),
                             "name the company by exactly one of externalId, name, domain")
        for model in MODELS:
            for index, finder in enumerate(body.get(model.path) or []):
                if isinstance(finder, dict):
                    keys = [k for k in ("externalId", "sourceId", "where") if k in finder]
                    if len(keys) != 1:
                        self.add(path + (model.path, index), "name the record by exactly one "
                                 "of externalId, sourceId, where")
                    if finder.get("absent") and "is" in finder:
                        self.add(path + (model.path, index),
                                 "'absent: true' cannot be combined with 'is'")
        for index, name in enumerate(body.get("audiences") or []):
            if isinstance(name, str) and name not in self.audiences:
                self.add(path + ("audiences", index), f"no audience step for {name!r} before "
                         "this point")
        for index, name in enumerate(body.get("traits") or []):
            if isinstance(name, str) and name not in self.traits:
                self.add(path + ("traits", index), f"no computed_trait step for {name!r} "
                         "before this point")


# ----- entry points ------------------------------------------------------------------------
def check_data(data: Any, marks: dict, file: str) -> list[Problem]:
    """Every schema and meaning problem of parsed data, ordered by position."""
    found: list[tuple[tuple, str, bool]] = []
    for error in _validator().iter_errors(data):
        path, message = _describe(error)
        found.append((path, message, error.validator == "additionalProperties"))
    if isinstance(data, dict):
        found += [(p, m, p[:1] == ("key",)) for p, m in _Checker(data).run()]
    problems = []
    seen = set()
    for path, message, at_key in found:
        path = path[1:] if path[:1] == ("key",) else path
        mark = marks.get(("key",) + path) if at_key else None
        if mark is None:
            probe = path
            while probe and probe not in marks:
                probe = probe[:-1]
            mark = marks.get(probe, (1, 1))
        problem = Problem(file, mark[0], mark[1], format_path(path), message)
        if str(problem) not in seen:
            seen.add(str(problem))
            problems.append(problem)
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def load_text(text: str, file: str, base: Path | None = None) -> Scenario:
    """``base``: the folder a ``given.snapshot`` file name is relative to (default: the
    current one)."""
    data, marks, problems = parse_text(text, file)
    if data is None and not problems:
        problems = [Problem(file, 1, 1, "", "the file is empty")]
    if data is not None:
        problems += check_data(data, marks, file)
    doc = None
    if not problems:
        doc, problem = _given_snapshot(data, marks, file, base)
        problems += [problem] if problem else []
    if problems:
        raise ScenarioError(sorted(problems, key=lambda p: (p.line, p.column)))
    return Scenario(file, data, marks, doc)


def _given_snapshot(data: dict, marks: dict, file: str, base: Path | None):
    """(the snapshot ``given.snapshot`` names, or a Problem saying why it cannot be used)."""
    from .. import snapshot

    value = (data.get("given") or {}).get("snapshot")
    if value is None:
        return None, None
    path = ("given", "snapshot")
    line, column = marks.get(path, (1, 1))
    try:
        if isinstance(value, str):
            doc = snapshot.read_file((base or Path.cwd()) / value)
        else:
            doc = value
            snapshot.check(doc)
        if len(doc["tenants"]) != 1:
            raise snapshot.SnapshotError("tenants", f"holds {len(doc['tenants'])} tenants; a "
                                         "scenario loads a snapshot of one tenant")
    except snapshot.SnapshotError as exc:
        return None, Problem(file, line, column, "given.snapshot", str(exc))
    return doc, None


def load_scenario(path, name: str | None = None) -> Scenario:
    """Load and check one file; ``name`` is how messages call it (default: the path)."""
    file = name or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(file, 1, 1, "", f"cannot read: {exc.strerror or exc}")]) \
            from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem(file, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte "
                                     f"{exc.start})")]) from None
    return load_text(text, file, Path(path).resolve().parent)


def find_files(paths) -> list[Path]:
    """Scenario files named or inside the named folders (recursively), sorted; missing paths
    raise ``FileNotFoundError``."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
                continue
            found = path.exists()
        except OSError:  # a name too long for the file system, ...: no such file either
            found = False
        if not found:
            raise FileNotFoundError(_shown(str(raw)))
        out.append(path)
    return out


def _shown(name: str, limit: int = 200) -> str:
    """A path as a one-line message shows it: control characters escaped, a long one cut."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= limit else text[:limit] + f"... ({len(name)} characters)"
