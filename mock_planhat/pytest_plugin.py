"""pytest plugin (entry point ``pytest11``): scenario files as tests, and fixtures.

Scenario files (``*.yaml``, ``*.yml``, ``*.json``) are collected only under the folders a
project names: the ``mock_planhat_scenarios`` ini option or ``--mock-planhat-scenarios DIR``
(relative to the rootdir). Without either, nothing is collected: installing the package never
turns another project's data files into tests. Each scenario runs in a fresh in-process fake.

Fixtures:

* ``planhat`` — a fresh in-process fake with a fresh tenant (a ``TenantHandle``: ``.settings()``,
  ``.destination()``, ``.api()``, ``.state()``, ``.report()``, ``.journal()``, ``.fault()``,
  ``.snapshot()``, ``.restore(doc)``, ``.clock(...)``);
  parametrized indirectly with ``"rest"``/``"dock"`` (how its destinations deliver) or a dict
  of ``delivery``, ``unassigned``, ``email_match``, ``rate_limit``;
* ``planhat_server`` — a live fake on a free port, shared by the session (``.url``), on the
  server ``python -m mock_planhat`` uses (waitress; ``.name`` says which);
* ``planhat_live`` — a fresh tenant on that live server (a ``TenantHandle`` over HTTP);
* ``planhat_destination`` — a translator ``Destination`` bound to ``planhat``'s tenant.

The logic lives in :mod:`mock_planhat.scenario`; this module stays thin and imports it lazily.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUFFIXES = (".yaml", ".yml", ".json")
INI = "mock_planhat_scenarios"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("mock-planhat")
    group.addoption("--mock-planhat-scenarios", action="append", default=None, metavar="DIR",
                    help="collect mock-planhat scenario files under DIR (repeatable; instead "
                         f"of the '{INI}' ini option)")
    parser.addini(INI, type="linelist", default=[],
                  help="folders (relative to the rootdir) whose *.yaml, *.yml and *.json files "
                       "are mock-planhat scenarios (default: none)")


def _scenario_dirs(config) -> list[Path]:
    cached = getattr(config, "_mock_planhat_dirs", None)
    if cached is None:
        names = config.getoption("--mock-planhat-scenarios") or config.getini(INI)
        cached = [(config.rootpath / name).resolve() for name in names]
        config._mock_planhat_dirs = cached
    return cached


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix not in SUFFIXES or not _scenario_dirs(parent.config):
        return None
    resolved = file_path.resolve()
    if any(resolved.is_relative_to(d) for d in _scenario_dirs(parent.config)):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        from mock_planhat.scenario import ScenarioError, load_scenario

        try:
            display = str(self.path.relative_to(self.config.rootpath))
        except ValueError:
            display = str(self.path)
        try:
            scenario = load_scenario(self.path, display)
            name, problems = scenario.name, []
        except ScenarioError as exc:
            scenario, name, problems = None, self.path.stem, exc.problems
        yield ScenarioItem.from_parent(self, name=name, scenario=scenario, problems=problems)


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario, problems, **kwargs):
        super().__init__(**kwargs)
        self.scenario = scenario
        self.problems = problems

    def runtest(self) -> None:
        from mock_planhat.scenario import run_scenario

        if self.problems:
            raise ScenarioFailed("\n".join(map(str, self.problems)))
        result = run_scenario(self.scenario)
        if not result.passed:
            raise ScenarioFailed(result.render_failures())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"scenario: {self.name}"


def _tenant_options(request) -> dict:
    """The fixture's parameter (``indirect=True``): ``"rest"``/``"dock"``, or a dict of
    ``delivery``, ``unassigned``, ``email_match``, ``rate_limit``."""
    param = getattr(request, "param", None)
    if param is None:
        return {}
    if isinstance(param, str):
        return {"delivery": param}
    if isinstance(param, dict):
        unknown = set(param) - {"delivery", "unassigned", "email_match", "rate_limit"}
        if unknown:
            raise pytest.UsageError(f"{request.fixturename}: unknown option "
                                    f"{sorted(unknown)[0]!r} (delivery, unassigned, email_match, "
                                    "rate_limit)")
        return dict(param)
    raise pytest.UsageError(f"{request.fixturename}: the parameter must be 'rest', 'dock' or a "
                            f"dict of options, not {param!r}")


@pytest.fixture
def planhat(request):
    """A fresh in-process fake (no socket) and a fresh tenant in it: a ``TenantHandle`` with
    ``.settings()``, ``.destination()``, ``.api(method, path, body)``, ``.state()``,
    ``.report()``, ``.journal()``, ``.fault(status, ...)``, ``.snapshot()``, ``.restore(doc)``
    and ``.clock(now=... | advance=... | real=True)``; its repr names the URL and the
    tenant token. Parametrize it (``indirect=True``) with ``"dock"`` or ``{"delivery": "dock",
    "rate_limit": "planhat"}`` to choose how its destinations deliver and the tenant's
    options."""
    from mock_planhat.scenario import Target

    target = Target()
    yield target.new_tenant(**_tenant_options(request))
    target.close()


@pytest.fixture(scope="session")
def planhat_server():
    """A live fake on a free loopback port, shared by the session (``.url``); take a fresh
    tenant per test with ``planhat_live``. Served as ``python -m mock_planhat`` serves:
    waitress, or the server ``MOCK_PLANHAT_SERVER`` names (``werkzeug``)."""
    import os

    from mock_planhat import Config, create_app
    from mock_planhat.config import ENV_SERVER
    from mock_planhat.server import Server

    config = Config(journal_size=100_000, journal_bytes=128 * 1024 * 1024)
    try:
        server = Server(create_app(config), "127.0.0.1", 0,
                        server=os.environ.get(ENV_SERVER) or None).start()
    except ValueError as exc:  # a server that is not one, or cannot be imported
        raise pytest.UsageError(f"planhat_server: {ENV_SERVER}: {exc}") from None
    yield server
    server.stop()


@pytest.fixture
def planhat_live(planhat_server, request):
    """A fresh tenant on the session's live server (``planhat_server``), reached over HTTP:
    the same ``TenantHandle`` as ``planhat`` (parametrized the same way), and deleted after
    the test."""
    from mock_planhat.scenario import Target

    target = Target(url=planhat_server.url)
    tenant = target.new_tenant(**_tenant_options(request))
    yield tenant
    from mock_planhat.scenario.run import AdminError

    try:
        target.admin("DELETE", f"/tenants/{tenant.tenant_token}")
    except AdminError:
        pass  # the test deleted it itself
    finally:
        target.close()


@pytest.fixture
def planhat_destination(planhat):
    """A translator ``Destination`` bound to ``planhat``'s tenant (in process, fast retries):
    ``.send(call)``, ``.send_many(calls)``."""
    return planhat.destination()
